"""Battery: nan, inf, -inf, zero, negative, 1e308 and absurd numbers for every numeric option
of every subcommand (and the environment variables behind options), then non-UTF-8 and very
long (100 kB) arguments and paths.

A number outside an option's range is a usage error (exit 2) naming the option. A value in
range must be accepted: each case adds options that make the command end early and cheaply
(no NVML library, so `bench --device gpu` exits 3 before any data, an NCCL all-reduce is
SKIPped with exit 3), so acceptance shows as exit 3, not 2.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import pytest

from tests.battery.harness import ProcessCase, judge, run_inside

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml, clean_env

# subcommand -> (arguments that end it early once parsed, exit code then)
EARLY_END = {
    "check": (["--no-frameworks"], 1),  # no NVML library on a GPU host: FAIL nvml_library_missing
    "gpu": ([], 3),  # NVML unusable: nothing to list
    "bench": (["--device", "gpu", "--synthetic"], 3),  # no GPU to benchmark
    "allreduce": (["--backend", "nccl"], 3),  # NCCL needs 2 GPUs: SKIP, none here
}
# subcommand -> {option: the values it accepts, as a predicate on the number}
NUMERIC = {
    "check": {"--timeout": lambda x: 1 <= x <= 86400, "--nvml-timeout": lambda x: 0.1 <= x <= 3600},
    "gpu": {"--nvml-timeout": lambda x: 0.1 <= x <= 3600},
    "bench": {
        "--timeout": lambda x: 1 <= x <= 86400,
        "--epochs": lambda x: x == int(x) and 1 <= x <= 1000,
        "--batch-size": lambda x: x == int(x) and 1 <= x <= 25000,
        "--seed": lambda x: x == int(x) and 0 <= x <= 2**32 - 1,
        "--threads": lambda x: x == int(x) and 0 <= x <= 1024,
        "--limit": lambda x: x == int(x) and 10 <= x <= 25000,
        "--nvml-timeout": lambda x: 0.1 <= x <= 3600,
    },
    "allreduce": {
        "--size": lambda x: x == int(x) and 4 <= x <= 2**40,  # bytes per rank, up to 1 TiB
        "--iters": lambda x: x == int(x) and 1 <= x <= 10000,
        "--warmup": lambda x: x == int(x) and 0 <= x <= 1000,
        "--ranks": lambda x: x == int(x) and 1 <= x <= 256,
        "--timeout": lambda x: 1 <= x <= 86400,
        "--nvml-timeout": lambda x: 0.1 <= x <= 3600,
    },
}
VALUES = ["nan", "inf", "-inf", "0", "-1", "1e308", "99999999999999999999", "2.5", ""]
INTEGER_OPTIONS = {"--epochs", "--batch-size", "--seed", "--threads", "--limit", "--size",
                   "--iters", "--warmup", "--ranks"}  # fmt: skip


def _accepted(command: str, option: str, text: str) -> bool:
    try:
        number = float(text)
    except ValueError:
        return False
    if option in INTEGER_OPTIONS and any(c in text for c in ".e") and option != "--size":
        return False  # click's IntRange reads integers only: "2.5", "1e308" are refused
    if option == "--size" and not text.replace(".", "", 1).isdigit():
        return False  # sizes are digits with an optional K/M/G suffix
    return math.isfinite(number) and NUMERIC[command][option](number)


CASES = [
    (command, option, value)
    for command, options in NUMERIC.items()
    for option in options
    for value in VALUES
]


@pytest.fixture
def no_nvml(fake_nvml, clean_env, tmp_path, monkeypatch):
    from dlcheck import system
    from tests.fakes.host import gpu_host

    monkeypatch.setattr(system, "DEFAULT_ROOTS", gpu_host(tmp_path / "host"))
    fake_nvml("no_library")


@pytest.mark.parametrize("command, option, value", CASES,
                         ids=[f"{c}{o}={v or 'empty'}" for c, o, v in CASES])  # fmt: skip
def test_numeric_option(command, option, value, no_nvml, tmp_path):
    early, early_code = EARLY_END[command]
    accepted = _accepted(command, option, value)
    outcome = run_inside([command, *early, option, value], tmp_path / "case")
    judge(outcome, early_code if accepted else 2)
    if not accepted:
        assert option in outcome.stderr, outcome.stderr


ENV_CASES = [
    ("DLCHECK_NVML_TIMEOUT", value, ["gpu"]) for value in ("nan", "inf", "-1", "0", "abc", "1e308")
] + [("DLCHECK_CPU_OK", "maybe", ["check", "--no-frameworks"])]


@pytest.mark.parametrize("name, value, args", ENV_CASES,
                         ids=[f"{n}={v}" for n, v, _ in ENV_CASES])  # fmt: skip
def test_environment_variable_behind_an_option(name, value, args, no_nvml, tmp_path):
    outcome = run_inside(args, tmp_path / "case", {name: value})
    judge(outcome, 2)
    assert name in outcome.stderr, f"the error must name {name}, which the user set: " + (
        outcome.stderr
    )


# --- very long arguments and paths (in this process: no need for a real argv) ------------

LONG = "x" * 100_000
LONG_PATH = "/tmp/" + "/".join(["d" * 200] * 500)  # 100 kB, each part under NAME_MAX
LONG_CASES = [
    ("fleet-long-path", ["fleet", LONG_PATH], 2),
    ("fleet-long-name", ["fleet", LONG], 2),
    ("bench-data-long", ["bench", "--device", "cpu", "--data", LONG_PATH], 2),
    ("bench-plot-long", ["bench", "--device", "gpu", "--synthetic", "--plot", LONG + ".png"], 2),
    ("bench-plot-long-path", ["bench", "--device", "gpu", "--synthetic", "--plot",
                              LONG_PATH + ".png"], 2),  # fmt: skip
    ("timeout-100k-digits", ["check", "--timeout", "9" * 100_000], 2),
    ("epochs-100k-digits", ["bench", "--epochs", "9" * 100_000], 2),
    ("size-100k-digits", ["allreduce", "--size", "9" * 100_000], 2),
    ("size-400-digits", ["allreduce", "--size", "9" * 400], 2),
    ("size-huge-suffix", ["allreduce", "--size", "99999999999G"], 2),
    ("unknown-option-long", ["check", "--" + LONG], 2),
    ("unknown-command-long", [LONG], 2),
    ("impl-long", ["bench", "--impl", LONG], 2),
    ("device-long", ["bench", "--device", LONG], 2),
]


@pytest.mark.parametrize("name, args, code", LONG_CASES, ids=[c[0] for c in LONG_CASES])
def test_very_long_argument(name, args, code, no_nvml, tmp_path):
    outcome = run_inside(args, tmp_path / "case")
    judge(outcome, code)
    assert len(outcome.stderr) < 2_000, "the error must not echo 100 kB back"


# --- non-UTF-8 bytes in arguments and paths: a real process, so argv really is bytes --------

BAD_BYTES = os.fsdecode(b"\xff\xfe-caf\xe9")  # what Python makes of non-UTF-8 argv bytes


REPORTS = "{case}/" + os.fsdecode(b"reports-\xff")  # {case}: the case's own folder


def _non_utf8_reports(folder):
    """A reports folder whose own name, and a host's, are not UTF-8 (both hosts are fine)."""
    from tests.fakes.reports import check_data, smoke_data, write_host

    reports = Path(REPORTS.format(case=folder))
    write_host(reports, "good", check=check_data(), smoke=smoke_data())
    write_host(reports, os.fsdecode(b"host-\xe9\xff"), check=check_data(), smoke=smoke_data())
    return contextlib.nullcontext({})


NON_UTF8 = [
    ProcessCase("fleet-missing-non-utf8", ["fleet", f"/nonexistent/{BAD_BYTES}"], 2,
                "not a folder: usage error, the path shown without crashing"),  # fmt: skip
    ProcessCase("command-non-utf8", [BAD_BYTES], 2, "no such command"),
    ProcessCase("timeout-non-utf8", ["--timeout", BAD_BYTES], 2, "not a number"),
    ProcessCase("impl-non-utf8", ["bench", "--impl", BAD_BYTES], 2, "unknown implementation"),
    ProcessCase("data-non-utf8", ["bench", "--device", "cpu", "--data", f"/no/{BAD_BYTES}"], 1,
                "--data names no file: one line, exit 1"),  # fmt: skip
    ProcessCase("plot-non-utf8", ["bench", "--device", "cpu", "--synthetic", "--impl",
                                  "torch-sparse", "--limit", "10", "--epochs", "1", "--plot",
                                  f"{{case}}/{BAD_BYTES}/plot.png"], 0,
                "a plot in a new folder whose name is not UTF-8: created, written",
                cost=6),  # fmt: skip
    ProcessCase("keras-home-non-utf8", ["--json", "--no-frameworks"], 1,
                "KERAS_HOME not UTF-8: the cache check reports it; no library on a GPU host",
                scenario="no_library", env={"KERAS_HOME": f"/tmp/{BAD_BYTES}"}),  # fmt: skip
    ProcessCase("fleet-non-utf8-folders", ["fleet", REPORTS], 0,
                "folder names are bytes, not always UTF-8: shown with a replacement character",
                prepare=_non_utf8_reports),  # fmt: skip
    ProcessCase("fleet-non-utf8-folders-json", ["fleet", REPORTS, "--json"], 0,
                "the same as JSON: valid, host names with replacement characters",
                prepare=_non_utf8_reports),  # fmt: skip
    ProcessCase("ascii-terminal-fleet", ["fleet", REPORTS], 0,
                "a terminal that is not UTF-8: output degrades, never crashes",
                prepare=_non_utf8_reports, env={"PYTHONIOENCODING": "ascii"}),  # fmt: skip
    ProcessCase("ascii-terminal-gpu", ["gpu"], 0,
                "a terminal that is not UTF-8: output degrades, never crashes",
                env={"PYTHONIOENCODING": "ascii"}),  # fmt: skip
    ProcessCase("latin1-terminal-check", ["-v"], 0,
                "a Latin-1 terminal: output degrades, never crashes",
                env={"PYTHONIOENCODING": "latin-1"}),  # fmt: skip
]


@pytest.mark.parametrize("case", NON_UTF8, ids=str)
def test_non_utf8_and_legacy_encodings(case, run_case, case_pool):
    outcome = run_case(case)
    judge(outcome, case.code, case.schema)
    if case.id == "plot-non-utf8":
        plot = case_pool.folder(case) / BAD_BYTES / "plot.png"
        assert plot.read_bytes()[:4] == b"\x89PNG"
