"""`dlcheck allreduce`: multi-GPU (NCCL) or multi-process (gloo) all-reduce check."""

from __future__ import annotations

import click

from dlcheck import jsonout
from dlcheck.models import ExitCode


class _Size(click.ParamType):
    name = "size"

    def convert(self, value, param, ctx):
        from dlcheck.allreduce import parse_size

        try:
            return parse_size(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


@click.command()
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
    type=click.IntRange(1, 1024),
    default=None,
    help="Processes [default: GPU count for nccl, 2 for gloo].",
)
@click.option("--timeout", "timeout_s", type=click.FloatRange(1), default=300, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the dlcheck/1 JSON envelope.")
def allreduce(backend, size, iters, warmup, ranks, timeout_s, as_json) -> ExitCode:
    """All-reduce (SUM, float32) across ranks: checks every value, reports bus bandwidth.

    algbw = size/time and busbw = algbw * 2(n-1)/n, as nccl-tests reports them.
    Skipped (exit 0) with one GPU; exit 3 with none; exit 1 when wrong or broken.
    """
    from dlcheck.allreduce import cuda_device_count, run_allreduce

    try:
        import torch  # noqa: F401
    except ImportError:
        raise click.ClickException(
            "PyTorch is not installed in this environment. Fix: pip install torch"
        ) from None
    result = run_allreduce(backend, size, iters, warmup, ranks, timeout_s)
    if result.status == "PASS":
        code = ExitCode.READY
    elif result.status == "SKIP":
        no_gpu = backend == "nccl" and cuda_device_count() == 0
        code = ExitCode.CPU_ONLY if no_gpu else ExitCode.READY
    else:
        code = ExitCode.NOT_READY
    if as_json:
        click.echo(jsonout.envelope("allreduce", result.status, result.to_dict()))
        return code
    header = f"all_reduce SUM float32, backend {backend}, {result.ranks} ranks"
    click.echo(header)
    if result.median_time_us is not None:
        click.echo(
            f"{'size(B)':>12} {'count':>10} {'time(us)':>10} {'algbw(GB/s)':>12} "
            f"{'busbw(GB/s)':>12} {'#wrong':>7}"
        )
        click.echo(
            f"{result.size_bytes:>12} {result.elements:>10} {result.median_time_us:>10.1f} "
            f"{result.algbw_gbps:>12.2f} {result.busbw_gbps:>12.2f} {result.wrong_elements:>7}"
        )
        for device in result.devices:
            click.echo(f"  {device}")
    click.echo(f"{result.status}{': ' + result.reason if result.reason else ''}")
    return code
