"""The --plot figure: the book's loss and accuracy curves, CPU-vs-GPU epoch times, and a caption
that says what was measured where (host, CPU, GPU, driver, frameworks, threads, protocol, data,
date), so a PNG passed around still carries its context."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlcheck.bench.impls import IMPLS

if TYPE_CHECKING:
    from dlcheck.commands.bench import BenchReport

# Colour and line per implementation: torch and torch-sparse compute the same function, so
# their curves lie on top of each other; a wide pale line under a thin dashed one keeps both
# visible. Devices: filled markers on the CPU, hollow on a GPU.
LINES = {
    "keras": {"color": "#1f77b4", "linestyle": "-", "lw": 1.6, "alpha": 0.9},
    "torch": {"color": "#d62728", "linestyle": "-", "lw": 4.0, "alpha": 0.45},
    "torch-sparse": {"color": "#2ca02c", "linestyle": "--", "lw": 1.4, "alpha": 0.95},
}


def write(report: BenchReport, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = [r for r in report.rows if r.run.outcome is not None]
    book = report.options.protocol == "book"
    key = "book" if book else "retrain"
    fig, (ax_loss, ax_acc, ax_time) = plt.subplots(1, 3, figsize=(17, 5.6))
    for number, row in enumerate(rows):
        curves = row.run.outcome.history.get(key)
        if not curves:
            continue
        epochs = list(range(1, len(curves["loss"]) + 1))
        style = {
            **LINES.get(row.impl, {"color": f"C{number}"}),
            "marker": IMPLS[row.impl].marker if row.impl in IMPLS else "o",
            "markerfacecolor": None if row.device == "cpu" else "none",
            "markevery": (number % 3, 3) if len(epochs) > 6 else None, "ms": 6,
        }  # fmt: skip
        label = f"{row.impl} on {row.device}"
        ax_loss.plot(epochs, curves["loss"], label=f"{label}, training", **style)
        ax_acc.plot(epochs, curves["accuracy"], label=f"{label}, training", **style)
        if book:
            faint = {**style, "linestyle": ":", "alpha": 0.6}
            ax_loss.plot(epochs, curves["val_loss"], label=f"{label}, validation", **faint)
            ax_acc.plot(epochs, curves["val_accuracy"], label=f"{label}, validation", **faint)
    epochs_run = report.options.epochs
    what = "training and validation (dotted)" if book else f"training, {epochs_run} epochs"
    ax_loss.set(title=f"Loss: {what}", xlabel="epoch", ylabel="binary cross-entropy")
    ax_acc.set(title=f"Accuracy: {what}", xlabel="epoch", ylabel="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7, loc="best")
    _epoch_times(ax_time, rows)
    fig.suptitle(_title(report), fontsize=11)
    fig.text(0.01, 0.01, _caption(report), fontsize=7.5, family="monospace", va="bottom")
    fig.tight_layout(rect=(0, 0.08, 1, 0.95))
    # --plot was checked before the run: its folder exists or can be made (system.folder_problem)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _epoch_times(ax, rows) -> None:
    impls = list(dict.fromkeys(r.impl for r in rows))
    devices = list(dict.fromkeys(r.device for r in rows))
    width = 0.8 / max(len(devices), 1)
    for d, device in enumerate(devices):
        xs, medians, low, high = [], [], [], []
        for i, impl in enumerate(impls):
            row = next((r for r in rows if r.impl == impl and r.device == device), None)
            summary = row.summary if row else None
            if summary and summary.median_epoch_s:
                xs.append(i + d * width)
                medians.append(summary.median_epoch_s)
                low.append(summary.median_epoch_s - summary.min_epoch_s)
                high.append(summary.max_epoch_s - summary.median_epoch_s)
        bars = ax.bar(xs, medians, width, yerr=[low, high], capsize=3, label=device,
                      hatch=None if device == "cpu" else "//")  # fmt: skip
        ax.bar_label(bars, labels=[f"{m:.3f} s" for m in medians], fontsize=7, padding=2)
    ax.set_xticks([i + width * (len(devices) - 1) / 2 for i in range(len(impls))], impls)
    ax.set(title="Median training epoch (error bars: min-max)", ylabel="seconds per epoch")
    ax.legend()


def _title(report: BenchReport) -> str:
    source = "SYNTHETIC IMDB-shaped data" if report.dataset.synthetic else "IMDB (Keras imdb.npz)"
    return f"dlcheck bench on {report.machine.host}: {source}, protocol {report.options.protocol}"


def _caption(report: BenchReport) -> str:
    machine, options = report.machine, report.options
    versions: dict[str, str] = {}
    for row in report.rows:
        for name, version in (row.run.outcome.versions if row.run.outcome else {}).items():
            if name not in ("gpu",):
                versions.setdefault(name, str(version))
    gpu = f"{machine.gpu}, driver {machine.driver}" if machine.gpu else "no GPU rows"
    return "\n".join([
        f"host {machine.host}  |  CPU {machine.cpu} ({machine.logical_cores} logical cores)  |  "
        f"GPU {gpu}",
        "frameworks " + (", ".join(f"{k} {v}" for k, v in sorted(versions.items())) or "N/A")
        + f"  |  {report.threads} CPU thread(s) per implementation",
        f"protocol {options.protocol}, {options.epochs} epochs, batch {options.batch_size}, "
        f"seed {options.seed}  |  data {report.dataset.source}  |  {machine.started_at}",
    ])  # fmt: skip
