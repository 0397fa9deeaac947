"""Run on the controller: the files pip needs to build dlcheck, and one digest over them.

    python source_files.py SOURCE_DIR  ->  {"files": [relative paths], "digest": "..."}

Everything under dlcheck/ (whatever package data the package adds) except compiled caches, and
the project files beside it. Equal digests on the host and here: nothing to reinstall.
"""

import hashlib
import json
import sys
from pathlib import Path

TOP_LEVEL = ("pyproject.toml", "README.md", "LICENSE*", "MANIFEST.in", "setup.cfg")


def main():
    root = Path(sys.argv[1])
    files = [p for pattern in TOP_LEVEL for p in root.glob(pattern) if p.is_file()]
    files += [
        p
        for p in (root / "dlcheck").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    ]
    names = sorted(str(p.relative_to(root)) for p in files)
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes() + b"\0")
    print(json.dumps({"files": names, "digest": digest.hexdigest()[:20]}))


if __name__ == "__main__":
    main()
