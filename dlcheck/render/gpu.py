"""The human views of `dlcheck gpu`: one line per GPU and its processes (the default), every
field (--all), nvidia-smi's CSV (--query-gpu), and a live view (-l)."""

from __future__ import annotations

from dlcheck.checks import gpu_health
from dlcheck.gpu import FIELDS, GpuInventory, GpuRecord
from dlcheck.models import Report, Status
from dlcheck.render import Output, na
from dlcheck.render.table import Column

SUMMARY = [  # priority: the first to go when the terminal is narrow has the highest number
    Column("GPU", right=True),
    Column("name", priority=3, fold=True),
    Column("temp", priority=5, right=True),
    Column("util", priority=2, right=True),
    Column("memory MiB", priority=1, right=True),
    Column("power W", priority=4, right=True),
    Column("perf", priority=6),
    Column("fan", priority=7, right=True),
    Column("health"),
]
PROCESSES = [
    Column("GPU", right=True),
    Column("PID", right=True),
    Column("user", priority=3),
    Column("type", priority=4),
    Column("memory", priority=2, right=True),
    # What the process is: the last to go, and a long interpreter path must not cost it.
    Column("command", priority=1, fold=True, split_words=True),
]
HEALTH_STYLE = {"ok": None, "WARN": "yellow", "FAIL": "red"}


def render(report: Report, out: Output, full: bool = False, query=None,
           header: bool = True) -> None:  # fmt: skip
    data: GpuInventory = report.data
    if query is not None:
        from dlcheck import gpu_query

        if not header:  # a repeated CSV shows its header once
            query = gpu_query.Query(query.fields, False, query.units)
        out.write(gpu_query.csv(data, query))
        return
    out.write(title(data, None if out.plain else out.width) + "\n")
    if data.nvml.error == "not_responding":
        from dlcheck.checks.driver import HUNG_DRIVER_FIX

        out.say(f"FAIL nvml_not_responding: {data.nvml.detail}")
        out.fixes([("FAIL nvml_not_responding", HUNG_DRIVER_FIX)])
    elif data.nvml.error:
        for line in nvml_problem(data):
            out.say(line)
    elif not data.gpus:
        out.write("NVML reports no GPUs.\n")
    if full:
        out.write(fields_text(data, out.width if not out.plain else None))
    elif data.gpus:
        summary(data, out)
    if data.nvml.missing_functions:
        out.write("NVML functions missing on this driver: "
                  + ", ".join(data.nvml.missing_functions) + "\n")  # fmt: skip


def nvml_problem(data: GpuInventory) -> list[str]:
    state = data.nvml
    return [f"NVML unavailable: {state.error} ({state.detail})",
            "Run `dlcheck` for the diagnosis and the fix."]  # fmt: skip


def title(data: GpuInventory, width: int | None = None) -> str:
    """One line, or one part per line where the terminal is narrower than that line."""
    d = data.driver
    parts = [f"Driver {na(d.version)}", f"CUDA (driver) {na(d.cuda_driver_version)}",
             f"NVML {na(d.nvml_version)}"]  # fmt: skip
    line = "  ".join(parts)
    return "\n".join(parts) if width is not None and len(line) > width else line


def health(record: GpuRecord) -> tuple[str, list[str]]:
    """('ok' | 'WARN' | 'FAIL' | 'lost', the codes behind it), from the same per-GPU checks
    `dlcheck` runs (they are pure functions of the record)."""
    if record["error"]:
        return "FAIL", [record["error"]]
    results = [r for r in gpu_health.checks(record) if r.status in (Status.WARN, Status.FAIL)]
    if not results:
        return "ok", []
    return Status.worst(r.status for r in results).value, [r.code for r in results]


def summary(data: GpuInventory, out: Output) -> None:
    rows, styles, problems = [], [], []
    for g in data.gpus:
        state, codes = health(g)
        if codes:
            problems.append(f"GPU {g['index']}: {state} {', '.join(codes)}")
        memory = f"{na(g['memory.used'])} / {na(g['memory.total'])}"
        power = f"{_watts(g['power.draw'])} / {_watts(g['enforced.power.limit'])}"
        rows.append([
            str(g["index"]), na(g["name"]), na(g["temperature.gpu"], " C"),
            na(g["utilization.gpu"], " %"), memory, power, na(g["pstate"]),
            na(g["fan.speed"], " %"), state,
        ])  # fmt: skip
        styles.append(HEALTH_STYLE.get(state, "red") if out.color else None)
        for device in g["mig.devices"] or []:  # MIG slices under their GPU, with their memory
            used = f"{na(device['memory_used'])} / {na(device['memory_total'])}"
            rows.append([f"{g['index']}:{device['index']}", f"MIG {device['uuid']}", "", "",
                         used, "", "", "", ""])  # fmt: skip
            styles.append(None)
    out.table(SUMMARY, rows, styles=styles)
    for problem in problems:
        out.write(f"{problem}  (run `dlcheck` for the diagnosis and the fix)\n")
    procs = [
        [str(g["index"]), str(p["pid"]), na(p.get("user")), p.get("type", "C"),
         na(p["used_memory"], " MiB"), p.get("command") or na(p["process_name"])]
        for g in data.gpus for p in g["processes"] or []
    ]  # fmt: skip
    out.write("\n")
    if procs:
        out.table(PROCESSES, procs, title="Processes")
    elif any(g["processes"] is not None for g in data.gpus):
        out.write("Processes: none\n")


def _watts(value) -> str:
    return "N/A" if value is None else f"{value:.0f}"


def fields_text(data: GpuInventory, width: int | None) -> str:
    """Every field of every GPU, one per line, the field name never cut: `name  value`, or the
    value on its own indented line when the terminal is too narrow for both."""
    label = max(len(f) for f in FIELDS)
    lines = []
    for g in data.gpus:
        lines.append(f"\nGPU {g['index']}" + (f"  ** {g['error']} **" if g["error"] else ""))
        for key in FIELDS:
            if key in ("index", "error"):
                continue
            value = field_value(key, g[key])
            if width is None or label + 4 + len(value) <= width:
                lines.append(f"  {key:<{label}}  {value}")
            else:
                lines.append(f"  {key}\n      {value}")
    return "\n".join(lines) + "\n"


def field_value(key: str, value) -> str:
    if key == "processes" and value is not None:
        return na([f"{p['pid']} {p.get('type', 'C')} {p['process_name'] or '?'} "
                   f"{na(p['used_memory'], ' MiB')}" for p in value])  # fmt: skip
    if key == "mig.devices" and value is not None:
        return na([f"{d['index']}: {d['uuid']} {na(d['memory_used'])}/"
                   f"{na(d['memory_total'], ' MiB')}" for d in value])  # fmt: skip
    if key == "nvlink.links" and value is not None:
        active = sum(link["active"] for link in value)
        return f"{active}/{len(value)} active"
    return na(value, unit(key))


def unit(key: str) -> str:
    if key.startswith("memory."):
        return " MiB"
    if key.startswith("temperature."):
        return " C"
    if key.startswith(("power.", "enforced.power")):
        return " W"
    if key.startswith(("utilization.", "fan.")):
        return " %"
    if key.startswith("clocks.") and not key.startswith("clocks_event"):
        return " MHz"
    return ""
