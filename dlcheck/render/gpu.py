"""The human view of `dlcheck gpu`."""

from __future__ import annotations

from typing import Any

from dlcheck.gpu import GpuInventory
from dlcheck.models import Report
from dlcheck.render import Output, escape, na


def render(report: Report, out: Output) -> None:
    data: GpuInventory = report.data
    if data.gpus and not out.plain:
        _gpu_rich(data, out)
        return
    driver, nvml_state = data.driver, data.nvml
    lines = [
        f"Driver {na(driver.version)}   NVML {na(driver.nvml_version)}   "
        f"max CUDA (driver) {na(driver.cuda_driver_version)}"
    ]
    if nvml_state.error:
        lines += _nvml_problem(nvml_state)
    elif not data.gpus:
        lines.append("NVML reports no GPUs.")
    for g in data.gpus:
        lines.append("")
        lines.append(f"GPU {g['index']}" + (f"  ** {g['error']} **" if g["error"] else ""))
        for key, value in g.items():
            if key in ("index", "error"):
                continue
            if key == "processes":
                value = [
                    f"{p['pid']} {p['process_name'] or '?'} {na(p['used_memory'], ' MiB')}"
                    for p in value or []
                ] if value is not None else None  # fmt: skip
            lines.append(f"  {key:<40} {na(value, _unit(key))}")
    if nvml_state.missing_functions:
        lines.append("")
        lines.append(
            "NVML functions missing on this driver: " + ", ".join(nvml_state.missing_functions)
        )
    out.write("\n".join(lines) + "\n")


def _nvml_problem(nvml_state) -> list[str]:
    """A hung driver gets its diagnosis and fix here: rerunning `dlcheck` would hang as long."""
    if nvml_state.error == "not_responding":
        from dlcheck.checks.driver import HUNG_DRIVER_FIX

        return [f"FAIL nvml_not_responding: {nvml_state.detail}", f"Fix: {HUNG_DRIVER_FIX}"]
    return [f"NVML unavailable: {nvml_state.error} ({nvml_state.detail})",
            "Run `dlcheck` for the diagnosis and the fix."]  # fmt: skip


def _gpu_cell(key: str, value: Any) -> str:
    if key == "processes" and value is not None:
        value = [f"{p['pid']} {p['process_name'] or '?'}" for p in value]
    return na(value, _unit(key))


def _gpu_rich(data: GpuInventory, out: Output) -> None:
    from rich.table import Table

    driver = data.driver
    table = Table(
        title=escape(f"Driver {na(driver.version)}, NVML {na(driver.nvml_version)}, "
                     f"max CUDA {na(driver.cuda_driver_version)}"),
        title_justify="left",
    )
    table.add_column("field", style="bold")
    for g in data.gpus:
        table.add_column(
            f"GPU {g['index']}" + (f" ({g['error']})" if g["error"] else ""), overflow="fold"
        )
    for key in data.gpus[0]:
        if key in ("index", "error"):
            continue
        table.add_row(key, *(escape(_gpu_cell(key, g[key])) for g in data.gpus))
    console = out.console()
    console.print(table)
    for line in _nvml_problem(data.nvml) if data.nvml.error else []:  # e.g. a GPU that hung
        console.print(line, markup=False)


def _unit(key: str) -> str:
    if key.startswith("memory."):
        return " MiB"
    if key.startswith("temperature."):
        return " C"
    if key.startswith(("power.", "enforced.power")):
        return " W"
    if key.startswith("clocks.") and not key.startswith("clocks_event"):
        return " MHz"
    return ""

