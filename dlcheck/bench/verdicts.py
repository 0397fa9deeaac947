"""Turn measured rows into verdicts: correctness, device really used, performance.

Performance only ever WARNs: a tiny model may legitimately gain little on a
GPU through Keras. The native torch rows carry the hardware expectation.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any

from dlcheck.bench.impls import IMPLS
from dlcheck.bench.protocol import dense_flops_per_sample
from dlcheck.bench.runner import RunRow
from dlcheck.models import Status

# Test accuracy after the book's 4 epochs at batch 512 on all 25000 reviews.
# Real data: published runs land at 0.876-0.885 (benchmark-anchors.md §2); band 0.86-0.90.
REAL_BAND = (0.86, 0.90)
# Synthetic data (signal 0.025): measured here 0.872-0.881 (torch-sparse, seeds 0-5) and
# keras 0.874 / torch 0.880 (seed 0); the band leaves about 2 points each side.
# docs/bench.md has the numbers.
SYNTHETIC_BAND = (0.85, 0.90)
# Any other configuration has no calibrated band: below this floor is a WARN, not a FAIL.
SANITY_FLOOR = 0.70


@dataclass(frozen=True)
class Summary:
    median_epoch_s: float | None = None
    min_epoch_s: float | None = None
    max_epoch_s: float | None = None
    samples_per_s: float | None = None
    gflops: float | None = None  # dense-equivalent model GFLOP/s (protocol.dense_flops)


@dataclass(frozen=True)
class Verdict:
    status: Status
    message: str


@dataclass(frozen=True)
class JudgedRow:
    """A RunRow with its numbers summarised and judged (a new object: the run is not edited)."""

    run: RunRow
    summary: Summary
    speedup: float | None  # CPU median / this row's median, same implementation
    verdicts: dict[str, Verdict]

    @property
    def verdict(self) -> Status:
        return Status.worst(v.status for v in self.verdicts.values())

    @property
    def impl(self) -> str:
        return self.run.impl

    @property
    def device(self) -> str:
        return self.run.device

    def to_dict(self) -> dict[str, Any]:
        run = self.run
        outcome = run.outcome.to_dict() if run.outcome else {"impl": run.impl, "device": run.device}
        return {
            **outcome,
            "error": run.error,
            "wall_s": run.wall_s,
            "log_tail": run.log_tail,
            **({"nvml": run.nvml} if run.nvml is not None else {}),
            **asdict(self.summary),
            "speedup": self.speedup,
            "verdicts": {k: {"status": v.status.value, "message": v.message}
                         for k, v in self.verdicts.items()},
            "verdict": self.verdict.value,
        }  # fmt: skip


def summarise(row: RunRow) -> Summary:
    """Median/min/max epoch and samples/s from a child's epoch times."""
    times = row.outcome.epoch_times if row.outcome else []
    if not times:
        return Summary()
    median = statistics.median(times)
    samples = row.outcome.train_samples or 0
    per_s = samples / median if median > 0 else None
    gflops = per_s * dense_flops_per_sample() / 1e9 if per_s else None
    return Summary(median, min(times), max(times), per_s, gflops)


def band_for(synthetic: bool, book_config: bool) -> tuple[float, float] | None:
    if not book_config:
        return None
    return SYNTHETIC_BAND if synthetic else REAL_BAND


def correctness(row: RunRow, synthetic: bool, book_config: bool) -> tuple[Status, str]:
    accuracy = row.outcome.test_accuracy if row.outcome else None
    if accuracy is None:
        return Status.FAIL, "no test accuracy"
    band = band_for(synthetic, book_config)
    if band is None:
        if accuracy >= SANITY_FLOOR:
            return Status.PASS, f"accuracy {accuracy:.3f} (no band for this configuration)"
        return Status.WARN, (
            f"accuracy {accuracy:.3f} < {SANITY_FLOOR}; no calibrated band for this "
            "configuration (the book's: 4 epochs, batch 512, all 25000 reviews)"
        )
    low, high = band
    if low <= accuracy <= high:
        return Status.PASS, f"accuracy {accuracy:.3f} in {low:.2f}-{high:.2f}"
    return Status.FAIL, f"accuracy {accuracy:.3f} outside the expected {low:.2f}-{high:.2f}"


def device_used(row: RunRow) -> tuple[Status, str]:
    placed = ((row.outcome.placed_on if row.outcome else None) or "").lower()
    if row.device == "cpu":
        if "gpu" in placed or "cuda" in placed:
            return Status.FAIL, f"CPU run placed the model on {placed}"
        return Status.PASS, "ran on the CPU"
    if "gpu" not in placed and "cuda" not in placed:
        return Status.FAIL, f"model placed on {placed or 'an unknown device'}, not the GPU"
    nvml = row.nvml or {}
    if not nvml.get("available"):
        reason = nvml.get("reason", "not sampled")
        return Status.WARN, f"model on {placed}; NVML could not confirm ({reason})"
    util = nvml.get("max_utilization_gpu") or 0
    grew = (nvml.get("max_memory_used_mib") or 0) - (nvml.get("baseline_memory_used_mib") or 0)
    if util <= 0 and grew <= 0:
        return Status.FAIL, f"model on {placed}, but NVML saw no utilisation or memory on GPU"
    return Status.PASS, f"GPU {nvml.get('index')}: up to {util}% busy, +{grew} MiB during the run"


def performance(row: RunRow, speedup: float | None) -> tuple[Status, str]:
    if row.device == "cpu":
        return Status.PASS, "CPU baseline"
    if speedup is None:
        return Status.PASS, "no CPU baseline to compare"
    impl = row.impl
    expected = IMPLS[impl].expected_gpu_speedup if impl in IMPLS else 1.0
    if speedup >= expected:
        return Status.PASS, f"{speedup:.1f}x faster than the CPU"
    if impl == "keras":
        return Status.WARN, (
            f"Keras gets {speedup:.2f}x on the GPU: for a 160k-parameter model fit() spends "
            "its time on per-step launches and host->device copies, not math; this is normal "
            "and not a broken GPU. The torch rows show what the hardware can do."
        )
    return Status.WARN, (
        f"native {impl} only {speedup:.2f}x vs the CPU (expected >= {expected:g}x): check "
        "clocks/power limits (dlcheck gpu), PCIe link, and other processes on the GPU"
    )


def judge(rows: list[RunRow], synthetic: bool, book_config: bool
          ) -> tuple[list[JudgedRow], dict[str, float | None]]:  # fmt: skip
    """Each row judged, and the first GPU's speedup per implementation."""
    pairs = [(row, summarise(row)) for row in rows]
    cpu = {r.impl: s.median_epoch_s for r, s in pairs if r.device == "cpu"}
    judged, speedups = [], {}
    for row, summary in pairs:
        base = cpu.get(row.impl)
        speedup = None
        if row.device != "cpu" and base and summary.median_epoch_s:
            speedup = base / summary.median_epoch_s
            if speedups.get(row.impl) is None:  # the first GPU's, if several
                speedups[row.impl] = speedup
        speedups.setdefault(row.impl, None)
        if row.error:
            checks = {"run": (Status.FAIL, row.error)}
        else:
            checks = {
                "correctness": correctness(row, synthetic, book_config),
                "device_used": device_used(row),
                "performance": performance(row, speedup),
            }
        verdicts = {k: Verdict(status, message) for k, (status, message) in checks.items()}
        judged.append(JudgedRow(row, summary, speedup, verdicts))
    return judged, speedups
