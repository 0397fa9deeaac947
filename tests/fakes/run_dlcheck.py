"""`dlcheck` as a real process, with NVML faked at its one seam:

    python -m tests.fakes.run_dlcheck SCENARIO [dlcheck arguments...]

SCENARIO is a name in tests.fakes.nvml.SCENARIOS, a path to a scenario JSON file, or "real"
for the machine's own NVML. For tests that need the real process: signals, a closed stdout, the
exit without waiting for a thread stuck in the (fake) driver.

Optional test knobs, all from the environment (unset: the real behaviour):
  DLCHECK_TEST_ROOTS   a fake host tree (tests.fakes.host) instead of /proc, /sys, /dev, /etc
  DLCHECK_TEST_PROBES  JSON {framework: probe document | "HANG" | "CRASH"}, or "healthy":
                       fake framework probes (real child processes, canned answers)
  DLCHECK_TEST_SYNTHETIC_N  reviews per split in bench's synthetic data set (fast, small runs)
  DLCHECK_TEST_MARKS   a folder: a file named after each phase is created when the phase starts
                       ("data_prep": bench builds its data set; "fleet_read": fleet reads a host;
                       "nvml_hang": a call into the fake NVML starts to block),
                       so a test can send a signal at that phase
  DLCHECK_TEST_LOSE_SIGNAL  "swallow" or "import_error": bench's data set-up loses the first
                       signal's exception as C code can (dlcheck.interrupts): it marks
                       "data_prep", waits, and swallows the exception or raises ImportError
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from dlcheck import cli, nvml


def main() -> None:
    name, args = sys.argv[1], sys.argv[2:]
    if name != "real":
        from tests.fakes.nvml import FakePynvml, scenario

        data = json.loads(Path(name).read_text()) if name.endswith(".json") else scenario(name)
        fake = FakePynvml(data)
        fake.on_hang = lambda: _mark(os.environ.get("DLCHECK_TEST_MARKS"), "nvml_hang")
        nvml._import_pynvml = lambda: fake
    _install_knobs(os.environ)
    sys.argv = ["dlcheck", *args]
    cli.main()


def _install_knobs(environ) -> None:
    if environ.get("DLCHECK_TEST_ROOTS"):
        from dlcheck import system

        base = Path(environ["DLCHECK_TEST_ROOTS"])
        system.DEFAULT_ROOTS = system.Roots(
            proc=base / "proc", sys=base / "sys", dev=base / "dev", etc=base / "etc",
            root=base / "root",
        )  # fmt: skip
    if environ.get("DLCHECK_TEST_PROBES"):
        from dlcheck import frameworks
        from tests.fakes import probes

        text = environ["DLCHECK_TEST_PROBES"]
        documents = probes.HEALTHY if text == "healthy" else json.loads(text)
        frameworks.probe_command = probes.command_for(documents)
    marks = environ.get("DLCHECK_TEST_MARKS")
    size = environ.get("DLCHECK_TEST_SYNTHETIC_N")
    lose = environ.get("DLCHECK_TEST_LOSE_SIGNAL")
    if marks or size:
        from dlcheck.bench import data

        synthetic = data.synthetic

        def small_synthetic(n_train=25000, n_test=25000, **options):
            if lose:
                _lose_a_signal(marks, lose)
            else:
                _mark(marks, "data_prep")
            if size:
                n_train = n_test = int(size)
            return synthetic(n_train, n_test, **options)

        data.synthetic = small_synthetic
    if marks:
        from dlcheck.fleet import hosts

        read_host = hosts.read_host

        def marked_read_host(folder):
            _mark(marks, "fleet_read")
            return read_host(folder)

        hosts.read_host = marked_read_host


def _lose_a_signal(marks: str | None, how: str) -> None:
    try:
        _mark(marks, "data_prep")
        time.sleep(5)  # the test's signal arrives here
    except BaseException:  # KeyboardInterrupt or Terminated, lost as Cython's module set-up did
        if how == "import_error":
            raise ImportError("cannot initialise module strings") from None
    time.sleep(5)  # the rest of the work: dlcheck must raise the signal again meanwhile


def _mark(folder: str | None, phase: str) -> None:
    if folder:
        Path(folder, phase).touch()


if __name__ == "__main__":
    main()
