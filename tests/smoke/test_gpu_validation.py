"""smoke_tests/gpu_validation.sh: runs here without a GPU and records that cleanly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlcheck.models import ExitCode

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "smoke_tests" / "gpu_validation.sh"
STEPS = [
    "nvidia-smi-q-x", "dlcheck-gpu", "dlcheck-check", "dlcheck-bench",
    "pytest-gpu", "smoke-tests", "allreduce",
]  # fmt: skip


def fake_nvidia_smi(bin_dir: Path, listing: str, code: int) -> None:
    """An nvidia-smi that prints `listing` for -L and exits `code`: the GPU question, decided."""
    bin_dir.mkdir()
    tool = bin_dir / "nvidia-smi"
    tool.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "-L" ]; then printf "%s" "{listing}"; exit {code}; fi\n'
        'echo "<nvidia_smi_log><attached_gpus>1</attached_gpus></nvidia_smi_log>"\n'
    )
    tool.chmod(0o755)


def run_script(tmp_path: Path, listing: str, code: int, **env_extra: str):
    fake_nvidia_smi(tmp_path / "bin", listing, code)
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "PYTHON": sys.executable,
        **env_extra,
    }
    out = tmp_path / "out"
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(SCRIPT), str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    summary = json.loads((out / "summary.json").read_text())
    return proc, out, summary, time.monotonic() - start


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="apt-get install shellcheck")
def test_script_is_shellcheck_clean():
    proc = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_without_a_gpu_it_says_so_and_records_every_step(tmp_path):
    no_driver = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\\n"
    proc, out, summary, _ = run_script(tmp_path, no_driver, 9)
    assert proc.returncode == ExitCode.CPU_ONLY  # the script speaks dlcheck's exit codes
    assert "No NVIDIA GPU found" in proc.stderr
    assert (summary["schema"], summary["command"], summary["status"]) == (
        "dlcheck/1",
        "gpu-validation",
        "SKIP",
    )
    data = summary["data"]
    assert data["gpu_present"] is False and data["exit_code"] == ExitCode.CPU_ONLY
    steps = {s["name"]: s for s in data["steps"]}
    assert list(steps) == STEPS
    for name in ("nvidia-smi-q-x", "dlcheck-bench", "pytest-gpu", "smoke-tests", "allreduce"):
        assert steps[name]["rc"] is None and steps[name]["status"].startswith("skipped: no NVIDIA")
    for name in ("dlcheck-gpu", "dlcheck-check"):  # the diagnosis still runs
        assert isinstance(steps[name]["rc"], int) and steps[name]["seconds"] >= 0
        assert (out / f"{name}.out").exists() and (out / f"{name}.err").exists()
    tsv = (out / "steps.tsv").read_text().splitlines()
    assert tsv[0] == "step\trc\tseconds\tstatus" and len(tsv) == 1 + len(STEPS)


def test_with_a_gpu_listed_every_step_runs_and_the_budget_holds(tmp_path):
    # nvidia-smi claims a GPU that nothing else can use: every step must still run (or be
    # cut by the time budget), failures recorded, never an early stop.
    proc, out, summary, elapsed = run_script(
        tmp_path, "GPU 0: Fake GPU (UUID: GPU-0)\\n", 0, VALIDATION_BUDGET_S="25"
    )
    assert proc.returncode == ExitCode.NOT_READY
    data = summary["data"]
    assert data["gpu_present"] is True and summary["status"] == "FAIL"
    steps = {s["name"]: s for s in data["steps"]}
    assert list(steps) == STEPS
    assert steps["nvidia-smi-q-x"]["rc"] == 0
    assert "<nvidia_smi_log>" in (out / "nvidia-smi-q-x.out").read_text()
    assert steps["allreduce"]["status"] == "skipped: needs 2+ GPUs, found 1"
    assert any(s["status"] != "ok" for s in steps.values())
    assert elapsed < 25 + 15  # the budget caps every step's timeout
