"""Files dlcheck writes for others to read (metrics, HTML pages): whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    """A hidden temp file in the same folder (a textfile collector reads *.prom only), fsynced,
    then renamed over `path`: readers see the old file or the new one, never a part."""
    folder = path.parent if str(path.parent) else Path(".")
    handle = tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=folder, delete=False,
                                         prefix=f".{path.name}.", suffix=".tmp")  # fmt: skip
    try:
        with handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(handle.name, 0o644)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
