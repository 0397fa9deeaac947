"""`dlcheck allreduce`: all-reduce across this host's GPUs (NCCL) or processes (gloo), or across
several hosts (--nnodes, --node-rank, --master, like torchrun)."""

from __future__ import annotations

import os

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


def build(options) -> Report:
    from dlcheck.allreduce import cuda_device_count, run, torch_installed

    if not torch_installed():
        raise click.UsageError(
            "PyTorch is not installed in this environment. Fix: pip install torch "
            "(or pip install 'dlcheck[torch]')"
        )
    result = run(options)
    if result.status in ("PASS", "WARN"):
        code = ExitCode.READY
    elif result.status == "SKIP":
        no_gpu = options.backend == "nccl" and cuda_device_count() == 0
        code = ExitCode.CPU_ONLY if no_gpu else ExitCode.READY
    else:
        code = ExitCode.NOT_READY
    status = {"FAIL": Status.FAIL, "WARN": Status.WARN}.get(result.status, Status.PASS)
    errors = (result.reason,) if status is Status.FAIL else ()
    return Report("allreduce", result, code, status, errors)


def _master(ctx, param, value):
    if value is None:  # torchrun's environment, as its workers see it
        address, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
        value = f"{address}:{port}" if address and port else None
    if value is None:
        return None
    from dlcheck.allreduce import split_master

    try:
        split_master(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param) from None
    return value


@command("allreduce", renderer="dlcheck.render.allreduce:render")
@click.option(
    "--backend",
    type=click.Choice(["nccl", "gloo"]),
    default="nccl",
    show_default=True,
    help="nccl: one rank per GPU. gloo: CPU processes (no GPU needed).",
)
@click.option("--size", type=_Size(), default="32M", show_default=True, help="Bytes per rank.")
@click.option("--iters", type=click.IntRange(1, 10000), default=20, show_default=True)
@click.option("--warmup", type=click.IntRange(0, 1000), default=5, show_default=True)
@click.option(
    "--ranks",
    type=click.IntRange(1, 256),
    default=None,
    help="Processes on this node [default: GPU count for nccl; for gloo 2 on one node, "
    "1 per node with --nnodes].",
)
@click.option(
    "--nnodes",
    type=click.IntRange(1, 4096),
    default=1,
    show_default=True,
    envvar="NNODES",
    help="Hosts taking part; run the same command on each, with its own --node-rank [env NNODES].",
)
@click.option(
    "--node-rank",
    type=click.IntRange(0, 4095),
    default=0,
    show_default=True,
    envvar="NODE_RANK",
    help="This host's number, 0..nnodes-1; node 0 hosts the rendezvous [env NODE_RANK].",
)
@click.option(
    "--master",
    metavar="HOST:PORT",
    callback=_master,
    help="Node 0's address and a free TCP port every node can reach [default: "
    "$MASTER_ADDR:$MASTER_PORT]. Node 0 listens on the port on all its addresses.",
)
@click.option(
    "--rendezvous-timeout",
    "rendezvous_timeout_s",
    type=FiniteFloat(1, 3600),
    default=30,
    show_default=True,
    help="Seconds for all nodes to meet; a node that cannot reach node 0 by then fails, named.",
)
@click.option(
    "--node-names",
    metavar="NAME,...",
    default="",
    help="What to call node 0, 1, ... in messages (e.g. inventory names).",
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
def allreduce(backend, size, iters, warmup, ranks, nnodes, node_rank, master,
              rendezvous_timeout_s, node_names, timeout_s, nvml_timeout) -> Report:  # fmt: skip
    """All-reduce (SUM, float32) across ranks: checks every value, reports bus bandwidth.

    \b
    algbw = size/time and busbw = algbw * 2(n-1)/n, as nccl-tests reports them.
    Across hosts: run it on each with the same --nnodes and --master and its
    own --node-rank; the whole group is measured, then each pair of nodes,
    and a node whose pairs are slow is named with what to check.
    Skipped (exit 0) with one GPU on one host; exit 3 with none; exit 1 when
    wrong, broken, or a node cannot be reached within --rendezvous-timeout.
    """
    from dlcheck.allreduce import AllreduceOptions

    if nnodes > 1 and master is None:
        raise click.UsageError("--nnodes > 1 needs --master HOST:PORT (node 0's address and a "
                               "port), or MASTER_ADDR and MASTER_PORT in the environment")
    if node_rank >= nnodes:
        raise click.UsageError(f"--node-rank {node_rank} is not below --nnodes {nnodes}: number "
                               f"the nodes 0..{nnodes - 1}")  # fmt: skip
    apply_nvml_timeout(nvml_timeout)
    names = tuple(n.strip() for n in node_names.split(",") if n.strip())
    options = AllreduceOptions(backend, size, iters, warmup, ranks, timeout_s, nnodes, node_rank,
                               master, min(rendezvous_timeout_s, timeout_s), names)  # fmt: skip
    return build(options)
