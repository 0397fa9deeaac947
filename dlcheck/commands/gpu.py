"""`dlcheck gpu`: the per-GPU inventory from NVML. Imports no framework (fast)."""

from __future__ import annotations

import click

from dlcheck.commands.common import guarded
from dlcheck.models import ExitCode


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the versioned JSON envelope.")
@click.option("--show-ids", is_flag=True, help="Show GPU UUIDs and serials (masked by default).")
@click.option("--debug", is_flag=True, help="Show a traceback on internal errors.")
def gpu(as_json: bool, show_ids: bool, debug: bool) -> ExitCode:
    """Per-GPU inventory, fields named as `nvidia-smi --query-gpu` names them.

    Exit 0 with GPUs listed, 3 when NVML is unavailable or sees no GPU.
    """
    return guarded(debug, _run, as_json, show_ids)


def _run(as_json: bool, show_ids: bool) -> ExitCode:
    from dlcheck import gpu as gpu_module
    from dlcheck import render

    data = gpu_module.collect(show_ids=show_ids)
    usable = [g for g in data["gpus"] if not g["error"]]
    lost = len(usable) < len(data["gpus"])
    status = "FAIL" if lost else ("PASS" if usable else "SKIP")
    errors = (
        [f"nvml: {data['nvml']['error']}: {data['nvml']['detail']}"]
        if data["nvml"]["error"]
        else []
    )
    errors += [f"gpu {g['index']}: {g['error']}" for g in data["gpus"] if g["error"]]
    if as_json:
        render.json_out("gpu", status, data, errors)
    else:
        render.gpu_view(data)
    if lost:
        return ExitCode.NOT_READY
    return ExitCode.READY if usable else ExitCode.CPU_ONLY
