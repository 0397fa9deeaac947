"""Judge measurements against the datasheet, and name the likely cause from NVML readings.

Pure functions over plain records (the children's result dicts, the telemetry
record), so recorded samples replay in tests exactly as a live run judges them.

Rule for every test: expected = fraction x peak (skus.json says where each
fraction comes from). PASS at >= 0.75 x expected (DCGM's margin over its own
reference measurements), WARN down to 0.5 x expected, FAIL below: a card at half
its expected speed has a problem. Tests that depend on things outside the GPU
(pageable copies, peer copies, the CPU baseline) are capped at WARN.
"""

from __future__ import annotations

import statistics
from typing import Any

from dlcheck.gpu import decode_clocks_event_reasons
from dlcheck.models import CheckResult, Status
from dlcheck.perf import skus
from dlcheck.perf.records import CpuPerf, GpuPerf, TestResult
from dlcheck.text import clean_or_none

PASS_RATIO = 0.75
FAIL_RATIO = 0.5
WARN_ONLY = {"h2d_pageable", "d2h_pageable"}
LOAD_KINDS = ("matmul", "memory", "transfer")
CPU_GEMM_FRACTION = 0.7  # [estimate] large-GEMM efficiency of OpenBLAS/MKL; see docs/perf.md
ABOVE_PEAK = 1.05  # a CPU result this far above the computed peak means the clock read is low
# Others' share of all CPU time that slows a GEMM: BLAS threads meet at barriers, so one
# preempted thread stalls the rest (here, 15% taken by others halved a 2-thread SGEMM).
BUSY_SHARE = 0.1


def judge(measured: float | None, expected: float | None, warn_only: bool = False) -> Status:
    if measured is None:
        return Status.FAIL
    if not expected:
        return Status.INFO
    ratio = measured / expected
    if ratio >= PASS_RATIO:
        return Status.PASS
    if ratio >= FAIL_RATIO or warn_only:
        return Status.WARN
    return Status.FAIL


# ------------------------------------------------------------------ GPU tests


def gpu_peak(test: str, sku: skus.Sku | None) -> float | None:
    """The datasheet figure a GPU test is compared with, in the test's unit."""
    if sku is None:
        return None
    if test.startswith("matmul_"):
        return sku.peak_tflops.get(test.removeprefix("matmul_"))
    if test in ("memory_copy", "memory_triad"):
        return sku.memory_bandwidth_gbps
    if test.startswith(("h2d_", "d2h_")):
        return sku.pcie_gbps
    return None


def gpu_test(raw: dict[str, Any], sku: skus.Sku | None) -> TestResult:
    name = raw["name"]
    result = TestResult(
        name=name,
        kind=raw["kind"],
        unit=raw["unit"],
        measured=_num(raw.get("median")),
        low=_num(raw.get("low")),
        high=_num(raw.get("high")),
        repeats=int(raw.get("repeats") or 0),
        detail=dict(raw.get("detail") or {}),
    )
    if raw.get("skipped"):
        result.status, result.message = Status.SKIP, raw["skipped"]
        return result
    if raw.get("error"):
        result.status, result.message = Status.FAIL, f"could not run: {raw['error']}"
        return result
    if result.detail.get("correct") is False:
        error = result.detail.get("relative_error")
        result.status = Status.FAIL
        result.message = f"wrong results (relative error {error:.2g}): the GPU computes garbage"
        return result
    result.peak = gpu_peak(name, sku)
    result.fraction = skus.expected_fraction(name, sku) if result.peak else None
    if result.peak and result.fraction:
        result.expected = result.peak * result.fraction
    result.status = judge(result.measured, result.expected, warn_only=name in WARN_ONLY)
    result.message = _test_message(result, sku)
    return result


def _test_message(t: TestResult, sku: skus.Sku | None) -> str:
    value = f"{_fmt(t.measured)} {t.unit}"
    if t.expected is None:
        why = "no datasheet entry for this GPU" if sku is None else "no datasheet figure"
        return f"{value} ({why})"
    return (
        f"{value} = {t.of_peak:.0%} of the {_fmt(t.peak)} datasheet peak "
        f"({t.of_expected:.0%} of the expected {_fmt(t.expected)})"
    )


def p2p_test(raw: dict[str, Any], skus_by_ordinal: dict[int, skus.Sku | None]) -> TestResult:
    result = gpu_test({**raw, "skipped": raw.get("skipped")}, None)
    detail = result.detail
    if result.status in (Status.FAIL, Status.SKIP):
        return result
    pair = [skus_by_ordinal.get(detail.get("src")), skus_by_ordinal.get(detail.get("dst"))]
    if all(pair):
        links = [s.nvlink_gbps for s in pair]
        result.peak = min(links) if all(links) else min(s.pcie_gbps for s in pair)
        result.fraction = skus.expected_fraction("p2p", None)
        result.expected = result.peak * result.fraction
    result.status = judge(result.measured, result.expected, warn_only=True)
    if detail.get("peer_access") is False:
        result.status = Status.WARN
        result.message = f"{_fmt(result.measured)} GB/s with peer access OFF (copies go via host)"
    else:
        result.message = _test_message(result, pair[0] if all(pair) else None)
    return result


# ------------------------------------------------------------------ telemetry


def windows(tests: list[TestResult], kinds=LOAD_KINDS) -> list[tuple[float, float]]:
    return [
        (t.detail["started"], t.detail["ended"])
        for t in tests
        if t.kind in kinds and "started" in t.detail and t.status != Status.SKIP
    ]


def summarise(
    static: dict[str, Any], samples: list[dict[str, Any]], spans: list[tuple[float, float]]
) -> dict[str, Any]:
    """NVML readings while the tests ran (samples outside every test window are idle time)."""
    loaded = [s for s in samples if any(a <= s["t"] <= b for a, b in spans)] if spans else []
    if not loaded:
        loaded = [s for s in samples if (s.get("utilization.gpu") or 0) >= 50]
    reasons: dict[str, float] = {}
    for s in loaded:
        for word in _decode(s.get("clocks_event_reasons.active")):
            reasons[word] = reasons.get(word, 0) + 1
    sm = _values(loaded, "clocks.current.sm")
    power = _values(loaded, "power.draw")
    temps = _values(loaded, "temperature.gpu")
    gens = _values(loaded, "pcie.link.gen.current")
    widths = _values(loaded, "pcie.link.width.current")
    pstates = [int(s["pstate"][1:]) for s in loaded if s.get("pstate")]
    return {
        "samples": len(samples),
        "loaded_samples": len(loaded),
        "sm_clock_mhz": _stats(sm),
        "sm_clock_max_mhz": static.get("clocks.max.sm"),
        "power_w": _stats(power),
        "power_limit_w": static.get("enforced.power.limit"),
        "power_default_w": static.get("power.default_limit"),
        "temperature_c": _stats(temps),
        "slowdown_c": static.get("temperature.gpu.slowdown"),
        "reasons": {w: round(n / len(loaded), 2) for w, n in sorted(reasons.items())},
        "pcie_gen_under_load": max(gens) if gens else None,
        "pcie_width_under_load": max(widths) if widths else None,
        "pcie_gen_device_max": static.get("pcie.link.gen.gpumax")
        or static.get("pcie.link.gen.max"),
        "pcie_gen_system_max": static.get("pcie.link.gen.max"),
        "pcie_width_max": static.get("pcie.link.width.max"),
        "pstate_under_load": f"P{min(pstates)}" if pstates else None,
        "persistence_mode": static.get("persistence_mode"),
        "remapped_rows.pending": static.get("remapped_rows.pending"),
        "remapped_rows.failure": static.get("remapped_rows.failure"),
        "retired_pages.pending": static.get("retired_pages.pending"),
    }


# ------------------------------------------------------------------ causes


def gpu_causes(
    index: int,
    summary: dict[str, Any],
    processes: list[dict[str, Any]],
    own_pids: set[int],
    baseline_pids: set[int],
    slow_kinds: set[str],
) -> list[CheckResult]:
    """Every condition that slows this GPU, the ones matching the slow tests first.

    A cause is WARN when a test of a kind it explains was slow, INFO otherwise
    (worth knowing, not what held this run back).
    """
    found: list[tuple[set[str], str, str, str, dict[str, Any]]] = []  # kinds, code, msg, fix, ev
    compute = {"matmul", "memory"}
    limit, default = summary.get("power_limit_w"), summary.get("power_default_w")
    reasons = summary.get("reasons") or {}
    gpu = f"-i {index}"

    if limit and default and limit < 0.95 * default:
        found.append((compute, "power_limit_lowered",
                      f"power limit set to {limit:g} W, below the card's default {default:g} W",
                      f"sudo nvidia-smi {gpu} -pl {default:g}",
                      {"enforced.power.limit": limit, "power.default_limit": default,
                       "sw_power_cap": reasons.get("sw_power_cap")}))  # fmt: skip
    elif reasons.get("sw_power_cap", 0) >= 0.2:
        found.append((compute, "power_capped",
                      f"clocks held down by the power cap ({limit} W) in "
                      f"{reasons['sw_power_cap']:.0%} of loaded samples",
                      "normal under heavy GEMM load on some cards; if the card is below its "
                      "expected speed, check its power cables and the PSU, or `nvidia-smi -q -d "
                      "POWER` for a lowered limit",
                      {"sw_power_cap": reasons["sw_power_cap"],
                       "enforced.power.limit": limit}))  # fmt: skip
    thermal = reasons.get("sw_thermal_slowdown", 0) + reasons.get("hw_thermal_slowdown", 0)
    hottest, slowdown = (summary.get("temperature_c") or {}).get("max"), summary.get("slowdown_c")
    if thermal > 0 or (hottest and slowdown and hottest >= slowdown):
        found.append((compute, "thermal_slowdown",
                      f"thermal slowdown: {hottest} C under load (slowdown at {slowdown} C)",
                      "improve cooling: check the fans spin (`nvidia-smi -q -d PERFORMANCE,"
                      "TEMPERATURE`), clean dust filters, leave a slot free between cards, "
                      "check the case/rack airflow",
                      {"temperature.gpu": hottest, "temperature.gpu.slowdown": slowdown,
                       "thermal_reasons": thermal}))  # fmt: skip
    brake = reasons.get("hw_power_brake_slowdown", 0) + reasons.get("hw_slowdown", 0)
    if brake > 0:
        found.append((compute, "hw_slowdown",
                      "hardware slowdown (HW slowdown / power brake) asserted under load",
                      "check the card's power connectors are fully seated and the PSU is "
                      "rated for it; `nvidia-smi -q -d PERFORMANCE` names the bit",
                      {"hw_slowdown_share": brake}))  # fmt: skip
    sm, top = (summary.get("sm_clock_mhz") or {}).get("median"), summary.get("sm_clock_max_mhz")
    if reasons.get("applications_clocks_setting", 0) > 0 and sm and top and sm < 0.8 * top:
        found.append((compute, "clocks_locked",
                      f"application/locked clocks hold the SM clock at {sm:g} MHz (max {top} MHz)",
                      f"sudo nvidia-smi {gpu} -rgc && sudo nvidia-smi {gpu} -rac",
                      {"clocks.current.sm": sm, "clocks.max.sm": top}))  # fmt: skip
    pstate = summary.get("pstate_under_load")
    if pstate and int(pstate[1:]) > 2:
        found.append((compute, "low_pstate",
                      f"the GPU stayed in {pstate} under load (P0, or P2 on GeForce, expected)",
                      f"check `nvidia-smi -q -d PERFORMANCE`; reset clocks: sudo nvidia-smi "
                      f"{gpu} -rgc; reboot if it persists",
                      {"pstate": pstate}))  # fmt: skip
    found.extend(_pcie_causes(summary, gpu))
    others = [p for p in processes
              if p["pid"] not in own_pids
              and (p["pid"] in baseline_pids or p.get("process_name"))]  # fmt: skip
    if others:
        names = ", ".join(f"{p['pid']} ({p.get('process_name') or '?'})" for p in others[:3])
        found.append((compute | {"transfer"}, "other_process",
                      f"another process used this GPU during the run: {names}",
                      "stop it (`nvidia-smi` lists it) or test another GPU with --devices",
                      {"processes": others}))  # fmt: skip
    if summary.get("remapped_rows.pending") or summary.get("retired_pages.pending"):
        found.append((compute, "memory_repair_pending",
                      "a memory row remap / page retirement is pending: the GPU needs a reset",
                      f"sudo nvidia-smi {gpu} -r (no processes on the GPU), or reboot",
                      {"remapped_rows.pending": summary.get("remapped_rows.pending"),
                       "retired_pages.pending": summary.get("retired_pages.pending")}))  # fmt: skip
    if summary.get("remapped_rows.failure"):
        found.append((compute, "memory_repair_failed",
                      "row remapping failed: the GPU's memory has uncorrectable faults",
                      "contact the vendor (RMA); `nvidia-smi -q -d ROW_REMAPPER` has the counts",
                      {"remapped_rows.failure": True}))  # fmt: skip
    if summary.get("persistence_mode") == "Disabled":
        found.append((set(), "persistence_off",
                      "persistence mode is off: the driver re-initialises the GPU for each run",
                      f"sudo nvidia-smi {gpu} -pm 1",
                      {"persistence_mode": "Disabled"}))  # fmt: skip

    causes = []
    for kinds, code, message, fix, evidence in found:
        relevant = bool(kinds & slow_kinds)
        status = Status.WARN if relevant else Status.INFO
        causes.append((not relevant, CheckResult(code, status, message, fix, evidence)))
    return [c for _, c in sorted(causes, key=lambda pair: pair[0])]  # stable: likely first


def _pcie_causes(summary: dict[str, Any], gpu: str) -> list:
    gen, width = summary.get("pcie_gen_under_load"), summary.get("pcie_width_under_load")
    gen_device, gen_system = summary.get("pcie_gen_device_max"), summary.get("pcie_gen_system_max")
    width_max = summary.get("pcie_width_max")
    found = []
    evidence = {"gen": gen, "width": width, "gen_device_max": gen_device,
                "gen_system_max": gen_system, "width_max": width_max}  # fmt: skip
    if width and width_max and width < width_max:
        found.append(({"transfer"}, "pcie_width_reduced",
                      f"PCIe link trained at x{width} under load; the card supports x{width_max}",
                      "reseat the card, use a slot wired x16 (not x8/x4), avoid risers, and "
                      "check the BIOS lane bifurcation settings",
                      evidence))  # fmt: skip
    if gen and gen_device and gen < gen_device:
        if gen_system and gen_system < gen_device and gen >= gen_system:
            message = (f"the host limits the link to PCIe gen{gen_system} (the card does "
                       f"gen{gen_device})")  # fmt: skip
            fix = (f"move the card to a gen{gen_device} slot or raise the slot's PCIe "
                   "generation in the BIOS (some boards default to Auto/Gen3)")  # fmt: skip
        else:
            message = f"PCIe link at gen{gen} under load; card and host support gen{gen_device}"
            fix = ("reseat the card, check risers/extenders, set the slot to Auto/"
                   f"Gen{gen_device} in the BIOS")  # fmt: skip
        found.append(({"transfer"}, "pcie_gen_reduced", message, fix, evidence))
    return found


# ------------------------------------------------------------------ one GPU


def judge_gpu(
    index: int,
    identity: dict[str, Any],
    raw_tests: list[dict[str, Any]],
    telemetry: dict[str, Any],
    own_pids: set[int],
) -> GpuPerf:
    """A GPU's verdict from its measurements and its NVML record (telemetry.to_dict form)."""
    static = (telemetry.get("static") or {}).get(str(index)) or {}
    samples = (telemetry.get("samples") or {}).get(str(index)) or []
    processes = (telemetry.get("processes") or {}).get(str(index)) or []
    name = static.get("name") or clean_or_none(identity.get("name"), 120)
    sku = skus.lookup(static.get("pci.device_id"), name)
    tests = [gpu_test(raw, sku) for raw in raw_tests]
    summary = summarise(static, samples, windows(tests))
    judged = [t for t in tests if t.status not in (Status.SKIP, Status.INFO)]
    status = Status.worst(t.status for t in judged) if judged else Status.INFO
    slow = {t.kind for t in tests if t.status in (Status.WARN, Status.FAIL)}
    baseline = {p["pid"] for p in static.get("processes") or []}
    causes = gpu_causes(index, summary, processes, own_pids, baseline, slow)
    record = GpuPerf(
        index=index,
        name=name,
        uuid=static.get("uuid") or identity.get("uuid"),
        pci_device_id=static.get("pci.device_id"),
        sku=sku.to_dict() if sku else None,
        tests=tests,
        causes=causes,
        telemetry=summary,
        status=status,
    )
    record.message = gpu_message(record)
    return record


def gpu_message(g: GpuPerf) -> str:
    if g.error:
        return g.error
    if g.sku is None:
        return (f"no datasheet entry for {g.name!r} (PCI device {g.pci_device_id or '?'}): "
                "raw numbers only; add it to dlcheck/perf/skus.json")  # fmt: skip
    bad = [t for t in g.tests if t.status in (Status.FAIL, Status.WARN)]
    if not bad:
        best = _headline(g.tests)
        return f"as fast as its datasheet says{': ' + best if best else ''}"
    worst = min(bad, key=lambda t: (t.status != Status.FAIL, t.of_expected or 0))
    likely = next((c for c in g.causes if c.status == Status.WARN), None)
    if worst.of_expected is not None:
        shortfall = f"{worst.name} at {worst.of_expected:.0%} of expected"
    else:
        shortfall = f"{worst.name}: {worst.message}"
    if likely:
        return f"{shortfall}; likely cause: {likely.message}"
    return f"{shortfall}; NVML shows no cause (clocks, power, link and temperature look normal)"


HEADLINE = ("matmul_bf16", "matmul_fp16", "matmul_tf32", "matmul_fp32")  # training dtypes first


def _headline(tests: list[TestResult]) -> str:
    by_name = {t.name: t for t in tests if t.measured}
    top = next((by_name[n] for n in HEADLINE if n in by_name), None)
    memory = by_name.get("memory_copy")
    parts = []
    if top:
        parts.append(f"{top.name.removeprefix('matmul_')} {_fmt(top.measured)} TFLOP/s")
    if memory:
        parts.append(f"memory {_fmt(memory.measured)} GB/s")
    return ", ".join(parts)


# ------------------------------------------------------------------ CPU


def judge_cpu(cpu: CpuPerf, raw: dict[str, Any], load: dict[str, Any]) -> CpuPerf:
    """Fill cpu.tests/causes/status from the child's result and the parent's load readings."""
    if raw.get("error"):
        cpu.error, cpu.status, cpu.message = raw["error"], Status.WARN, raw["error"]
        return cpu
    software = raw.get("software") or {}
    cpu.blas = {k: software.get(k) for k in ("numpy", "numpy_blas", "torch", "torch_blas",
                                             "torch_threads")}  # fmt: skip
    cpu.load = load
    for item in raw.get("tests") or []:
        test = TestResult(
            name=item["name"], kind=item["kind"], unit=item["unit"],
            measured=_num(item.get("median")), low=_num(item.get("low")),
            high=_num(item.get("high")), repeats=int(item.get("repeats") or 0),
            detail=dict(item.get("detail") or {}),
        )  # fmt: skip
        if test.kind == "gemm":
            test.peak = cpu.peak_gflops_fp64 if "fp64" in test.name else cpu.peak_gflops_fp32
            if test.peak:
                test.fraction = CPU_GEMM_FRACTION
                test.expected = test.peak * CPU_GEMM_FRACTION
        test.status = judge(test.measured, test.expected, warn_only=True)
        test.message = _cpu_message(test)
        cpu.tests.append(test)
    slow = any(t.status == Status.WARN for t in cpu.tests)
    cpu.causes = cpu_causes(cpu, load, slow)
    judged = [t.status for t in cpu.tests if t.status != Status.INFO]
    cpu.status = Status.worst(judged) if judged else Status.INFO
    gemm = max((t for t in cpu.tests if t.name.startswith("gemm_fp32")),
               key=lambda t: t.measured or 0, default=None)  # fmt: skip
    if gemm and gemm.peak:
        cpu.message = (f"FP32 GEMM {_fmt(gemm.measured)} GFLOP/s = {gemm.of_peak:.0%} of the "
                       f"computed {_fmt(gemm.peak)} GFLOP/s peak")  # fmt: skip
    elif gemm:
        cpu.message = f"FP32 GEMM {_fmt(gemm.measured)} GFLOP/s (peak unknown)"
    return cpu


def _cpu_message(t: TestResult) -> str:
    value = f"{_fmt(t.measured)} {t.unit}"
    if t.kind == "memory":
        return f"{value} (no peak: DIMM speed and channel count are not readable without root)"
    if not t.peak:
        return f"{value} (peak unknown)"
    text = f"{value} = {t.of_peak:.0%} of the computed {_fmt(t.peak)} {t.unit} peak"
    if t.of_peak and t.of_peak > ABOVE_PEAK:
        text += " (above it: the clock read is below the real one, e.g. turbo)"
    return text


def cpu_causes(cpu: CpuPerf, load: dict[str, Any], slow: bool) -> list[CheckResult]:
    status = Status.WARN if slow else Status.INFO
    found = []
    others = load.get("others_share")
    if others is not None and others >= BUSY_SHARE:
        loadavg = load.get("loadavg_1m")
        found.append(CheckResult("cpu_busy", status,
                     f"other processes kept {others:.0%} of the CPUs busy during the tests "
                     f"(load average {loadavg if loadavg is None else round(loadavg, 2)})",
                     "rerun when the machine is idle (`top` shows what runs)",
                     {"others_share": others, "loadavg_1m": load.get("loadavg_1m")}))  # fmt: skip
    steal = load.get("steal_share")
    if steal is not None and steal >= 0.05:
        found.append(CheckResult("cpu_steal", status,
                     f"the hypervisor took {steal:.0%} of CPU time (steal): a shared or "
                     "burstable VM",
                     "use a dedicated (non-burstable) instance type, or rerun later",
                     {"steal_share": steal}))  # fmt: skip
    if cpu.load.get("quota_cpus") is not None and cpu.threads and \
            cpu.load["quota_cpus"] < cpu.threads:  # fmt: skip
        found.append(CheckResult("cpu_quota", status,
                     f"a cgroup quota limits this process to {cpu.load['quota_cpus']:g} of "
                     f"{cpu.threads} CPUs",
                     "raise the container's CPU limit (docker --cpus, Kubernetes "
                     "resources.limits.cpu)",
                     {"quota_cpus": cpu.load["quota_cpus"]}))  # fmt: skip
    if load.get("governor") == "powersave":
        found.append(CheckResult("cpu_governor", status,
                     "the cpufreq governor is 'powersave'",
                     "sudo cpupower frequency-set -g performance",
                     {"governor": "powersave"}))  # fmt: skip
    limits = {k: v for k, v in (load.get("thread_env") or {}).items()
              if v and v.isdigit() and cpu.cores and int(v) < cpu.cores}  # fmt: skip
    if limits:
        names = ", ".join(f"{k}={v}" for k, v in sorted(limits.items()))
        found.append(CheckResult("cpu_threads", status,
                     f"{names} limits the BLAS to fewer threads than the {cpu.cores} cores",
                     f"unset {' '.join(sorted(limits))} (or raise it) for compute jobs",
                     {"thread_env": limits, "cores": cpu.cores}))  # fmt: skip
    blas = ((cpu.blas or {}).get("numpy_blas") or "").lower()
    if blas and not any(x in blas for x in ("openblas", "mkl", "accelerate", "blis", "armpl")):
        found.append(CheckResult("reference_blas", status,
                     f"NumPy uses {blas!r}, not an optimised BLAS",
                     "pip install --force-reinstall numpy (PyPI wheels bundle OpenBLAS)",
                     {"numpy_blas": blas}))  # fmt: skip
    return found


# ------------------------------------------------------------------ helpers


def _decode(mask) -> list[str]:
    if isinstance(mask, str):
        try:
            mask = int(mask, 16)
        except ValueError:
            return []
    return decode_clocks_event_reasons(mask) or [] if isinstance(mask, int) else []


def _values(samples, key) -> list[float]:
    return [s[key] for s in samples if isinstance(s.get(key), (int, float))]


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "min": None, "max": None}
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _fmt(value: float | None) -> str:
    if value is None:
        return "N/A"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"
