"""Child-process entry: run one (implementation, device) pair, write its Outcome as JSON.

python -m dlcheck.bench.child SPEC.json   (the result goes to $DLCHECK_RESULT: dlcheck.children)
A crash, OOM kill or hang leaves no result, and the parent reports that as a failed row.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback

from dlcheck.bench.impls import IMPLS
from dlcheck.bench.protocol import Spec
from dlcheck.children import bind_to_parent


def main(spec_path: str) -> int:
    bind_to_parent()
    started = time.perf_counter()
    with open(spec_path) as f:
        spec = Spec(**json.load(f))
    module_name, function = (spec.entry or IMPLS[spec.impl].entry).split(":")
    try:
        result = getattr(importlib.import_module(module_name), function)(spec)
        result["error"] = None
        status = 0
    except Exception as error:  # reported as the row's error; the parent carries on
        traceback.print_exc(file=sys.stderr)
        result = {"impl": spec.impl, "device": spec.device, "error": _one_line(error)}
        status = 1
    result["child_wall_s"] = time.perf_counter() - started
    with open(os.environ["DLCHECK_RESULT"], "w") as f:
        json.dump(result, f)
    return status


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}".rstrip(": ")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
