"""The only code that writes reports to stdout: JSON envelope, rich tables, or plain text.

Plain text when stdout is not a terminal or NO_COLOR is set; rich is imported only
for a colour terminal, so piped and scripted runs stay fast.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from dlcheck.jsonout import envelope

STATUS_STYLE = {"PASS": "green", "INFO": "cyan", "SKIP": "dim", "WARN": "yellow", "FAIL": "red"}
VERDICT_TEXT = {
    "ready": "READY: this machine can train on its NVIDIA GPU(s).",
    "not_ready": "NOT READY: at least one check failed (see FAIL below).",
    "cpu_only": "CPU-ONLY: no usable NVIDIA GPU; deep learning runs on the CPU only.",
}
GPU_SUMMARY = (
    ("name", ""),
    ("compute_cap", ""),
    ("memory.total", " MiB"),
    ("temperature.gpu", " C"),
    ("power.draw", " W"),
    ("pstate", ""),
)


def plain_wanted(stream=None) -> bool:
    stream = stream or sys.stdout
    return bool(os.environ.get("NO_COLOR")) or not stream.isatty()


def json_out(command: str, status: str, data: Any, errors: list[str] | None = None) -> None:
    sys.stdout.write(envelope(command, status, data, errors) + "\n")


def na(value: Any, unit: str = "") -> str:
    if value is None:
        return "N/A"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return f"{value}{unit}"


# --- dlcheck gpu -----------------------------------------------------------------------


def gpu_view(data: dict[str, Any]) -> None:
    if data["gpus"] and not plain_wanted():
        _gpu_rich(data)
        return
    driver, nvml_state = data["driver"], data["nvml"]
    lines = [
        f"Driver {na(driver['version'])}   NVML {na(driver['nvml_version'])}   "
        f"max CUDA (driver) {na(driver['cuda_driver_version'])}"
    ]
    if nvml_state["error"]:
        lines.append(f"NVML unavailable: {nvml_state['error']} ({nvml_state['detail']})")
        lines.append("Run `dlcheck` for the diagnosis and the fix.")
    elif not data["gpus"]:
        lines.append("NVML reports no GPUs.")
    for g in data["gpus"]:
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
    if nvml_state["missing_functions"]:
        lines.append("")
        lines.append(
            "NVML functions missing on this driver: " + ", ".join(nvml_state["missing_functions"])
        )
    sys.stdout.write("\n".join(lines) + "\n")


def _gpu_cell(key: str, value: Any) -> str:
    if key == "processes" and value is not None:
        value = [f"{p['pid']} {p['process_name'] or '?'}" for p in value]
    return na(value, _unit(key))


def _gpu_rich(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    driver = data["driver"]
    table = Table(
        title=f"Driver {na(driver['version'])}, NVML {na(driver['nvml_version'])}, "
        f"max CUDA {na(driver['cuda_driver_version'])}",
        title_justify="left",
    )
    table.add_column("field", style="bold")
    for g in data["gpus"]:
        table.add_column(
            f"GPU {g['index']}" + (f" ({g['error']})" if g["error"] else ""), overflow="fold"
        )
    for key in data["gpus"][0]:
        if key in ("index", "error"):
            continue
        table.add_row(key, *(_escape(_gpu_cell(key, g[key])) for g in data["gpus"]))
    Console().print(table)


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


# --- dlcheck check ---------------------------------------------------------------------


def check_view(report: dict[str, Any], verbose: bool) -> None:
    if plain_wanted():
        sys.stdout.write(_check_plain(report, verbose))
    else:
        _check_rich(report, verbose)


def _facts(report: dict[str, Any]) -> list[tuple[str, str]]:
    s, d = report["system"], report["driver"]
    cpu, mem, disk, virt = s["cpu"], s["memory"], s["disk"], s["virtualization"]
    where = ", ".join(
        x
        for x in (
            f"container ({virt['container']})" if virt["container"] else "",
            "VM" if virt["virtual_machine"] else "",
            "WSL" if virt["wsl"] else "",
        )
        if x
    )
    rows = [
        ("Host", f"{report['host']['hostname']}" + (f"  [{where}]" if where else "")),
        ("OS", f"{na(s['os'])}, kernel {na(s['kernel'])}, {na(s['machine'])}"),
        ("CPU", f"{na(cpu['model'])}, {na(cpu['logical_cores'])} logical cores"),
        ("RAM", f"{na(mem['total_mib'], ' MiB')} (available {na(mem['available_mib'], ' MiB')})"),
        (
            "Disk",
            f"home {na(disk['home']['free_mib'], ' MiB')} free; dataset cache "
            f"{na(disk['dataset_cache']['free_mib'], ' MiB')} free "
            f"({disk['dataset_cache']['path']})",
        ),  # fmt: skip
        ("Python", f"{s['python']} ({s['python_executable']})"),
        (
            "Driver",
            f"{na(d['version'])}, NVML {na(d['nvml_version'])}, "
            f"max CUDA {na(d['cuda_driver_version'])}",
        ),  # fmt: skip
    ]
    for g in report["gpus"]:
        if g["error"]:
            rows.append((f"GPU {g['index']}", f"error: {g['error']}"))
        else:
            rows.append((f"GPU {g['index']}", ", ".join(na(g[k], u) for k, u in GPU_SUMMARY)))
    for name, fw in (report["frameworks"] or {}).items():
        rows.append((name, _framework_line(name, fw)))
    return rows


def _framework_line(name: str, fw: dict[str, Any]) -> str:
    if fw["probe"]["status"] in ("timeout", "crashed"):
        return f"probe {fw['probe']['status']}: {fw['error']}"
    if not fw["installed"]:
        return "not installed"
    if name == "keras":
        return f"{fw['version']}, backend {fw['backend']} (from {fw['backend_source']})"
    if fw["error"]:
        return f"{na(fw['version'])}, error: {fw['error']}"
    build = f"CUDA {fw['cuda']}" if fw.get("cuda_build") else "CPU build"
    return f"{fw['version']}, {build}, GPUs seen: {na(fw.get('gpu_count'))}"


def _check_plain(report: dict[str, Any], verbose: bool) -> str:
    out = [f"dlcheck: {VERDICT_TEXT[report['verdict']]}  (exit {report['exit_code']})", ""]
    out += [f"{label:<11} {value}" for label, value in _facts(report)]
    out += ["", "Checks"]
    for check in report["checks"]:
        out.append(f"  {check['status']:<5} {check['code']:<28} {check['message']}")
        if check["fix"] and check["status"] != "PASS":
            out.append(f"        fix: {check['fix']}")
        if verbose and check["evidence"]:
            out += [f"        {k}: {v}" for k, v in sorted(check["evidence"].items())]
    return "\n".join(out) + "\n"


def _check_rich(report: dict[str, Any], verbose: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    style = {"ready": "bold green", "not_ready": "bold red", "cpu_only": "bold yellow"}
    console.print(VERDICT_TEXT[report["verdict"]], style=style[report["verdict"]])
    facts = Table(show_header=False, box=None, pad_edge=False)
    facts.add_column(style="bold")
    facts.add_column()
    for label, value in _facts(report):
        facts.add_row(label, value)
    console.print(facts)
    checks = Table(title="Checks", title_justify="left", show_lines=False)
    for column in ("Status", "Code", "Message / fix"):
        checks.add_column(column)
    for check in report["checks"]:
        text = _escape(check["message"])
        if check["fix"] and check["status"] != "PASS":
            text += f"\n[dim]fix:[/dim] {_escape(check['fix'])}"
        if verbose and check["evidence"]:
            text += "\n" + "\n".join(
                f"[dim]{k}: {_escape(str(v))}[/dim]" for k, v in sorted(check["evidence"].items())
            )
        checks.add_row(
            f"[{STATUS_STYLE[check['status']]}]{check['status']}[/]", check["code"], text
        )
    console.print(checks)


def _escape(text: str) -> str:
    return text.replace("[", "\\[")
