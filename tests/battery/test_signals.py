"""Battery: Ctrl-C (SIGINT to the foreground process group, as a terminal sends it) and SIGTERM
at each phase of `dlcheck check`, `bench` and `allreduce` (and `gpu`, `fleet`), as real
processes. Each must exit 130 / 143 within a few seconds of the signal, with every child
process and process group gone and its own TMPDIR empty (harness.judge checks all three).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import time

import pytest

from tests.battery.harness import SIGNAL_EXIT_S, ProcessCase, Signal, judge
from tests.fakes.reports import check_data, smoke_data, write_host

INT, TERM = signal.SIGINT, signal.SIGTERM
EXIT = {INT: 130, TERM: 143}
HANGING_PROBES = json.dumps(dict.fromkeys(("torch", "tensorflow", "keras", "jax"), "HANG"))
STUBBORN_PROBES = json.dumps({"torch": "IGNORE_TERM", "tensorflow": "HANG"})
SMALL_BENCH = ["bench", "--device", "cpu", "--synthetic", "--impl", "torch-sparse",
               "--limit", "10", "--epochs", "1"]  # fmt: skip


def children(count: int):
    """The phase where at least `count` children of dlcheck are running."""
    return lambda watch: watch.children() >= count


def mark(phase: str):
    """The phase the launcher marks (tests/fakes/run_dlcheck.py): data_prep, nvml_hang, ..."""
    return lambda watch: watch.marked(phase)


def for_a_while(phase, seconds: float):
    """`phase`, once it has lasted `seconds` (children deep in their work, not just started)."""
    since: list[float] = []

    def reached(watch) -> bool:
        if not phase(watch):
            return False
        since.append(since[0] if since else time.monotonic())
        return time.monotonic() - since[0] >= seconds

    return reached


def _big_fleet(folder):
    """1500 host folders: reading them takes long enough to be interrupted midway."""
    reports = folder / "reports"
    first = write_host(reports, "host-0000", check=check_data(), smoke=smoke_data())
    for number in range(1, 1500):
        shutil.copytree(first, reports / f"host-{number:04d}")
    return contextlib.nullcontext({})


def cases_for(name: str, args: list[str], phase, cost: float, **settings) -> list[ProcessCase]:
    """A SIGINT and a SIGTERM case; `phase()` makes a fresh phase test for each (some count)."""
    return [
        ProcessCase(f"{name}-{signal.Signals(sig).name}", args, EXIT[sig],
                    f"{signal.Signals(sig).name} during {name}: stop every child, remove every "
                    "temp folder, exit 128+signal", send=Signal(sig, phase()), cost=cost,
                    **settings)  # fmt: skip
        for sig in (INT, TERM)
    ]


CASES = [
    # as the first probe starts: a signal inside Popen must not leave that child unregistered
    *cases_for("check-probes-starting", ["--json"], lambda: children(1), 2,
               env={"DLCHECK_TEST_PROBES": HANGING_PROBES}),  # fmt: skip
    *cases_for("check-probes-running", ["--json"], lambda: children(4), 2,
               env={"DLCHECK_TEST_PROBES": HANGING_PROBES}),  # fmt: skip
    # the real probes (jax is not installed here: its probe ends at once, so 3 stay)
    *cases_for("check-real-probes-importing", ["-v"],
               lambda: for_a_while(children(3), 1.0), 4, env={"DLCHECK_TEST_PROBES": ""}),
    *cases_for("check-nvml-hung-with-probes", ["--json"], lambda: mark("nvml_hang"), 2,
               scenario="hung_at_init", env={"DLCHECK_TEST_PROBES": HANGING_PROBES}),  # fmt: skip
    *cases_for("check-probe-ignores-sigterm", ["--json"], lambda: children(2), 4,
               env={"DLCHECK_TEST_PROBES": STUBBORN_PROBES}),  # fmt: skip
    *cases_for("gpu-nvml-hung", ["gpu"], lambda: mark("nvml_hang"), 1, scenario="hung_driver"),
    *cases_for("bench-data-prep", SMALL_BENCH, lambda: mark("data_prep"), 3,
               env={"DLCHECK_TEST_SYNTHETIC_N": ""}),  # fmt: skip
    # C code can lose a signal handler's exception (numpy's lazy `import numpy.random` did, in 17
    # of 300 tries): dlcheck must raise it again, or take the ImportError it became for it
    *cases_for("bench-signal-swallowed", SMALL_BENCH, lambda: mark("data_prep"), 3,
               env={"DLCHECK_TEST_LOSE_SIGNAL": "swallow"}),  # fmt: skip
    *cases_for("bench-signal-became-importerror", SMALL_BENCH, lambda: mark("data_prep"), 3,
               env={"DLCHECK_TEST_LOSE_SIGNAL": "import_error"}),  # fmt: skip
    *cases_for("bench-child-starting", SMALL_BENCH, lambda: children(1), 3),
    *cases_for("bench-child-running", SMALL_BENCH,
               lambda: for_a_while(children(1), 1.5), 4),  # fmt: skip
    *cases_for("bench-nvml-hung", [*SMALL_BENCH[:2], "gpu", *SMALL_BENCH[3:]],
               lambda: mark("nvml_hang"), 2, scenario="hung_at_init"),  # fmt: skip
    *cases_for("allreduce-ranks-starting", ["allreduce", "--backend", "gloo", "--size", "1M"],
               lambda: children(2), 3),  # fmt: skip
    *cases_for("allreduce-ranks-running", ["allreduce", "--backend", "gloo", "--size", "1M"],
               lambda: for_a_while(children(2), 2.0), 5),  # fmt: skip
    *cases_for("fleet-reading", ["fleet", "{case}/reports", "--json"],
               lambda: mark("fleet_read"), 2, prepare=_big_fleet),  # fmt: skip
    # The kernel may hand a process-directed signal to any thread: here, to the one stuck in
    # the driver. The main thread must still notice within the bound, not at the NVML deadline.
    *(ProcessCase(f"{name}-signal-to-stuck-thread-{signal.Signals(sig).name}", args, EXIT[sig],
                  "a signal delivered to the NVML thread still stops dlcheck at once",
                  scenario="hung_driver", send=Signal(sig, mark("nvml_hang"), to="thread"))
      for name, args in (("gpu", ["gpu"]), ("check", ["--json"]),
                         ("bench", [*SMALL_BENCH[:2], "gpu", *SMALL_BENCH[3:]]))
      for sig in (INT, TERM)),  # fmt: skip
    ProcessCase("check-ctrl-c-twice", ["--json"], 130,
                "an impatient second Ctrl-C during the cleanup must not cut it short",
                send=Signal(INT, children(4), again_after_s=0.05), cost=2,
                env={"DLCHECK_TEST_PROBES": HANGING_PROBES}),  # fmt: skip
    ProcessCase("bench-ctrl-c-twice", SMALL_BENCH, 130,
                "an impatient second Ctrl-C during the cleanup must not cut it short",
                send=Signal(INT, children(1), again_after_s=0.3), cost=3),  # fmt: skip
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_signal_at_each_phase(case, run_case):
    outcome = run_case(case)
    judge(outcome, case.code, case.schema)
    assert outcome.signal_to_exit_s is not None and outcome.signal_to_exit_s < SIGNAL_EXIT_S, (
        f"{outcome.signal_to_exit_s} s from the signal to the exit"
    )
    word = "interrupted" if case.code == 130 else "terminated"
    assert word in outcome.stderr, outcome.stderr
