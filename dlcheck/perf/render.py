"""Human view of a perf result (its to_dict() form, so a saved --json report renders too),
and the --plot figure. Rich on a colour terminal; plain text when piped or NO_COLOR."""

from __future__ import annotations

import os
import sys
from typing import Any

from rich.markup import escape

COLOURS = {"PASS": "green", "INFO": "cyan", "SKIP": "dim", "WARN": "yellow", "FAIL": "red"}


def render(data: dict[str, Any], out=None) -> None:
    from rich.console import Console

    out = out or sys.stdout
    plain = not out.isatty() or bool(os.environ.get("NO_COLOR"))
    console = Console(file=out, no_color=plain, highlight=False, width=120 if plain else None)
    counts = f"{len(data['gpus'])} GPU{'s' if len(data['gpus']) != 1 else ''}"
    console.print(f"dlcheck perf: {_status(data['status'], plain)}  ({counts}, "
                  f"{data['wall_s']:.1f} s)")  # fmt: skip
    if data.get("cpu"):
        _cpu(console, data["cpu"], plain)
    if not data["gpus"]:
        nvml = data.get("nvml") or {}
        why = f"NVML: {nvml['error']}" if nvml.get("error") else "NVML sees no GPU"
        console.print(f"\nGPU  none tested ({escape(why)})")
    for gpu in data["gpus"]:
        _gpu(console, gpu, plain)
    if data.get("p2p"):
        console.print("\nPeer copies (GPU to GPU)")
        console.print(_tests_table(data["p2p"], plain))
    for error in data.get("errors") or []:
        console.print(f"note: {escape(error)}")


def _cpu(console, cpu: dict[str, Any], plain: bool) -> None:
    freq = f"{cpu['frequency_mhz']:.0f} MHz" if cpu.get("frequency_mhz") else "clock unknown"
    console.print(
        f"\nCPU  {escape(str(cpu.get('model')))}: {cpu.get('cores')} cores / "
        f"{cpu.get('threads')} threads, {freq}, {cpu.get('vector_isa') or '?'}  "
        f"{_status(cpu['status'], plain)} {escape(cpu.get('message') or '')}"
    )
    console.print(f"     peak: {escape(cpu.get('peak_basis') or 'unknown')}", style="dim")
    blas = cpu.get("blas") or {}
    if blas:
        console.print(
            f"     BLAS: numpy {blas.get('numpy')} ({blas.get('numpy_blas') or '?'}), "
            f"torch {blas.get('torch') or 'not installed'} ({blas.get('torch_blas') or '?'}, "
            f"{blas.get('torch_threads') or '?'} threads)",
            style="dim",
        )
    if cpu.get("error"):
        console.print(f"     error: {escape(cpu['error'])}")
    if cpu.get("tests"):
        console.print(_tests_table(cpu["tests"], plain, peak_label="computed peak"))
    _causes(console, cpu.get("causes") or [], plain)


def _gpu(console, gpu: dict[str, Any], plain: bool) -> None:
    sku = gpu.get("sku")
    known = f"datasheet row {sku['key']}" if sku else "no datasheet row"
    console.print(
        f"\nGPU {gpu['index']}  {escape(str(gpu.get('name')))} "
        f"(PCI {gpu.get('pci_device_id') or '?'}, {known})  {_status(gpu['status'], plain)} "
        f"{escape(gpu.get('message') or '')}"
    )
    t = gpu.get("telemetry") or {}
    if t.get("loaded_samples"):
        sm, power = t.get("sm_clock_mhz") or {}, t.get("power_w") or {}
        temp = (t.get("temperature_c") or {}).get("max")
        reasons = ", ".join(f"{k} {v:.0%}" for k, v in (t.get("reasons") or {}).items()) or "none"
        console.print(
            f"     under load: SM {_n(sm.get('median'))}/{_n(t.get('sm_clock_max_mhz'))} MHz, "
            f"power max {_n(power.get('max'))}/{_n(t.get('power_limit_w'))} W, {_n(temp)} C, "
            f"PCIe gen{_n(t.get('pcie_gen_under_load'))} x{_n(t.get('pcie_width_under_load'))}"
            f", {t.get('pstate_under_load') or '?'}; clock-event reasons: {reasons}",
            style="dim",
        )
    if gpu.get("tests"):
        console.print(_tests_table(gpu["tests"], plain, peak_label="datasheet"))
    _causes(console, gpu.get("causes") or [], plain)


def _tests_table(tests: list[dict[str, Any]], plain: bool, peak_label: str = "datasheet"):
    from rich.table import Table

    table = Table(box=None, pad_edge=False, show_edge=False)
    for header, justify in (("test", "left"), ("measured", "right"), (peak_label, "right"),
                            ("of peak", "right"), ("expected", "right"), ("", "left"),
                            ("note", "left")):  # fmt: skip
        table.add_column(header, justify=justify, overflow="fold")
    for test in tests:
        unit = test["unit"]
        note = test.get("message") or ""
        if test["status"] not in ("SKIP",) and test.get("measured") is not None:
            note = _note(test)
        table.add_row(
            test["name"],
            f"{_n(test.get('measured'))} {unit}" if test.get("measured") is not None else "-",
            _n(test.get("peak")),
            f"{test['of_peak']:.0%}" if test.get("of_peak") is not None else "-",
            _n(test.get("expected")),
            _status(test["status"], plain),
            escape(note),
        )
    return table


def _note(test: dict[str, Any]) -> str:
    """Short per-row note: the spread of the repeats and anything unusual."""
    parts = [f"{test['repeats']} runs, {_n(test.get('low'))}-{_n(test.get('high'))}"]
    detail = test.get("detail") or {}
    if detail.get("n"):
        parts.append(f"n={detail['n']}")
    if detail.get("peer_access") is False:
        parts.append("peer access OFF")
    if test.get("of_peak") and test["of_peak"] > 1.05:
        parts.append("above the computed peak: real clock higher than read")
    return "; ".join(parts)


def _causes(console, causes: list[dict[str, Any]], plain: bool) -> None:
    for cause in causes:
        console.print(
            f"     {_status(cause['status'], plain)} {cause['code']}: {escape(cause['message'])}"
        )
        if cause.get("fix"):
            console.print(f"          fix: {escape(cause['fix'])}")


def _status(status: str, plain: bool) -> str:
    return status if plain else f"[{COLOURS.get(status, 'white')}]{status}[/]"


def _n(value) -> str:
    if value is None:
        return "N/A"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return str(value)


# ------------------------------------------------------------------ --plot


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
        if t.get("measured") is not None and not t.get("of_peak")
    ]
    panels = [(title, [t for t in tests if t.get("of_peak")]) for title, tests in panels]
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
