"""`dlcheck` / `dlcheck check`: the readiness report with a fix for every problem."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import click

from dlcheck import prometheus
from dlcheck.commands.common import (
    FiniteFloat,
    apply_nvml_timeout,
    command,
    nvml_timeout_option,
    show_ids_option,
)
from dlcheck.facts import Facts
from dlcheck.models import CheckResult, ExitCode, Report, envelope_status
from dlcheck.prometheus import prometheus_option


@dataclass(frozen=True)
class CheckOptions:
    cpu_ok: bool = False
    strict: bool = False
    timeout: float = 120.0
    frameworks: bool = True
    show_ids: bool = False


@dataclass(frozen=True)
class CheckReport:
    verdict: str  # ready | not_ready | cpu_only
    exit_code: ExitCode
    facts: Facts
    checks: list[CheckResult]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "exit_code": int(self.exit_code),
            **self.facts.to_dict(),
            "checks": self.checks,
        }


def build(options: CheckOptions, on_probing=None) -> Report:
    from dlcheck import checks, facts

    collected = facts.collect(
        probe_frameworks=options.frameworks,
        probe_timeout=options.timeout,
        show_ids=options.show_ids,
        on_probing=on_probing,
    )
    results = checks.run_all(collected)
    verdict, code = checks.verdict(results, collected, options.cpu_ok, options.strict)
    return Report(
        "check",
        CheckReport(verdict, code, collected, results),
        code,
        envelope_status(r.status for r in results),
    )


@command("check", renderer="dlcheck.render.check:render")
@click.option("-v", "--verbose", is_flag=True, help="Show the evidence behind each check.")
@click.option(
    "--cpu-ok",
    is_flag=True,
    envvar="DLCHECK_CPU_OK",
    help="A machine without a usable GPU exits 0, not 3 [env DLCHECK_CPU_OK].",
)
@click.option("--strict", is_flag=True, help="Warnings count as failures (exit 1).")
@click.option(
    "--timeout",
    type=FiniteFloat(min=1, max=86400),
    default=120.0,
    show_default=True,
    envvar="DLCHECK_PROBE_TIMEOUT",
    help="Seconds to wait for all framework probes together [env DLCHECK_PROBE_TIMEOUT].",
)
@click.option("--no-frameworks", is_flag=True, help="Skip the torch/TensorFlow/Keras/JAX probes.")
@show_ids_option
@nvml_timeout_option
@prometheus_option
def check(verbose, cpu_ok, strict, timeout, no_frameworks, show_ids, nvml_timeout,
          prometheus_path):  # fmt: skip
    """Readiness report: system, driver, GPUs, frameworks, each check with a fix.

    \b
    Exit codes: 0 ready, 1 a check failed (or could not be checked), 3 no usable
    NVIDIA GPU (0 with --cpu-ok), 4 internal error.
    """
    apply_nvml_timeout(nvml_timeout)
    options = CheckOptions(cpu_ok, strict, timeout, not no_frameworks, show_ids)

    def on_probing():
        from dlcheck.render import Output

        if not Output.for_stream(sys.stderr).plain:
            click.echo(f"Probing frameworks (up to {timeout:g} s)...", err=True)

    report = prometheus.export(build(options, on_probing), prometheus_path)
    return report, {"verbose": verbose}
