"""The --plot figure: the book's loss and accuracy curves, and CPU-vs-GPU epoch times."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dlcheck.bench.impls import IMPLS
from dlcheck.models import plain

if TYPE_CHECKING:
    from dlcheck.commands.bench import BenchReport


def write(report: BenchReport, path: str) -> None:
    """The book's two figures (loss, accuracy per epoch) and CPU vs GPU epoch times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = plain(report)
    rows = [r for r in data["results"] if not r.get("error")]
    fig, (ax_loss, ax_acc, ax_time) = plt.subplots(1, 3, figsize=(16, 4.8))
    from matplotlib.ticker import MaxNLocator

    book = data["protocol"] == "book"
    key = "book" if book else "retrain"
    markers = {name: impl.marker for name, impl in IMPLS.items()}
    for row in rows:
        curves = (row.get("history") or {}).get(key)
        if not curves:
            continue
        epochs = range(1, len(curves["loss"]) + 1)
        label = f"{row['impl']} {row['device']}"
        style = dict(marker=markers.get(row["impl"], "o"), ms=5, alpha=0.85)
        (line,) = ax_loss.plot(epochs, curves["loss"], "-", label=f"{label} training", **style)
        ax_acc.plot(epochs, curves["accuracy"], "-", color=line.get_color(), label=label, **style)
        if book:
            colour = line.get_color()
            ax_loss.plot(epochs, curves["val_loss"], "--", color=colour, label="validation")
            ax_acc.plot(epochs, curves["val_accuracy"], "--", color=line.get_color())
    what = "training (o-) and validation (--)" if book else "training, 4-epoch retrain on 25000"
    ax_loss.set(title=f"Loss: {what}", xlabel="epoch", ylabel="binary cross-entropy")
    ax_acc.set(title=f"Accuracy: {what}", xlabel="epoch", ylabel="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(fontsize=7)

    impls = list(dict.fromkeys(r["impl"] for r in rows))
    devices = list(dict.fromkeys(r["device"] for r in rows))
    width = 0.8 / max(len(devices), 1)
    for d, device in enumerate(devices):
        xs, medians, low, high = [], [], [], []
        for i, impl in enumerate(impls):
            row = next((r for r in rows if r["impl"] == impl and r["device"] == device), None)
            if row and row.get("median_epoch_s"):
                xs.append(i + d * width)
                medians.append(row["median_epoch_s"])
                low.append(row["median_epoch_s"] - row["min_epoch_s"])
                high.append(row["max_epoch_s"] - row["median_epoch_s"])
        bars = ax_time.bar(xs, medians, width, yerr=[low, high], capsize=3, label=device)
        ax_time.bar_label(bars, labels=[f"{m:.3f} s" for m in medians], fontsize=7, padding=2)
    ax_time.set_xticks([i + width * (len(devices) - 1) / 2 for i in range(len(impls))], impls)
    ax_time.set(title="Median training epoch (error bars: min-max)", ylabel="seconds per epoch")
    ax_time.legend()
    source = "SYNTHETIC IMDB-shaped data" if data["synthetic"] else "IMDB (Keras imdb.npz)"
    fig.suptitle(f"dlcheck bench: {source}, protocol {data['protocol']}")
    fig.tight_layout()
    # --plot was checked before the run: its folder exists or can be made (system.folder_problem)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
