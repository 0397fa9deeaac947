"""Run on the controller: write a host's reports in one go (one process, not one task per file).

    python write_reports.py FOLDER < {"check.json": "...", "bench.json": "..."}

Each file is written whole (a temporary file, then a rename); empty reports are skipped.
"""

import json
import os
import sys
import tempfile


def main():
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    for name, content in json.load(sys.stdin).items():
        if not content.strip():
            continue
        handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        with os.fdopen(handle, "w") as out:
            out.write(content.rstrip("\n") + "\n")
        os.chmod(partial, 0o644)
        os.replace(partial, os.path.join(folder, name))


if __name__ == "__main__":
    main()
