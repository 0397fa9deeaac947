#!/usr/bin/env python3
"""Median wall time of the whole `dlcheck gpu` process (target: <= 0.5 s).

python scripts/measure_gpu_latency.py [runs]      # uses the interpreter running it
"""

import statistics
import subprocess
import sys
import time


def measure(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - started)
    return times


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    worst = 0.0
    for label, extra in (("dlcheck gpu", []), ("dlcheck gpu --json", ["--json"])):
        times = measure([sys.executable, "-m", "dlcheck", "gpu", *extra], runs)
        median = statistics.median(times)
        worst = max(worst, median)
        print(f"{label:<20} runs={runs} median={median:.3f}s min={min(times):.3f}s "
              f"max={max(times):.3f}s")  # fmt: skip
    print(f"target 0.500s: {'PASS' if worst <= 0.5 else 'FAIL'}")
    return 0 if worst <= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
