"""Battery: a closed stdout and a closed stderr, as real processes.

"reader gone": a pipe whose reader left before dlcheck wrote (`dlcheck gpu --json | head -c0`).
"closed": the descriptor is not open at all (`dlcheck gpu >&-`, `2>&-`).
A closed stdout ends the output quietly (nothing on stderr) with the report's own exit code, as
`head`-friendly tools do; never exit 4 "internal error". A closed stderr must not stop the work:
progress and errors are a courtesy there, the result still goes to stdout.
"""

from __future__ import annotations

import contextlib

import pytest

from tests.battery.harness import ProcessCase, Stream, error_lines, judge
from tests.fakes.reports import check_data, smoke_data, write_host

GONE, CLOSED = Stream("reader_gone"), Stream("closed")
SMALL_BENCH = ["bench", "--device", "cpu", "--synthetic", "--impl", "torch-sparse",
               "--limit", "10", "--epochs", "1"]  # fmt: skip


def _fleet(folder):
    write_host(folder / "reports", "good", check=check_data(), smoke=smoke_data())
    return contextlib.nullcontext({})


QUIET = "the reader left: end quietly with the report's exit code"
UNSEEN = "the error cannot be shown; the exit code still says it"
CASES = [
    ProcessCase("gpu-json-reader-gone", ["gpu", "--json"], 0, QUIET, stdout=GONE),
    ProcessCase("gpu-reader-gone", ["gpu"], 0, QUIET, stdout=GONE),
    ProcessCase("gpu-lost-reader-gone", ["gpu", "--json"], 1, QUIET, stdout=GONE,
                scenario="gpu_lost"),  # fmt: skip
    ProcessCase("check-json-reader-gone", ["--json"], 0, QUIET, stdout=GONE),
    ProcessCase("check-reader-gone", ["-v"], 0, QUIET, stdout=GONE),
    ProcessCase("fleet-reader-gone", ["fleet", "{case}/reports"], 0, QUIET, stdout=GONE,
                prepare=_fleet),  # fmt: skip
    ProcessCase("help-reader-gone", ["--help"], 0, QUIET, stdout=GONE),
    ProcessCase("version-reader-gone", ["--version"], 0, QUIET, stdout=GONE),
    ProcessCase("bench-reader-gone", [*SMALL_BENCH, "--json"], 0, QUIET, stdout=GONE, cost=5),
    ProcessCase("allreduce-reader-gone", ["allreduce", "--backend", "gloo", "--size", "4K"], 0,
                QUIET, stdout=GONE, cost=5),  # fmt: skip
    ProcessCase("gpu-stdout-closed", ["gpu", "--json"], 0, "no stdout at all: nothing to say",
                stdout=CLOSED),  # fmt: skip
    ProcessCase("check-stdout-closed", [], 0, "no stdout at all", stdout=CLOSED),
    ProcessCase("gpu-stderr-reader-gone", ["gpu", "--json"], 0,
                "stderr is not needed for the report", stderr=GONE),  # fmt: skip
    ProcessCase("usage-error-stderr-gone", ["--timeout", "nan"], 2, UNSEEN, stderr=GONE),
    ProcessCase("usage-error-stderr-closed", ["--timeout", "nan"], 2, UNSEEN, stderr=CLOSED),
    ProcessCase("check-stderr-closed", ["--json"], 0, "the report still goes to stdout",
                stderr=CLOSED),  # fmt: skip
    ProcessCase("bench-stderr-reader-gone", [*SMALL_BENCH, "--json"], 0,
                "progress cannot be shown; the benchmark still runs and reports", stderr=GONE,
                cost=5),  # fmt: skip
    ProcessCase("bench-stderr-closed", [*SMALL_BENCH, "--json"], 0,
                "progress cannot be shown; the benchmark still runs and reports",
                stderr=CLOSED, cost=5),  # fmt: skip
    ProcessCase("both-closed", ["gpu", "--json"], 0, "nothing to write to: the exit code tells",
                stdout=CLOSED, stderr=CLOSED),  # fmt: skip
    ProcessCase("hung-nvml-stdout-gone", ["gpu", "--json", "--nvml-timeout", "0.5"], 1, QUIET,
                scenario="hung_driver", stdout=GONE),  # fmt: skip
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_closed_stdout_and_stderr(case, run_case):
    outcome = run_case(case)
    judge(outcome, case.code, case.schema)
    if case.stdout is GONE or case.stdout is CLOSED:  # progress may show; no error may
        assert not error_lines(outcome.stderr), "a closed stdout ends quietly: " + outcome.stderr
    if case.stderr is not None and case.stdout is None and case.code == 0:
        assert '"schema": "dlcheck/1"' in outcome.stdout, "the report still reaches stdout"
