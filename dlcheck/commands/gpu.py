"""`dlcheck gpu`: the per-GPU inventory from NVML. Imports no framework (fast)."""

from __future__ import annotations

import functools

import click

from dlcheck.commands.common import (
    FiniteFloat,
    Repeat,
    apply_nvml_timeout,
    command,
    nvml_timeout_option,
    show_ids_option,
)
from dlcheck.models import ExitCode, Report, Status

HELP = """Per-GPU inventory, fields named as `nvidia-smi --query-gpu` names them.

\b
By default one line per GPU (temperature, utilization, memory, power, P-state,
fan, and a health flag from the same per-GPU checks `dlcheck` runs), then the
processes on each GPU (compute C, graphics G, MPS M). --all prints every field;
--json the whole record (utilization incl. encoder/decoder, fan, NVLink links,
MIG devices, processes).

\b
  dlcheck gpu --query-gpu=index,name,utilization.gpu,memory.used --format=csv
  dlcheck gpu -i 0 -l 2        # GPU 0, refreshed every 2 s (Ctrl-C ends, exit 130)

UUIDs and serials are masked by default with a short keyed hash that is distinct
per GPU and stable across runs (set DLCHECK_MASK_KEY to use your own key);
--show-ids prints them.

Exit 0 with GPUs listed, 3 when NVML is unavailable or sees no GPU, 1 when a GPU
is lost or the driver does not respond, 2 for a bad option or an -i that names no GPU.
"""


def build(show_ids: bool = False, select: tuple[str, ...] = ()) -> Report:
    from dlcheck import gpu as gpu_module

    inventory = gpu_module.collect(show_ids=show_ids, select=select)
    if select and not inventory.gpus and not inventory.nvml.error:
        raise click.UsageError(f"-i {','.join(select)}: no GPU has that index, UUID or bus id "
                               "(dlcheck gpu lists them)")  # fmt: skip
    lost = [g for g in inventory.gpus if g["error"]]
    errors = []
    if inventory.nvml.error:
        errors.append(f"nvml: {inventory.nvml.error}: {inventory.nvml.detail}")
    errors += [f"gpu {g['index']}: {g['error']}" for g in lost]
    if lost or inventory.nvml.error == "not_responding":
        return Report("gpu", inventory, ExitCode.NOT_READY, Status.FAIL, tuple(errors))
    code = ExitCode.READY if inventory.usable else ExitCode.CPU_ONLY
    return Report("gpu", inventory, code, Status.PASS, tuple(errors))


def _query(text: str | None, fmt: str | None):
    if text is None:
        if fmt is not None:
            raise click.UsageError("--format goes with --query-gpu=FIELDS")
        return None
    from dlcheck import gpu_query

    try:
        header, units = gpu_query.parse_format(fmt or "csv")
        return gpu_query.Query(gpu_query.parse_fields(text), header, units)
    except ValueError as error:
        raise click.UsageError(str(error)) from None


@command("gpu", renderer="dlcheck.render.gpu:render", help=HELP)
@click.option(
    "-a", "-q", "--all", "full", is_flag=True, help="Every field of every GPU (like nvidia-smi -q)."
)
@click.option(
    "--query-gpu",
    "query_fields",
    metavar="FIELDS",
    help="Comma-separated nvidia-smi field names; prints CSV (see --format).",
)
@click.option(
    "--format",
    "query_format",
    metavar="csv[,noheader][,nounits]",
    help="With --query-gpu: csv, optionally without the header line or units.",
)
@click.option(
    "-i",
    "--id",
    "select",
    metavar="ID[,ID...]",
    help="Only these GPUs: index, UUID (full or masked) or PCI bus id.",
)
@click.option(
    "-l",
    "--loop",
    "every",
    type=FiniteFloat(min=0.2, max=86400),
    metavar="SECONDS",
    help="Refresh every SECONDS until Ctrl-C (a live view on a terminal).",
)
@click.option("--watch", is_flag=True, help="Same as -l 2.")
@show_ids_option
@nvml_timeout_option
def gpu(full, query_fields, query_format, select, every, watch, show_ids, nvml_timeout):
    apply_nvml_timeout(nvml_timeout)
    query = _query(query_fields, query_format)
    selected = tuple(s.strip() for s in (select or "").split(",") if s.strip())
    if watch and every is None:
        every = 2.0
    rebuild = functools.partial(build, show_ids, selected)
    view = {"full": full, "query": query}
    return rebuild(), view, Repeat(every, rebuild) if every else None
