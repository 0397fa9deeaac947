"""Turn measured rows into verdicts: correctness, device really used, performance.

Performance only ever WARNs: a tiny model may legitimately gain little on a
GPU through Keras. The native torch rows carry the hardware expectation.
"""

from __future__ import annotations

import statistics

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
# Native GPU rows are expected to beat the same run's CPU by at least this much.
EXPECTED_SPEEDUP = {"torch": 2.0, "torch-sparse": 1.0, "keras": 1.0}


def summarise(row: dict) -> dict:
    """Median/min/max epoch and samples/s from a child's epoch times."""
    times = row.get("epoch_times") or []
    if not times:
        return {"median_epoch_s": None, "min_epoch_s": None, "max_epoch_s": None,
                "samples_per_s": None}  # fmt: skip
    median = statistics.median(times)
    samples = row.get("train_samples") or 0
    return {
        "median_epoch_s": median,
        "min_epoch_s": min(times),
        "max_epoch_s": max(times),
        "samples_per_s": samples / median if median > 0 else None,
    }


def band_for(synthetic: bool, book_config: bool) -> tuple[float, float] | None:
    if not book_config:
        return None
    return SYNTHETIC_BAND if synthetic else REAL_BAND


def correctness(row: dict, synthetic: bool, book_config: bool) -> tuple[Status, str]:
    accuracy = row.get("test_accuracy")
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


def device_used(row: dict) -> tuple[Status, str]:
    placed = (row.get("placed_on") or "").lower()
    if row["device"] == "cpu":
        if "gpu" in placed or "cuda" in placed:
            return Status.FAIL, f"CPU run placed the model on {placed}"
        return Status.PASS, "ran on the CPU"
    if "gpu" not in placed and "cuda" not in placed:
        return Status.FAIL, f"model placed on {placed or 'an unknown device'}, not the GPU"
    nvml = row.get("nvml") or {}
    if not nvml.get("available"):
        reason = nvml.get("reason", "not sampled")
        return Status.WARN, f"model on {placed}; NVML could not confirm ({reason})"
    util = nvml.get("max_utilization_gpu") or 0
    grew = (nvml.get("max_memory_used_mib") or 0) - (nvml.get("baseline_memory_used_mib") or 0)
    if util <= 0 and grew <= 0:
        return Status.FAIL, f"model on {placed}, but NVML saw no utilisation or memory on GPU"
    return Status.PASS, f"GPU {nvml.get('index')}: up to {util}% busy, +{grew} MiB during the run"


def performance(row: dict) -> tuple[Status, str]:
    speedup = row.get("speedup")
    if row["device"] == "cpu" or speedup is None:
        if row["device"] == "cpu":
            return Status.PASS, "CPU baseline"
        return Status.PASS, "no CPU baseline to compare"
    impl = row["impl"]
    expected = EXPECTED_SPEEDUP.get(impl, 1.0)
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


def apply(rows: list[dict], synthetic: bool, book_config: bool) -> dict[str, float | None]:
    """Fill each row's summary, speedup and verdicts in place; return speedup per impl."""
    for row in rows:
        row.update(summarise(row))
    cpu = {r["impl"]: r["median_epoch_s"] for r in rows if r["device"] == "cpu"}
    speedups: dict[str, float | None] = {}
    for row in rows:
        row["speedup"] = None
        base = cpu.get(row["impl"])
        if row["device"] != "cpu" and base and row["median_epoch_s"]:
            row["speedup"] = base / row["median_epoch_s"]
            if speedups.get(row["impl"]) is None:  # the first GPU's, if several
                speedups[row["impl"]] = row["speedup"]
        speedups.setdefault(row["impl"], None)
        if row.get("error"):
            row["verdicts"] = {"run": {"status": "FAIL", "message": row["error"]}}
            row["verdict"] = "FAIL"
            continue
        checks = {
            "correctness": correctness(row, synthetic, book_config),
            "device_used": device_used(row),
            "performance": performance(row),
        }
        row["verdicts"] = {k: {"status": s.value, "message": m} for k, (s, m) in checks.items()}
        row["verdict"] = Status.worst(s for s, _ in checks.values()).value
    return speedups
