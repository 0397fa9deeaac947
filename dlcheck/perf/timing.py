"""Time-boxed repeats shared by the CPU and GPU measurements (child side only)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def repeat(
    timed: Callable[[], float], seconds: float, min_reps: int = 3, max_reps: int = 50
) -> list[float]:
    """Call `timed` (returns one run's duration in s) until `seconds` pass; >= min_reps runs."""
    durations: list[float] = []
    started = time.perf_counter()
    while len(durations) < max_reps:
        durations.append(timed())
        if len(durations) >= min_reps and time.perf_counter() - started >= seconds:
            break
    return durations


def wall(function: Callable[[], object]) -> Callable[[], float]:
    """A `timed` callable measuring `function` with the wall clock (for synchronous CPU work)."""

    def timed() -> float:
        start = time.perf_counter()
        function()
        return time.perf_counter() - start

    return timed


def rates(durations: list[float], work: float) -> dict[str, float]:
    """Median, slowest and fastest rate (work per second) of the repeats."""
    values = [work / d for d in durations if d > 0]
    if not values:
        return {"median": 0.0, "low": 0.0, "high": 0.0, "repeats": 0}
    return {
        "median": statistics.median(values),
        "low": min(values),
        "high": max(values),
        "repeats": len(values),
    }
