"""`dlcheck gpu`: the per-GPU inventory from NVML. Imports no framework (fast)."""

from __future__ import annotations

import click

from dlcheck.commands.common import apply_nvml_timeout, command, nvml_timeout_option
from dlcheck.models import ExitCode, Report, Status


def build(show_ids: bool = False) -> Report:
    from dlcheck import gpu as gpu_module

    inventory = gpu_module.collect(show_ids=show_ids)
    lost = [g for g in inventory.gpus if g["error"]]
    errors = []
    if inventory.nvml.error:
        errors.append(f"nvml: {inventory.nvml.error}: {inventory.nvml.detail}")
    errors += [f"gpu {g['index']}: {g['error']}" for g in lost]
    if lost or inventory.nvml.error == "not_responding":
        return Report("gpu", inventory, ExitCode.NOT_READY, Status.FAIL, tuple(errors))
    code = ExitCode.READY if inventory.usable else ExitCode.CPU_ONLY
    return Report("gpu", inventory, code, Status.PASS, tuple(errors))


@command("gpu", renderer="dlcheck.render.gpu:render")
@click.option("--show-ids", is_flag=True, help="Show GPU UUIDs and serials (masked by default).")
@nvml_timeout_option
def gpu(show_ids: bool, nvml_timeout: float | None) -> Report:
    """Per-GPU inventory, fields named as `nvidia-smi --query-gpu` names them.

    Exit 0 with GPUs listed, 3 when NVML is unavailable or sees no GPU, 1 when a GPU is lost
    or the driver does not respond.
    """
    apply_nvml_timeout(nvml_timeout)
    return build(show_ids)
