"""dlcheck's own verdict on this host: the report the playbooks just wrote (--dlcheck-report),
or a fresh `dlcheck --json` when the suite runs on its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def dlcheck_report(pytestconfig) -> tuple[dict, int | None]:
    """(envelope, exit code of the run or None when read from a file)."""
    path = pytestconfig.getoption("--dlcheck-report")
    if path:
        try:
            return json.loads(Path(path).read_text()), None
        except (OSError, ValueError) as error:
            pytest.fail(f"no usable dlcheck report at {path}: {error}", pytrace=False)
    proc = subprocess.run(
        [sys.executable, "-m", "dlcheck", "--json"], capture_output=True, text=True, timeout=600
    )
    assert proc.stdout.strip(), f"dlcheck printed no JSON (exit {proc.returncode}): {proc.stderr}"
    return json.loads(proc.stdout), proc.returncode


def test_dlcheck_verdict_is_ready(has_gpu, dlcheck_report):
    envelope, returncode = dlcheck_report
    assert envelope["command"] == "check", envelope.get("command")
    data = envelope["data"]
    expected = "ready" if has_gpu else "cpu_only"
    failing = [
        f"{c['code']}: {c['message']} (fix: {c.get('fix')})"
        for c in data.get("checks", [])
        if c.get("status") == "FAIL"
    ]
    assert data["verdict"] == expected, f"verdict {data['verdict']}; failing: {failing}"
    if returncode is not None:
        assert returncode == data["exit_code"]
