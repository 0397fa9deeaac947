"""The human view of `dlcheck check`."""

from __future__ import annotations

from rich.table import Table

from dlcheck.commands.check import CheckReport
from dlcheck.frameworks import ProbeResult
from dlcheck.models import Report
from dlcheck.render import STATUS_STYLE, Output, escape, na
from dlcheck.render.table import Column

VERDICT_TEXT = {
    "ready": "READY: this machine can train on its NVIDIA GPU(s).",
    "not_ready": "NOT READY: at least one check failed or could not be checked (see FAIL below).",
    "cpu_only": "CPU-ONLY: no usable NVIDIA GPU; deep learning runs on the CPU only.",
}
VERDICT_STYLE = {"ready": "bold green", "not_ready": "bold red", "cpu_only": "bold yellow"}
GPU_SUMMARY = (
    ("name", ""),
    ("compute_cap", ""),
    ("memory.total", " MiB"),
    ("temperature.gpu", " C"),
    ("power.draw", " W"),
    ("pstate", ""),
)


def render(report: Report, out: Output, verbose: bool = False) -> None:
    data: CheckReport = report.data
    verdict = f"{VERDICT_TEXT[data.verdict]}  (exit {int(data.exit_code)})"
    if out.plain:
        out.write(f"dlcheck: {verdict}\n\n")
        out.write("".join(f"{label:<11} {value}\n" for label, value in _facts(data)))
        out.write("\n")
    else:
        out.print(escape(verdict), style=VERDICT_STYLE[data.verdict])
        facts = Table(show_header=False, box=None, pad_edge=False)
        facts.add_column(style="bold", no_wrap=True)
        facts.add_column(overflow="fold")
        for label, value in _facts(data):
            facts.add_row(escape(label), escape(value))
        out.print(facts)
    columns = [Column("status", style=None), Column("code"), Column("message", fold=True)]
    rows = [[c.status.value, c.code, c.message] for c in data.checks]
    styles = [STATUS_STYLE[c.status.value] if out.color else None for c in data.checks]
    out.table(columns, rows, title="Checks", styles=styles)
    if verbose:
        evidence = [
            [c.code, key, str(value)]
            for c in data.checks for key, value in sorted(c.evidence.items())
        ]  # fmt: skip
        out.table([Column("code"), Column("evidence"), Column("value", fold=True)], evidence,
                  title="Evidence (-v)")  # fmt: skip
    out.fixes([(f"{c.status.value} {c.code}: {c.message}", c.fix)
               for c in data.checks if c.fix and c.status.value != "PASS"])  # fmt: skip


def _facts(data: CheckReport) -> list[tuple[str, str]]:
    facts = data.facts
    s, d = facts.system, facts.gpu.driver
    virt, disk = s.virtualization, s.disk
    where = ", ".join(
        x
        for x in (
            f"container ({virt.container})" if virt.container else "",
            "VM" if virt.virtual_machine else "",
            "WSL" if virt.wsl else "",
        )
        if x
    )
    rows = [
        ("Host", facts.host + (f"  [{where}]" if where else "")),
        ("OS", f"{na(s.os)}, kernel {na(s.kernel)}, {na(s.machine)}"),
        ("CPU", f"{na(s.cpu.model)}, {na(s.cpu.logical_cores)} logical cores"),
        ("RAM", f"{na(s.memory.total_mib, ' MiB')} "
                f"(available {na(s.memory.available_mib, ' MiB')})"),  # fmt: skip
        ("Disk", f"home {na(disk.home.free_mib, ' MiB')} free; dataset cache "
                 f"{na(disk.dataset_cache.free_mib, ' MiB')} free ({disk.dataset_cache.path})"),
        ("Python", f"{s.python} ({s.python_executable})"),
        ("Driver", f"{na(d.version)}, NVML {na(d.nvml_version)}, "
                   f"max CUDA {na(d.cuda_driver_version)}"),
    ]  # fmt: skip
    for g in facts.gpu.gpus:
        if g["error"]:
            rows.append((f"GPU {g['index']}", f"error: {g['error']}"))
        else:
            rows.append((f"GPU {g['index']}", ", ".join(na(g[k], u) for k, u in GPU_SUMMARY)))
    for name, fw in (facts.frameworks or {}).items():
        rows.append((name, framework_line(fw)))
    return rows


def framework_line(fw: ProbeResult) -> str:
    if not fw.probe.answered:
        return f"not checked (probe {fw.probe.status}): {fw.error}"
    if not fw.installed:
        return "not installed"
    if fw.backend is not None or fw.backend_source is not None:
        return f"{fw.version}, backend {fw.backend} (from {fw.backend_source})"
    if fw.error:
        return f"{na(fw.version)}, error: {fw.error}"
    build = f"CUDA {fw.cuda}" if fw.cuda_build else "CPU build"
    return f"{fw.version}, {build}, GPUs seen: {na(fw.gpu_count)}"
