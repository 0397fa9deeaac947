"""`dlcheck perf` for people: per device a table of measured vs datasheet, and the causes with
their fixes. Renders the report's data in its to_dict() form, so a saved --json renders too."""

from __future__ import annotations

from typing import Any

from dlcheck.models import plain as plain_data
from dlcheck.render import STATUS_STYLE, Output, escape


def render(report, out: Output) -> None:
    """The Report of `dlcheck perf` (or a bare data dict) on `out`.

    Drawn into a buffer and written once: rich turns a closed stdout into SystemExit(1) of
    its own, where one plain write lets cli.run treat it like any closed pipe."""
    data = plain_data(getattr(report, "data", report))
    console = out.console()
    with console.capture() as captured:
        _draw(console, data, out.plain)
    errors = getattr(report, "errors", None) or data.get("errors") or ()
    out.write(captured.get() + "".join(f"error: {e}\n" for e in errors))


def _draw(console, data: dict[str, Any], plain: bool) -> None:
    counts = f"{len(data['gpus'])} GPU{'s' if len(data['gpus']) != 1 else ''}"
    console.print(f"dlcheck perf: {_status(data['status'], plain)}  ({counts}, "
                  f"{data['wall_s']:.1f} s)")  # fmt: skip
    if data.get("cpu"):
        _cpu(console, data["cpu"], plain)
    if not (data.get("requested") or {}).get("gpu", True):
        console.print("\nGPU  not tested (--cpu-only)")
    elif not data["gpus"]:
        nvml = data.get("nvml") or {}
        why = "NVML sees no GPU"
        if nvml.get("error"):
            why = f"NVML: {nvml['error']}" + (f", {nvml['detail']}" if nvml.get("detail") else "")
        console.print(f"\nGPU  none tested ({escape(why)})")
    for gpu in data["gpus"]:
        _gpu(console, gpu, plain)
    if data.get("p2p"):
        console.print("\nPeer copies (GPU to GPU)")
        console.print(_tests_table(data["p2p"], plain))


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
    if test.get("kind") == "gemm" and (test.get("of_peak") or 0) > 1.05:
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
    return status if plain else f"[{STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _n(value) -> str:
    if value is None:
        return "N/A"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.1f}" if value >= 10 else f"{value:.2f}"
    return str(value)
