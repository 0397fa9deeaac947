"""The human view of `dlcheck bench`: the results table, the phases, verdicts and notes."""

from __future__ import annotations

from dlcheck.bench.impls import IMPLS
from dlcheck.commands.bench import BenchReport
from dlcheck.models import Report
from dlcheck.render import Output, escape


def _fmt(value, spec, suffix=""):
    return "N/A" if value is None else f"{value:{spec}}{suffix}"


def render(report: Report, out: Output) -> None:
    from rich.table import Table

    data: BenchReport = report.data
    plain = out.plain
    console = out.console()
    dataset = (
        "SYNTHETIC IMDB-shaped data (not real reviews)"
        if data.dataset.synthetic
        else f"IMDB (Keras imdb.npz, sha256 {str(data.dataset.sha256)[:12]}...)"
    )
    title = f"dlcheck bench: {dataset}, protocol {data.options.protocol}"
    grid = Table(title=title, title_justify="left", box=None, pad_edge=False)
    for header, justify in (
        ("implementation", "left"),
        ("device", "left"),
        ("backend", "left"),
        ("median epoch", "right"),
        ("min-max", "right"),
        ("samples/s", "right"),
        ("speedup", "right"),
        ("test acc", "right"),
        ("verdict", "left"),
    ):
        grid.add_column(header, justify=justify)
    colours = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}
    for row in data.rows:
        verdict = row.verdict.value
        summary, outcome = row.summary, row.run.outcome
        spread = (
            "N/A"
            if summary.min_epoch_s is None
            else f"{summary.min_epoch_s:.3f}-{summary.max_epoch_s:.3f}"
        )
        grid.add_row(
            IMPLS[row.impl].label if row.impl in IMPLS else row.impl,
            row.device,
            escape((outcome.backend if outcome else None) or "N/A"),
            _fmt(summary.median_epoch_s, ".3f", " s"),
            spread,
            _fmt(summary.samples_per_s, ",.0f"),
            _fmt(row.speedup, ".1f", "x"),
            _fmt(outcome.test_accuracy if outcome else None, ".4f"),
            verdict if plain else f"[{colours.get(verdict, 'white')}]{verdict}[/]",
        )
    console.print(grid)
    console.print(_phases(data, Table))
    for row in data.rows:
        for name, check in row.verdicts.items():
            if check.status.value != "PASS":
                console.print(
                    f"  {check.status.value} {row.impl} on {row.device} ({name}): "
                    f"{check.message}",
                    markup=False,
                )
    for note in data.notes:
        console.print(f"  note: {note}", markup=False)


PHASES = (
    ("vectorise", "vectorise"),
    ("to_device", "to device"),
    ("build", "build"),
    ("warmup", "warm-up epoch"),
    ("evaluate", "evaluate"),
)


def _phases(data: BenchReport, table_class):
    """Every phase timed apart: what the median epoch leaves out is shown here."""
    grid = table_class(title="phases (seconds)", title_justify="left", pad_edge=False, box=None)
    grid.add_column("implementation")
    grid.add_column("device")
    for _, header in PHASES:
        grid.add_column(header, justify="right")
    grid.add_column("timed epochs", justify="right")
    grid.add_column("child wall", justify="right")
    for row in data.rows:
        outcome = row.run.outcome
        phases = outcome.phases if outcome else {}
        epochs = outcome.epoch_times if outcome else []
        grid.add_row(
            row.impl,
            row.device,
            *(_fmt(phases.get(key), ".2f") for key, _ in PHASES),
            f"{sum(epochs):.2f} ({len(epochs)})" if epochs else "N/A",
            _fmt(row.run.wall_s, ".1f"),
        )
    return grid


