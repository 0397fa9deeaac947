"""`dlcheck allreduce`: multi-GPU (NCCL) or multi-process (gloo) all-reduce check."""

from __future__ import annotations

import click

from dlcheck.commands.common import FiniteFloat, apply_nvml_timeout, command, nvml_timeout_option
from dlcheck.models import ExitCode, Report, Status


class _Size(click.ParamType):
    name = "size"

    def convert(self, value, param, ctx):
        from dlcheck.allreduce import parse_size

        try:
            return parse_size(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


def build(backend, size, iters, warmup, ranks, timeout_s) -> Report:
    from dlcheck.allreduce import cuda_device_count, run_allreduce, torch_installed

    if not torch_installed():
        raise click.UsageError(
            "PyTorch is not installed in this environment. Fix: pip install torch "
            "(or pip install 'dlcheck[torch]')"
        )
    result = run_allreduce(backend, size, iters, warmup, ranks, timeout_s)
    if result.status == "PASS":
        code = ExitCode.READY
    elif result.status == "SKIP":
        no_gpu = backend == "nccl" and cuda_device_count() == 0
        code = ExitCode.CPU_ONLY if no_gpu else ExitCode.READY
    else:
        code = ExitCode.NOT_READY
    status = Status.FAIL if result.status == "FAIL" else Status.PASS
    errors = (result.reason,) if status is Status.FAIL else ()
    return Report("allreduce", result, code, status, errors)


@command("allreduce", renderer="dlcheck.render.allreduce:render")
@click.option(
    "--backend",
    type=click.Choice(["nccl", "gloo"]),
    default="nccl",
    show_default=True,
    help="nccl: one rank per local GPU. gloo: CPU processes (no GPU needed).",
)
@click.option("--size", type=_Size(), default="32M", show_default=True, help="Bytes per rank.")
@click.option("--iters", type=click.IntRange(1, 10000), default=20, show_default=True)
@click.option("--warmup", type=click.IntRange(0, 1000), default=5, show_default=True)
@click.option(
    "--ranks",
    type=click.IntRange(1, 256),
    default=None,
    help="Processes [default: GPU count for nccl, 2 for gloo].",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=FiniteFloat(1, 86400),
    default=300,
    show_default=True,
    help="Seconds for the whole run; stragglers are stopped.",
)
@nvml_timeout_option
def allreduce(backend, size, iters, warmup, ranks, timeout_s, nvml_timeout) -> Report:
    """All-reduce (SUM, float32) across ranks: checks every value, reports bus bandwidth.

    algbw = size/time and busbw = algbw * 2(n-1)/n, as nccl-tests reports them.
    Skipped (exit 0) with one GPU; exit 3 with none; exit 1 when wrong or broken.
    """
    apply_nvml_timeout(nvml_timeout)
    return build(backend, size, iters, warmup, ranks, timeout_s)
