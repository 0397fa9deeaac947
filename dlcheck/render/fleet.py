"""The human view of `dlcheck fleet`: one row per host, its problems and warnings, then what
changed since the run compared with."""

from __future__ import annotations

from dlcheck.fleet import CPU_ONLY, READY, HostRow
from dlcheck.models import Report
from dlcheck.render import Output
from dlcheck.render.table import Column

STATE_STYLE = {READY: "green", CPU_ONLY: "yellow"}
CHANGE_STYLE = {"worse": "red", "better": "green"}
CHANGE_COLUMNS = [
    Column("host"),
    Column("change"),
    Column("what", fold=True),
    Column("before", fold=True),
    Column("after", fold=True),
    Column("detail", priority=1, fold=True),
]
COLUMNS = [  # priority: the first to go when the terminal is narrow has the highest number
    Column("host"),
    Column("state"),
    Column("warn", priority=1),
    Column("GPUs", priority=2, fold=True),
    Column("speedup", priority=3),
    Column("perf", priority=3, fold=True),
    Column("smoke", priority=4, right=True),
    Column("driver", priority=5),
    Column("CUDA", priority=6),
    Column("frameworks", priority=7, fold=True),
]


def _speedup(row: HostRow) -> str:
    best = row.best_speedup
    if best is None:
        return "N/A"
    impl = max((k for k, v in row.speedup.items() if v == best), default="")
    return f"{best:.1f}x ({impl})"


def _gpus(row: HostRow) -> str:
    if not row.gpus:
        return "0" if row.verdict else "N/A"  # no dlcheck report: unknown, not zero
    names = sorted(set(row.gpus))
    return f"{len(row.gpus)} x {names[0]}" if len(names) == 1 else f"{len(row.gpus)} (mixed)"


def _smoke(row: HostRow) -> str:
    """passed/failed/skipped, failures and errors together."""
    if not row.smoke:
        return "N/A"
    broken = row.smoke["failed"] + row.smoke["error"]
    return f"{row.smoke['passed']}/{broken}/{row.smoke['skipped']}"


def _warn(row: HostRow) -> str:
    codes = row.warning_codes
    return f"{len(row.warnings)}: {', '.join(codes)}" if codes else "0"


def render(report: Report, out: Output) -> None:
    rows, counts = report.data.rows, report.data.summary
    cells = [
        [row.host, row.state, _warn(row), _gpus(row), _speedup(row), row.perf or "N/A",
         _smoke(row),
         row.driver or "N/A", row.cuda or "N/A",
         ", ".join(f"{name} {label}" for name, label in row.frameworks.items()) or "N/A"]
        for row in rows
    ]  # fmt: skip
    styles = [STATE_STYLE.get(row.state, "red") if out.color else None for row in rows]
    history = report.data.history
    title = f"dlcheck fleet: run {history.run}" if history.run else "dlcheck fleet"
    out.table(COLUMNS, cells, title=title, styles=styles)
    for row in rows:
        for problem in row.problems:
            out.say(f"{row.host}: {problem}", "  ")
        for warning in row.warnings:
            out.say(f"{row.host}: WARN {warning}", "  ")
    parts = [f"{counts[k]} {k}" for k in counts if k != "hosts" and counts[k]]
    out.write(f"{counts['hosts']} hosts: {', '.join(parts) or 'none'}\n")
    _changes(report.data, out)


def _changes(data, out: Output) -> None:
    history = data.history
    if history.layout != "runs":
        return
    if history.note:
        out.write(f"Changes: {history.note}\n")
    if history.baseline is None:
        return
    since = f" (--since {history.since})" if history.since else ""
    if not data.changes:
        out.write(f"\nNo changes since {history.baseline}{since}.\n")
        return
    cells = [[c.host, c.kind, c.subject, c.before or "-", c.after or "-", c.detail]
             for c in data.changes]  # fmt: skip
    styles = [CHANGE_STYLE.get(c.effect) if out.color else None for c in data.changes]
    out.write("\n")
    out.table(CHANGE_COLUMNS, cells, title=f"Changes since {history.baseline}{since}",
              styles=styles)  # fmt: skip
    hosts = len({c.host for c in data.changes})
    worse = sum(c.effect == "worse" for c in data.changes)
    count = len(data.changes)
    out.write(f"{count} change{'s' if count != 1 else ''} on {hosts} "
              f"host{'s' if hosts != 1 else ''} ({worse} for the worse)\n")
