"""Readiness checks: a Facts in, CheckResult(status, code, message, fix, evidence) out.

Pure functions of the facts (no NVML, no subprocess, no environment, no printing), so every
fault can be tested by handing in the facts a broken machine would produce. One module per
section of the report: driver (NVML and the kernel), gpu_health (per GPU), frameworks, system.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dlcheck.models import CheckResult, ExitCode, Status

if TYPE_CHECKING:  # the sections are imported where they run: `dlcheck gpu` needs gpu_health only
    from dlcheck.facts import Facts

READY, NOT_READY, CPU_ONLY = "ready", "not_ready", "cpu_only"  # the verdicts, best to worst


def run_all(facts: Facts) -> list[CheckResult]:
    from dlcheck.checks import driver, frameworks, gpu_health, system

    results: list[CheckResult] = []
    results += driver.checks(facts)
    for record in facts.gpu.gpus:
        results += gpu_health.checks(record)
    results += frameworks.checks(facts)
    results += system.checks(facts)
    return results


def verdict(results: list[CheckResult], facts: Facts, cpu_ok: bool, strict: bool
            ) -> tuple[str, ExitCode]:  # fmt: skip
    """(verdict, exit code): a FAIL is not_ready; no usable GPU is cpu_only (0 with --cpu-ok)."""
    worst = Status.worst(r.status for r in results)
    if worst is Status.FAIL or (strict and worst is Status.WARN):
        return NOT_READY, ExitCode.NOT_READY
    if not facts.usable_gpus:
        return CPU_ONLY, ExitCode.READY if cpu_ok else ExitCode.CPU_ONLY
    return READY, ExitCode.READY
