"""A wheelhouse on the controller for a Python the machine's own wheel folder does not serve.

Debian 13 has Python 3.13; the local CPU torch wheel is cp311, so a trixie host would pull PyPI's
CUDA torch (about 3 GB with its nvidia-* wheels) on every converge. ensure_wheelhouse() downloads
the pinned frameworks once, for that Python, into the shared test cache (outside the repository,
next to the debootstrap images); tests bind it read-only into hosts as /srv/wheelhouse and pass
it as dl_python_find_links, the role variable an air-gapped site uses for the same purpose.

    folder = ensure_wheelhouse("3.13")      # ~40 s and 3 GB the first time on a machine

One folder per (Python, pins): a version bump downloads a new one. A folder is complete only once
its COMPLETE file exists (written last, after an atomic rename), so an interrupted download is
thrown away and redone, never half-used.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.hosts import nspawn

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = nspawn.CACHE_DIR / "wheels"
ROLES = REPO / "playbooks" / "roles"
# Wheels for any manylinux glibc up to Debian 13's 2.41, plus pure-Python ones.
PLATFORMS = [
    *(f"manylinux_2_{minor}_x86_64" for minor in range(5, 42)),
    *("manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"),
    *("linux_x86_64", "any"),
]


class WheelhouseError(RuntimeError):
    """The download failed; the message says what pip said."""


def pinned_requirements() -> list[str]:
    """What a CPU-only host installs, from the roles' own defaults (never repeated here)."""
    python = yaml.safe_load((ROLES / "dl_python/defaults/main.yml").read_text())
    jupyter = yaml.safe_load((ROLES / "jupyter/defaults/main.yml").read_text())
    versions = python["dl_python_versions"]
    return [
        f"torch=={versions['torch']}",
        f"tensorflow-cpu=={versions['tensorflow']}",
        f"keras=={versions['keras']}",
        f"ipykernel=={versions['ipykernel']}",
        f"jupyterlab=={jupyter['jupyter_lab_version']}",
    ]


def ensure_wheelhouse(python: str, requirements: list[str] | None = None) -> Path:
    """The cached wheelhouse for `python` ("3.13") and the pins; downloaded when missing."""
    requirements = sorted(requirements or pinned_requirements())
    key = hashlib.sha256("\n".join([python, *requirements]).encode()).hexdigest()[:12]
    folder = CACHE_DIR / f"cp{python.replace('.', '')}-{key}"
    if (folder / "COMPLETE").exists():
        return folder
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one download at a time; the next run finds it done
        if (folder / "COMPLETE").exists():
            return folder
        shutil.rmtree(folder, ignore_errors=True)  # an interrupted earlier attempt
        partial = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", dir=CACHE_DIR))
        started = time.monotonic()
        command = [
            *(sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check"),
            *("--only-binary=:all:", "--implementation", "cp", "--python-version", python),
            *("--abi", f"cp{python.replace('.', '')}", "--abi", "abi3", "--abi", "none"),
            *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
            *("-d", str(partial), *requirements),
        ]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
            if result.returncode != 0:
                errors = [line for line in result.stderr.splitlines() if "ERROR" in line]
                raise WheelhouseError(f"pip download for Python {python} failed: {errors[-2:]}")
            wheels = sorted(p.name for p in partial.glob("*.whl"))
            partial.chmod(0o755)
            partial.rename(folder)
            (folder / "COMPLETE").write_text("\n".join([*requirements, "", *wheels]) + "\n")
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        size = sum(p.stat().st_size for p in folder.glob("*.whl")) / 2**30
        took = time.monotonic() - started
        print(f"wheelhouse: {folder} ({size:.1f} GB) in {took:.0f} s", file=sys.stderr)
    return folder
