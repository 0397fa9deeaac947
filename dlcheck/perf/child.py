"""Child-process entry for `dlcheck perf`: the only place the numpy/torch measurements run.

python -m dlcheck.perf.child SPEC.json   (the result goes to $DLCHECK_RESULT: dlcheck.children)
SPEC: {"mode": "cpu" | "gpu", ...options}. The result is the measure module's dict, or
{"error": "..."} when it raised. A crash, hang or OOM kill leaves no result; the parent
reports that as the section's error.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback

from dlcheck.children import bind_to_parent


def main(spec_path: str) -> int:
    bind_to_parent()
    started = time.perf_counter()
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        if spec["mode"] == "cpu":
            from dlcheck.perf import measure_cpu as measure
        else:
            from dlcheck.perf import measure_gpu as measure
        result = measure.run(spec)
        status = 0
    except Exception as error:  # the parent turns this into the section's error
        traceback.print_exc(file=sys.stderr)
        text = " ".join(str(error).split())[:300]
        result = {"error": f"{type(error).__name__}: {text}"}
        status = 1
    result["child_wall_s"] = time.perf_counter() - started
    with open(os.environ["DLCHECK_RESULT"], "w") as f:
        json.dump(result, f)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
