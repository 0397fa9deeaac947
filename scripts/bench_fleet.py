#!/usr/bin/env python3
"""How fast is `dlcheck fleet` over a big fleet? Generates report folders for N hosts in two
runs (history layout: REPORTS/<run-id>/<host>/), then times the real command, one process per
run, as a user would start it:

  python scripts/bench_fleet.py                 # 1000 hosts, 5 repeats
  python scripts/bench_fleet.py --hosts 200 --repeats 3 --keep /tmp/fleet

Prints, per variant (table of the latest run; --json; --since the first run; --html), the
median and range of the wall time and the peak resident memory (ru_maxrss of the child).
A benchmark, not a test: numbers go in docs/fleet.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def generate(root: Path, hosts: int) -> tuple[Path, list[str]]:
    sys.path.insert(0, str(REPO))
    from tests.fakes.fleet import bench_rows, write_fleet

    runs = ["20261201T020000Z", "20261202T020000Z"]
    started = time.perf_counter()
    write_fleet(root / runs[0], hosts, seed=1)

    def slower_later(index, files):  # the second run: host 7 got 40 % slower on every row
        if index == 7:
            import random

            files["bench.json"] = bench_rows(random.Random(index), slow=1.4)

    write_fleet(root / runs[1], hosts, seed=2, edit=slower_later)
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    print(f"generated {hosts} hosts x 2 runs ({size / 2**20:.0f} MiB of reports) in "
          f"{time.perf_counter() - started:.1f} s under {root}")
    return root, runs


def timed(argv: list[str]) -> tuple[float, float, int, float]:
    """(wall seconds, peak RSS MiB, exit code, CPU seconds) of one dlcheck process. CPU time
    (user + system) moves less than wall time on a machine others are using."""
    started = time.perf_counter()
    pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "dlcheck", *argv],
                         {**os.environ, "PYTHONPATH": str(REPO)},
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
    _, status, usage = os.wait4(pid, 0)
    cpu = usage.ru_utime + usage.ru_stime
    wall = time.perf_counter() - started
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="generate here and keep it (default: a temp dir)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="dlcheck-fleet-bench-"))
    try:
        root, runs = generate(root, args.hosts)
        html = root / "fleet.html"
        variants = {
            "python -c pass (interpreter start)": None,
            "fleet REPORTS/<run> (one run, table)": ["fleet", str(root / runs[1])],
            "fleet REPORTS (latest + previous, table)": ["fleet", str(root)],
            "fleet --json": ["fleet", "--json", str(root)],
            f"fleet --since {runs[0]}": ["fleet", "--since", runs[0], str(root)],
            "fleet --html FILE": ["fleet", "--html", str(html), str(root)],
        }
        print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"{'variant':40} {'median s':>9} {'min-max s':>13} {'CPU s':>6} {'peak MiB':>9} exit")
        for label, argv in variants.items():
            samples = []
            for _ in range(args.repeats):
                if argv is None:
                    started = time.perf_counter()
                    subprocess.run([sys.executable, "-c", "pass"], check=True)
                    samples.append((time.perf_counter() - started, 0.0, 0, 0.0))
                else:
                    samples.append(timed(argv))
            walls = [s[0] for s in samples]
            print(f"{label:40} {statistics.median(walls):9.2f} "
                  f"{min(walls):6.2f}-{max(walls):<6.2f} "
                  f"{statistics.median(s[3] for s in samples):6.2f} "
                  f"{max(s[1] for s in samples):9.0f} {samples[-1][2]}")
        if html.exists():
            print(f"HTML page: {html.stat().st_size / 2**20:.2f} MiB")
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"this process's own peak: {own:.0f} MiB")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
