"""The human view of `dlcheck bench`: results, phases, then verdicts and notes as lines."""

from __future__ import annotations

from dlcheck.bench.impls import IMPLS
from dlcheck.commands.bench import BenchReport
from dlcheck.models import Report
from dlcheck.render import STATUS_STYLE, Output
from dlcheck.render.table import Column

RESULTS = [  # priority: the first to go when the terminal is narrow has the highest number
    Column("impl"),
    Column("device"),
    Column("threads", priority=4, right=True),
    Column("backend", priority=6),
    Column("median s", right=True),
    Column("min-max s", priority=5, right=True),
    Column("samples/s", priority=3, right=True),
    Column("GFLOP/s", priority=7, right=True),
    Column("speedup", priority=1, right=True),
    Column("test acc", priority=2, right=True),
    Column("verdict"),
]
PHASES = (
    ("vectorise", "vectorise"),
    ("to_device", "to device"),
    ("build", "build"),
    ("warmup", "warm-up epoch"),
    ("evaluate", "evaluate"),
)


def _fmt(value, spec, suffix=""):
    return "N/A" if value is None else f"{value:{spec}}{suffix}"


def render(report: Report, out: Output) -> None:
    data: BenchReport = report.data
    dataset = (
        "SYNTHETIC IMDB-shaped data (not real reviews)"
        if data.dataset.synthetic
        else f"IMDB (Keras imdb.npz, sha256 {str(data.dataset.sha256)[:12]}...)"
    )
    rows, styles = [], []
    for row in data.rows:
        summary, outcome = row.summary, row.run.outcome
        spread = (
            "N/A" if summary.min_epoch_s is None
            else f"{summary.min_epoch_s:.3f}-{summary.max_epoch_s:.3f}"
        )  # fmt: skip
        rows.append([
            row.impl, row.device,
            _fmt(outcome.threads if outcome else None, "d"),
            (outcome.backend if outcome else None) or "N/A",
            _fmt(summary.median_epoch_s, ".3f"), spread,
            _fmt(summary.samples_per_s, ",.0f"), _fmt(summary.gflops, ",.1f"),
            _fmt(row.speedup, ".1f", "x"),
            _fmt(outcome.test_accuracy if outcome else None, ".4f"), row.verdict.value,
        ])  # fmt: skip
        styles.append(STATUS_STYLE[row.verdict.value] if out.color else None)
    out.table(RESULTS, rows, title=f"dlcheck bench: {dataset}, protocol {data.options.protocol}",
              styles=styles)  # fmt: skip
    present = dict.fromkeys(row.impl for row in data.rows)
    out.write("".join(f"  {IMPLS[i].label}\n" for i in present if i in IMPLS) + "\n")
    out.table(*_phases(data), title="phases (seconds)")
    lines = [
        f"{check.status.value} {row.impl} on {row.device} ({name}): {check.message}"
        for row in data.rows for name, check in row.verdicts.items()
        if check.status.value != "PASS"
    ]  # fmt: skip
    lines += [f"note: {note}" for note in data.notes]
    for line in lines:
        out.say(line, "  ")
    if not lines:
        out.write("\n")


def _phases(data: BenchReport):
    columns = [Column("implementation"), Column("device")]
    columns += [Column(header, priority=2, right=True) for _, header in PHASES]
    columns += [Column("timed epochs", priority=1, right=True),
                Column("child wall", right=True)]  # fmt: skip
    rows = []
    for row in data.rows:
        outcome = row.run.outcome
        phases = outcome.phases if outcome else {}
        epochs = outcome.epoch_times if outcome else []
        rows.append([
            row.impl, row.device, *(_fmt(phases.get(key), ".2f") for key, _ in PHASES),
            f"{sum(epochs):.2f} ({len(epochs)})" if epochs else "N/A", _fmt(row.run.wall_s, ".1f"),
        ])  # fmt: skip
    return columns, rows
