"""The human view of `dlcheck fleet`: one row per host, problems listed under it."""

from __future__ import annotations

from rich import box
from rich.table import Table

from dlcheck.fleet import CPU_ONLY, READY, HostRow
from dlcheck.models import Report
from dlcheck.render import Output, escape

_STYLE = {READY: "green", CPU_ONLY: "yellow"}


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


def render(report: Report, out: Output) -> None:
    rows, counts = report.data.rows, report.data.summary
    table = Table(box=box.SIMPLE_HEAD, title="dlcheck fleet", title_justify="left")
    columns = (
        "host",
        "state",
        "GPUs",
        "driver",
        "CUDA",
        "frameworks",
        "verdict",
        "speedup",
        "smoke",
    )
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        frameworks = ", ".join(f"{name} {label}" for name, label in row.frameworks.items())
        cells = (_gpus(row), row.driver or "N/A", row.cuda or "N/A", frameworks or "N/A",
                 row.verdict or "N/A", _speedup(row), _smoke(row))  # fmt: skip
        table.add_row(
            escape(row.host),
            row.state if out.plain else f"[{_STYLE.get(row.state, 'red')}]{row.state}[/]",
            *(escape(cell) for cell in cells),
        )
    console = out.console()
    console.print(table)
    for row in rows:
        for problem in row.problems:
            console.print(f"  {row.host}: {problem}", markup=False)
    parts = [f"{counts[k]} {k}" for k in counts if k != "hosts" and counts[k]]
    console.print(f"{counts['hosts']} hosts: {', '.join(parts) or 'none'}", markup=False)
