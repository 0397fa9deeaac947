"""The CPU's own peak, computed from /proc/cpuinfo: cores x clock x FLOPs per cycle.

Nothing here imports numpy or torch; the measurements run in the child
(measure_cpu.py). Every input is read from text so tests can feed recorded files.

What the peak assumes, and where it can be wrong (all reported with the number):
- clock: cpufreq's cpuinfo_max_freq (the highest boost the driver allows) when present;
  else the nominal "@ 2.50GHz" in the model name; else /proc/cpuinfo "cpu MHz", which
  in a VM is usually the host's nominal (TSC) clock and on bare metal the current one.
  All-core turbo is lower than single-core boost; AVX-512 licences lower it further on
  some Intel parts; turbo can also exceed a nominal clock, so a measurement may beat
  the computed peak.
- FLOPs per cycle: two FMA units of the widest vector width the flags show. Some Xeon
  Silver/Bronze (and Gold 5xxx) parts have one AVX-512 FMA unit; AMD Zen 4 runs
  AVX-512 on 256-bit datapaths; Zen 1 on 128-bit ones. Those cases are named below.
- cores: physical cores among the CPUs this process may run on; SMT siblings add no
  FMA units. A cgroup CPU quota (containers) lowers the usable share further.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CpuFacts:
    model: str | None
    vendor: str | None
    family: int | None
    model_number: int | None
    flags: frozenset[str]
    cores: int  # physical cores among the allowed CPUs
    threads: int  # allowed logical CPUs
    frequency_mhz: float | None
    frequency_source: str | None
    quota_cpus: float | None  # cgroup cpu.max quota in CPUs, None when unlimited
    governor: str | None  # cpufreq scaling governor of cpu0


@dataclass(frozen=True)
class CpuPeak:
    vector_isa: str | None
    flops_per_cycle_fp32: int | None
    gflops_fp32: float | None
    gflops_fp64: float | None
    basis: str  # how it was computed and what it assumes


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """One dict per 'processor' block of /proc/cpuinfo."""
    blocks, current = [], {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def allowed_cpus() -> set[int]:
    try:
        return set(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return set(range(os.cpu_count() or 1))


def physical_cores(blocks: list[dict[str, str]], allowed: set[int]) -> int:
    """Distinct (package, core) pairs among the allowed CPUs; the CPU count if unknown."""
    pairs = set()
    for block in blocks:
        try:
            cpu = int(block.get("processor", "-1"))
        except ValueError:
            continue
        if cpu not in allowed:
            continue
        if "core id" not in block:
            return len(allowed)
        pairs.add((block.get("physical id", "0"), block["core id"]))
    return len(pairs) or len(allowed)


def frequency(
    blocks: list[dict[str, str]], sysfs: Path = Path("/sys/devices/system/cpu")
) -> tuple[float | None, str | None]:
    """(MHz, where it came from and what that means)."""
    max_freq = _read(sysfs / "cpu0" / "cpufreq" / "cpuinfo_max_freq")
    if max_freq and max_freq.isdigit():
        return int(max_freq) / 1000.0, (
            "cpufreq cpuinfo_max_freq (highest boost the driver allows; all-core clocks "
            "under load are lower)"
        )
    model = blocks[0].get("model name", "") if blocks else ""
    nominal = re.search(r"@\s*([0-9.]+)\s*GHz", model)
    if nominal:
        return float(nominal.group(1)) * 1000.0, (
            "nominal clock in the model name (base clock; turbo can run above it)"
        )
    mhz = blocks[0].get("cpu MHz") if blocks else None
    try:
        value = float(mhz) if mhz else None
    except ValueError:
        value = None
    if value:
        return value, (
            "/proc/cpuinfo 'cpu MHz' (no cpufreq here: in a VM this is the host's nominal "
            "clock, on bare metal the current one; turbo can run above it)"
        )
    return None, None


def cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by a cgroup v2 cpu.max quota ('max 100000' = unlimited)."""
    text = _read(root / "cpu.max")
    if not text:
        return None
    quota, _, period = text.partition(" ")
    if quota == "max" or not period.strip().isdigit() or not quota.isdigit():
        return None
    return int(quota) / int(period.strip())


def collect(
    cpuinfo: str | None = None,
    allowed: set[int] | None = None,
    sysfs: Path = Path("/sys/devices/system/cpu"),
    cgroup: Path = Path("/sys/fs/cgroup"),
) -> CpuFacts:
    if cpuinfo is None:
        cpuinfo = _read(Path("/proc/cpuinfo")) or ""
    allowed = allowed if allowed is not None else allowed_cpus()
    blocks = parse_cpuinfo(cpuinfo)
    first = blocks[0] if blocks else {}
    flags = frozenset((first.get("flags") or first.get("Features") or "").split())
    mhz, source = frequency(blocks, sysfs)
    return CpuFacts(
        model=first.get("model name") or first.get("Model name") or first.get("CPU part"),
        vendor=first.get("vendor_id"),
        family=_int(first.get("cpu family")),
        model_number=_int(first.get("model")),
        flags=flags,
        cores=physical_cores(blocks, allowed) if blocks else len(allowed),
        threads=len(allowed),
        frequency_mhz=mhz,
        frequency_source=source,
        quota_cpus=cgroup_quota(cgroup),
        governor=_read(sysfs / "cpu0" / "cpufreq" / "scaling_governor"),
    )


def vector_units(facts: CpuFacts) -> tuple[str | None, int | None, str]:
    """(ISA name, FP32 FLOPs per cycle per core, why)."""
    f = facts.flags
    amd = facts.vendor == "AuthenticAMD"
    if "avx512f" in f:
        if amd and facts.family == 0x19:
            return "avx512f", 32, "Zen 4 runs AVX-512 on two 256-bit FMA pipes: 2 x 8 x 2"
        return (
            "avx512f",
            64,
            (
                "2 AVX-512 FMA units assumed: 2 x 16 x 2 (Xeon Silver/Bronze and some Gold 5xxx "
                "have one, which halves this)"
            ),
        )
    if "avx2" in f and "fma" in f:
        if amd and facts.family == 0x17 and (facts.model_number or 0) < 0x30:
            return "avx2+fma", 16, "Zen 1 splits 256-bit FMAs over 128-bit pipes: 2 x 4 x 2"
        return "avx2+fma", 32, "2 x 256-bit FMA units: 2 x 8 x 2"
    if "avx" in f:
        return "avx", 16, "one 256-bit add and one 256-bit multiply per cycle: 8 + 8"
    if "sse2" in f:
        return "sse2", 8, "one 128-bit add and one 128-bit multiply per cycle: 4 + 4"
    if "asimd" in f:
        return "neon", 16, "2 x 128-bit NEON FMA pipes assumed: 2 x 4 x 2 (wider SVE cores do more)"
    return None, None, "no known vector unit in the CPU flags"


def peak(facts: CpuFacts) -> CpuPeak:
    isa, per_cycle, why = vector_units(facts)
    cores = facts.cores
    if facts.quota_cpus is not None:
        cores = min(cores, facts.quota_cpus)
    if per_cycle is None or not facts.frequency_mhz or not cores:
        missing = "clock" if not facts.frequency_mhz else "vector unit"
        return CpuPeak(isa, per_cycle, None, None, f"peak unknown: no {missing} information")
    gflops = cores * facts.frequency_mhz / 1000.0 * per_cycle
    quota = f" (cgroup quota {facts.quota_cpus:g} CPUs)" if facts.quota_cpus is not None else ""
    basis = (
        f"{cores:g} cores{quota} x {facts.frequency_mhz / 1000:.3f} GHz x {per_cycle} FP32 "
        f"FLOP/cycle ({why}); FP64 is half. Clock from {facts.frequency_source}"
    )
    return CpuPeak(isa, per_cycle, round(gflops, 1), round(gflops / 2, 1), basis)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None
