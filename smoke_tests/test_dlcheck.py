"""dlcheck's own verdict on this host."""

from __future__ import annotations

import json
import subprocess
import sys


def test_dlcheck_verdict_is_ready(has_gpu):
    proc = subprocess.run(
        [sys.executable, "-m", "dlcheck", "--json"], capture_output=True, text=True, timeout=600
    )
    assert proc.stdout.strip(), f"dlcheck printed no JSON (exit {proc.returncode}): {proc.stderr}"
    data = json.loads(proc.stdout)["data"]
    expected = "ready" if has_gpu else "cpu_only"
    failing = [
        f"{c['code']}: {c['message']} (fix: {c.get('fix')})"
        for c in data.get("checks", [])
        if c.get("status") == "FAIL"
    ]
    assert data["verdict"] == expected, f"verdict {data['verdict']}; failing: {failing}"
    assert proc.returncode == data["exit_code"]
