"""`dlcheck` / `dlcheck check`: the readiness report with a fix for every problem."""

from __future__ import annotations

import sys

import click

from dlcheck.commands.common import guarded
from dlcheck.models import ExitCode, Status


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the versioned JSON envelope.")
@click.option("-v", "--verbose", is_flag=True, help="Show the evidence behind each check.")
@click.option("--cpu-ok", is_flag=True, help="A machine without a usable GPU exits 0, not 3.")
@click.option("--strict", is_flag=True, help="Warnings count as failures (exit 1).")
@click.option(
    "--timeout",
    type=click.FloatRange(min=1),
    default=120.0,
    show_default=True,
    help="Seconds to wait for all framework probes together.",
)
@click.option("--no-frameworks", is_flag=True, help="Skip the torch/TensorFlow/Keras/JAX probes.")
@click.option("--show-ids", is_flag=True, help="Show GPU UUIDs and serials (masked by default).")
@click.option("--debug", is_flag=True, help="Show a traceback on internal errors.")
def check(as_json, verbose, cpu_ok, strict, timeout, no_frameworks, show_ids, debug) -> ExitCode:
    """Readiness report: system, driver, GPUs, frameworks, each check with a fix.

    \b
    Exit codes: 0 ready, 1 a check failed, 3 no usable NVIDIA GPU
    (0 with --cpu-ok), 4 internal error.
    """
    return guarded(debug, _run, as_json, verbose, cpu_ok, strict, timeout, no_frameworks, show_ids)


def _run(as_json, verbose, cpu_ok, strict, timeout, no_frameworks, show_ids) -> ExitCode:
    from dlcheck import checks, frameworks, gpu, render, system

    facts = system.collect()
    facts["gpu"] = gpu.collect(show_ids=show_ids)
    if no_frameworks:
        facts["frameworks"] = None
    else:
        if not as_json and not render.plain_wanted(sys.stderr):
            click.echo(f"Probing frameworks (up to {timeout:g} s)...", err=True)
        facts["frameworks"] = frameworks.run_probes(timeout=timeout)
    results = checks.run_all(facts)
    verdict, code = checks.verdict(results, facts, cpu_ok=cpu_ok, strict=strict)
    report = {
        "verdict": verdict,
        "exit_code": int(code),
        "host": facts["host"],
        "system": facts["system"],
        "kernel": facts["kernel"],
        "driver": facts["gpu"]["driver"],
        "nvml": facts["gpu"]["nvml"],
        "gpus": facts["gpu"]["gpus"],
        "frameworks": facts["frameworks"],
        "checks": [r.to_dict() for r in results],
    }
    if as_json:
        worst = Status.worst(r.status for r in results)
        render.json_out("check", worst.value, report)
    else:
        render.check_view(report, verbose)
    return code
