"""The --plot figure of a perf report: per device, each test's measured share of its peak."""

from __future__ import annotations

from typing import Any


def plot(data: dict[str, Any], path: str) -> None:
    """One panel per device: each test's measured and expected share of its peak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    if data.get("cpu") and data["cpu"].get("tests"):
        panels.append(("CPU: " + str(data["cpu"].get("model")), data["cpu"]["tests"]))
    for gpu in data["gpus"]:
        panels.append((f"GPU {gpu['index']}: {gpu.get('name')}", gpu.get("tests") or []))
    if data.get("p2p"):
        panels.append(("peer copies", data["p2p"]))
    everything = [t for _, tests in panels for t in tests]
    unplotted = [
        f"{t['name']} {t['measured']:.3g} {t['unit']}"
        for t in everything
        if t.get("measured") is not None and t.get("of_peak") is None
    ]
    panels = [(name, [t for t in tests if t.get("of_peak") is not None]) for name, tests in panels]
    panels = [(title, tests) for title, tests in panels if tests] or [("no results", [])]
    height = sum(max(len(tests), 1) * 0.35 + 0.9 for _, tests in panels)
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, max(height, 2.5)), squeeze=False)
    colours = {"PASS": "#2e7d32", "WARN": "#f9a825", "FAIL": "#c62828"}
    for ax, (title, tests) in zip(axes[:, 0], panels, strict=True):
        names = [t["name"] for t in tests]
        ys = range(len(tests))
        shares = [100 * (t.get("of_peak") or 0) for t in tests]
        bars = ax.barh(ys, shares, color=[colours.get(t["status"], "#78909c") for t in tests])
        expected = [100 * t["fraction"] if t.get("fraction") else None for t in tests]
        for y, share in zip(ys, expected, strict=True):
            if share is not None:
                ax.plot([share, share], [y - 0.4, y + 0.4], color="black", lw=2)
        labels = [f"{t['measured']:.3g} {t['unit']}" for t in tests]
        ax.bar_label(bars, labels=labels, fontsize=7, padding=3)
        ax.set_yticks(list(ys), names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, max([110, *shares]) * 1.15)
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_xlabel("% of datasheet / computed peak (black tick: expected)", fontsize=8)
    fig.suptitle(f"dlcheck perf: {data['status']}", fontsize=10)
    if unplotted:  # no peak to compare with, so no bar; the numbers still belong on the page
        fig.text(0.01, 0.005, "no peak, not plotted: " + ", ".join(unplotted), fontsize=7)
    fig.tight_layout(rect=(0, 0.03 if unplotted else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
