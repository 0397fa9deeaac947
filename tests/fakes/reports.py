"""Report files as `playbooks/verify.yml` fetches them, built from dlcheck's own records (so
they have the real shape, and a schema change shows up here too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dlcheck import facts, gpu, models, system
from dlcheck.commands.check import CheckReport
from dlcheck.models import CheckResult, ExitCode, Status
from tests.fakes.facts import probe_results

GPU = {"index": 0, "name": "NVIDIA A10G", "uuid": "GPU-1", "memory.total": 23028}
EXIT = {"ready": ExitCode.READY, "not_ready": ExitCode.NOT_READY, "cpu_only": ExitCode.CPU_ONLY}


def framework(version, cuda=None, gpus=None, installed=True, **extra) -> dict[str, Any]:
    return {"installed": installed, "version": version, "cuda": cuda, "gpu_count": gpus,
            "cuda_build": cuda is not None, **extra}  # fmt: skip


def check_data(verdict="ready", gpus=(GPU,), frameworks=None, failing=(), warning=()
               ) -> dict[str, Any]:  # fmt: skip
    frameworks = frameworks or {
        "torch": framework("2.13.0", "12.8", len(gpus)),
        "tensorflow": framework("2.21.0", "12.5", len(gpus)),
        "keras": framework("3.15.1", backend="tensorflow", backend_source="default"),
    }
    records = [{**dict.fromkeys(gpu.FIELDS), **g} for g in gpus]
    driver = gpu.DriverInfo("580.95.05", None, "13.0") if gpus else gpu.DriverInfo()
    collected = facts.Facts(
        host="h",
        system=system.collect(),
        kernel=system.kernel_side(),
        env=system.environment({}),
        gpu=gpu.GpuInventory(driver, records, gpu.NvmlState()),
        frameworks=probe_results(frameworks),
    )
    checks = [CheckResult("nvml_ok", Status.PASS, "ok")]
    checks += [CheckResult(code, Status.FAIL, "broken", "fix it") for code in failing]
    checks += [CheckResult(code, Status.WARN, "slow", "fix it") for code in warning]
    report = CheckReport(verdict, EXIT[verdict], collected, checks)
    return models.plain(report)


def smoke_data(passed=10, failed=(), skipped=0) -> dict[str, Any]:
    tests = [
        {"nodeid": f"smoke_tests/test_x.py::{n}", "outcome": "failed", "reason": f"{n} broke"}
        for n in failed
    ]
    summary = {"passed": passed, "failed": len(failed), "skipped": skipped, "error": 0}
    return {"summary": summary, "tests": tests}


def bench_data(speedup: dict[str, float | None]) -> dict[str, Any]:
    return {
        "synthetic": True, "dataset": "synthetic-imdb", "source": "synthetic", "sha256": None,
        "protocol": "quick",
        "config": {"epochs": 4, "batch_size": 512, "seed": 0, "optimizer": "rmsprop",
                   "threads": 2, "timeout_s": 900.0, "accuracy_band": [0.85, 0.9],
                   "train_reviews": 25000, "test_reviews": 25000},
        "load_average_before": 0.1, "data_prep_s": 3.0, "results": [], "speedup": speedup,
        "notes": [], "wall_s": 30.0, "exit_code": 0,
    }  # fmt: skip


def write_host(root: Path, host: str, status="ok", check=None, bench=None, smoke=None, **raw
               ) -> Path:  # fmt: skip
    folder = root / host
    folder.mkdir(parents=True)
    (folder / "status.json").write_text(json.dumps({"host": host, "state": status, **raw}))
    for name, data in (("check", check), ("bench", bench), ("smoke", smoke)):
        if data is not None:
            (folder / f"{name}.json").write_text(models.envelope(name, "PASS", data))
    return folder
