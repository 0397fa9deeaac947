#!/usr/bin/env python3
"""Whole-process time of `dlcheck gpu` against nvitop's, and of the full `dlcheck` before and
after the one-command-shape refactor (issue 10, "Done when"). A benchmark, not a test.

    .venv/bin/python scripts/measure_cli_time.py [--runs 15] [--full-runs 5]

Every pair runs interleaved (A B A B ...), so load from other work on the machine hits both
alike; medians and their ratio are printed.

- nvitop lives in its own venv (build/nvitop-venv, made on first use with `pip install
  nvitop`), never in .venv. `nvitop -1` prints one snapshot and exits, its closest match to
  `dlcheck gpu`.
- `dlcheck gpu` runs from build/dlcheck-venv, where this tree is installed with `pip install .`
  as the dlcheck role installs it (reinstalled on every run). Not from .venv: its editable
  install's path finder costs every Python start there about 13 ms (`.venv/bin/python -c pass`
  24 ms, a plain venv's 11 ms), which no user's install pays.
- "before" is dlcheck's package as of BEFORE_COMMIT (the last commit before the refactor),
  exported with `git archive` to build/dlcheck-before and put first on PYTHONPATH, run by the
  same .venv interpreter as "after": same Python, same frameworks, only dlcheck's code differs
  (children inherit PYTHONPATH, so the framework probes are the old ones too).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
BEFORE_COMMIT = "bc9af1b"
NVITOP = "nvitop==1.7.2"


def tool_venv(name: str, package: str, refresh: bool = False) -> Path:
    """build/<name>-venv with `package` pip-installed, made on first use; its `name` command.
    refresh: reinstall the package (dlcheck from this checkout, whose code may have changed)."""
    venv = BUILD / f"{name}-venv"
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
           "--disable-pip-version-check"]  # fmt: skip
    if not (venv / "bin" / name).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, package], check=True)
    elif refresh:
        subprocess.run([*pip, "--force-reinstall", "--no-deps", package], check=True)
    return venv / "bin" / name


def before_tree() -> Path:
    target = BUILD / f"dlcheck-{BEFORE_COMMIT}"
    if not (target / "dlcheck" / "cli.py").exists():
        target.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE_COMMIT, "dlcheck"],
                                 check=True, capture_output=True).stdout  # fmt: skip
        archive_path = target / "dlcheck.tar"
        archive_path.write_bytes(archive)
        with tarfile.open(archive_path) as tar:
            tar.extractall(target, filter="data")
        archive_path.unlink()
    return target


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, int]:
    started = time.perf_counter()
    code = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode  # fmt: skip
    return time.perf_counter() - started, code


def compare(label: str, runs: int, a: tuple, b: tuple) -> None:
    """a, b: (name, argv, environment, working folder)."""
    times: dict[str, list[float]] = {a[0]: [], b[0]: []}
    codes: dict[str, set[int]] = {a[0]: set(), b[0]: set()}
    for number in range(runs):
        for name, argv, env, cwd in (a, b) if number % 2 == 0 else (b, a):
            seconds, code = timed(argv, env, cwd)
            times[name].append(seconds)
            codes[name].add(code)
    print(f"\n{label} ({runs} runs each, interleaved; load average {os.getloadavg()[0]:.1f})")
    for name in times:
        values = times[name]
        print(f"  {name:<28} median {statistics.median(values):6.3f} s   min {min(values):6.3f} s"
              f"   max {max(values):6.3f} s   exit codes {sorted(codes[name])}")
    ratio = statistics.median(times[a[0]]) / statistics.median(times[b[0]])
    print(f"  ratio {a[0]} / {b[0]}: {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15,
                        help="runs of each for dlcheck gpu/nvitop (0: skip that pair)")
    parser.add_argument("--full-runs", type=int, default=5,
                        help="runs of each full dlcheck (0: skip that pair)")
    options = parser.parse_args()
    if options.runs < 0 or options.full_runs < 0 or options.runs + options.full_runs == 0:
        parser.error("--runs and --full-runs are counts of 0 or more, and not both 0")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    python = str(ROOT / ".venv" / "bin" / "python")
    if options.runs:
        dlcheck = tool_venv("dlcheck", str(ROOT), refresh=True)
        nvitop = tool_venv("nvitop", NVITOP)
        compare("dlcheck gpu vs nvitop -1 (whole process)", options.runs,
                ("dlcheck gpu", [str(dlcheck), "gpu"], env, ROOT),
                ("nvitop -1", [str(nvitop), "-1"], env, ROOT))  # fmt: skip
    if not options.full_runs:
        return
    # `python -m` puts the working folder first on sys.path: each runs in its own tree.
    old = before_tree()
    compare("full dlcheck (framework probes included), after vs before the refactor",
            options.full_runs,
            ("dlcheck after (this tree)", [python, "-m", "dlcheck"],
             {**env, "PYTHONPATH": str(ROOT)}, ROOT),
            (f"dlcheck before ({BEFORE_COMMIT})", [python, "-m", "dlcheck"],
             {**env, "PYTHONPATH": str(old)}, old))  # fmt: skip


if __name__ == "__main__":
    main()
