"""The human table (rich; plain without a TTY or with NO_COLOR) and the --plot figure."""

from __future__ import annotations

import os
import sys

NAMES = {
    "keras": "keras (book code, fit)",
    "torch": "torch (native, dense)",
    "torch-sparse": "torch-sparse (word indices)",
}


def _fmt(value, spec, suffix=""):
    return "N/A" if value is None else f"{value:{spec}}{suffix}"


def table(data: dict, stream=None) -> None:
    from rich.console import Console
    from rich.table import Table

    stream = stream or sys.stdout
    plain = not stream.isatty() or "NO_COLOR" in os.environ
    width = 120 if plain else None
    console = Console(file=stream, no_color=plain, highlight=False, width=width)
    dataset = (
        "SYNTHETIC IMDB-shaped data (not real reviews)"
        if data["synthetic"]
        else f"IMDB (Keras imdb.npz, sha256 {str(data.get('sha256'))[:12]}...)"
    )
    title = f"dlcheck bench: {dataset}, protocol {data['protocol']}"
    grid = Table(title=title, title_justify="left", box=None if plain else None, pad_edge=False)
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
    for row in data["results"]:
        verdict = row["verdict"]
        spread = (
            "N/A"
            if row.get("min_epoch_s") is None
            else f"{row['min_epoch_s']:.3f}-{row['max_epoch_s']:.3f}"
        )
        grid.add_row(
            NAMES.get(row["impl"], row["impl"]),
            row["device"],
            row.get("backend") or "N/A",
            _fmt(row.get("median_epoch_s"), ".3f", " s"),
            spread,
            _fmt(row.get("samples_per_s"), ",.0f"),
            _fmt(row.get("speedup"), ".1f", "x"),
            _fmt(row.get("test_accuracy"), ".4f"),
            verdict if plain else f"[{colours.get(verdict, 'white')}]{verdict}[/]",
        )
    console.print(grid)
    console.print(_phases(data, Table, plain))
    for row in data["results"]:
        for name, check in (row.get("verdicts") or {}).items():
            if check["status"] != "PASS":
                console.print(
                    f"  {check['status']} {row['impl']} on {row['device']} ({name}): "
                    f"{check['message']}",
                    markup=False,
                )
    for note in data.get("notes", []):
        console.print(f"  note: {note}", markup=False)


PHASES = (
    ("vectorise", "vectorise"),
    ("to_device", "to device"),
    ("build", "build"),
    ("warmup", "warm-up epoch"),
    ("evaluate", "evaluate"),
)


def _phases(data: dict, table_class, plain: bool):
    """Every phase timed apart: what the median epoch leaves out is shown here."""
    grid = table_class(title="phases (seconds)", title_justify="left", pad_edge=False, box=None)
    grid.add_column("implementation")
    grid.add_column("device")
    for _, header in PHASES:
        grid.add_column(header, justify="right")
    grid.add_column("timed epochs", justify="right")
    grid.add_column("child wall", justify="right")
    for row in data["results"]:
        phases = row.get("phases") or {}
        epochs = row.get("epoch_times") or []
        grid.add_row(
            row["impl"],
            row["device"],
            *(_fmt(phases.get(key), ".2f") for key, _ in PHASES),
            f"{sum(epochs):.2f} ({len(epochs)})" if epochs else "N/A",
            _fmt(row.get("wall_s"), ".1f"),
        )
    return grid


def plot(data: dict, path: str) -> None:
    """The book's two figures (loss, accuracy per epoch) and CPU vs GPU epoch times."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in data["results"] if not r.get("error")]
    fig, (ax_loss, ax_acc, ax_time) = plt.subplots(1, 3, figsize=(16, 4.8))
    from matplotlib.ticker import MaxNLocator

    book = data["protocol"] == "book"
    key = "book" if book else "retrain"
    markers = {"keras": "o", "torch": "s", "torch-sparse": "x"}
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
    fig.savefig(path, dpi=110)
    plt.close(fig)
