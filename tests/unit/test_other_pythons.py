"""dlcheck compiles under every Python it claims (requires-python >= 3.10) that this machine has:
hosts run it under their own Python (Debian 13's is 3.13), and 3.13 refused a lone surrogate
in a docstring (it cleans docstrings through UTF-8) that 3.11 accepted, so every Debian 13 host
failed at import while the suite here passed."""

from __future__ import annotations

import glob
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
MINORS = range(10, 14)


def interpreters() -> dict[str, str]:
    found = {}
    for minor in MINORS:
        version = f"3.{minor}"
        pyenv = Path.home() / f".pyenv/versions/{version}.*/bin/python3"
        candidates = [shutil.which(f"python{version}"), *sorted(glob.glob(str(pyenv)))]
        for path in filter(None, candidates):
            done = subprocess.run([path, "-c", "import sys; print(sys.version_info[:2])"],
                                  capture_output=True, text=True)  # fmt: skip
            if done.returncode == 0 and done.stdout.strip() == f"(3, {minor})":
                found[version] = path
                break
    return found


PYTHONS = interpreters()


@pytest.mark.skipif(not PYTHONS, reason="no other CPython 3.10-3.13 on this machine")
@pytest.mark.parametrize("version", sorted(PYTHONS))
def test_every_module_compiles(version, tmp_path):
    for folder in ("dlcheck", "smoke_tests"):
        shutil.copytree(REPO / folder, tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    done = subprocess.run([PYTHONS[version], "-m", "compileall", "-q", str(tmp_path)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
