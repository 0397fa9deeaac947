"""Probe torch / TensorFlow / Keras / JAX, each in its own child process, all at once.

The parent never imports a framework: a probe that crashes, hangs or prints noise
cannot take the CLI down. Each child prints one JSON document (dlcheck/probes/probe.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FRAMEWORKS = ("torch", "tensorflow", "keras", "jax")
PROBE_SCRIPT = Path(__file__).parent / "probes" / "probe.py"
DEFAULT_TIMEOUT = 120.0  # seconds; TensorFlow alone takes ~10 s to import on a 2-core machine
STDERR_TAIL = 2000


def probe_command(name: str) -> list[str]:
    """The child's argv. Tests replace this (the child-process boundary) with a fake probe."""
    return [sys.executable, str(PROBE_SCRIPT), name]


def empty(name: str, **extra: Any) -> dict[str, Any]:
    """A probe result with every common key present (the JSON contract)."""
    record = {
        "installed": False,
        "version": None,
        "cuda": None,
        "cuda_build": None,
        "cudnn": None,
        "cudnn_built": None,
        "is_available": None,
        "gpu_count": None,
        "arch_list": None,
        "devices": None,
        "error": None,
        "probe": {"status": "not_run", "seconds": None, "stderr_tail": None},
    }
    if name == "keras":
        record.update(backend=None, backend_source=None, backend_error=None)
    record.update(extra)
    return record


def run_probes(
    names: tuple[str, ...] = FRAMEWORKS, timeout: float = DEFAULT_TIMEOUT
) -> dict[str, dict[str, Any]]:
    """Start every probe, wait for all up to `timeout` seconds in total, kill the stragglers."""
    with tempfile.TemporaryDirectory(prefix="dlcheck-probe-") as scratch:
        env = _child_env(Path(scratch))
        children = {}
        for name in names:
            out = tempfile.TemporaryFile(dir=scratch)
            err = tempfile.TemporaryFile(dir=scratch)
            try:
                process = subprocess.Popen(
                    probe_command(name),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    env=env,
                    cwd=scratch,
                    start_new_session=True,  # its own process group, so a kill takes its children
                )
            except OSError as error:
                children[name] = (None, out, err, f"could not start probe: {error}")
                continue
            children[name] = (process, out, err, None)
        started = time.monotonic()
        deadline = started + timeout
        results = {}
        for name, (process, out, err, start_error) in children.items():
            if process is None:
                results[name] = empty(name, error=start_error)
                results[name]["probe"]["status"] = "failed"
                continue
            timed_out = False
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill(process)
            seconds = round(time.monotonic() - started, 2)
            results[name] = _parse(name, process.returncode, out, err, timed_out, seconds, timeout)
            out.close()
            err.close()
        return results


def _child_env(scratch: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Keras writes keras.json on first import: give it a scratch KERAS_HOME that holds a copy
    # of the user's config, so it decides exactly as it would for them and writes nothing of theirs.
    user_home = Path(os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras"))
    keras_home = scratch / "keras-home"
    keras_home.mkdir()
    try:
        shutil.copy(user_home / "keras.json", keras_home / "keras.json")
    except OSError:  # none yet, or unreadable: Keras decides as it would without one
        pass
    env["KERAS_HOME"] = str(keras_home)
    env["DLCHECK_USER_KERAS_HOME"] = str(user_home)
    return env


def _kill(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.wait()


def _parse(name, returncode, out, err, timed_out, seconds, timeout) -> dict[str, Any]:
    out.seek(0)
    err.seek(0)
    stdout = out.read().decode(errors="replace")
    stderr_tail = err.read().decode(errors="replace")[-STDERR_TAIL:] or None
    record = empty(name)
    record["probe"] = {"status": "ok", "seconds": seconds, "stderr_tail": stderr_tail}
    if timed_out:
        record["installed"] = None  # unknown: it never answered
        record["error"] = f"probe did not answer within {timeout:g} s and was stopped"
        record["probe"]["status"] = "timeout"
        return record
    try:
        document = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
    except (json.JSONDecodeError, IndexError):
        document = None
    if not isinstance(document, dict):
        record["installed"] = None
        tail = (stderr_tail or "").strip().splitlines()
        last = tail[-1] if tail else "no output"
        record["error"] = f"probe exited with code {returncode} without a result: {last}"[:300]
        record["probe"]["status"] = "crashed"
        return record
    record.update(document)
    if record.get("error"):
        record["probe"]["status"] = "error"
    return record
