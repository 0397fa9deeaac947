"""Battery: a bug inside each subcommand (an injected exception), Ctrl-C inside each, --debug,
and error messages that carry hostile text (a path with escape sequences).

Issue 10: every subcommand exits 4 on an injected internal error, with one line (no traceback)
unless --debug or DLCHECK_DEBUG=1 asks for it, and 130 on Ctrl-C.
"""

from __future__ import annotations

import pytest

from dlcheck import cli
from tests.battery.harness import error_lines, judge, run_inside

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml, clean_env

ESC = "\x1b]0;pwned\x07\x1b[2J"
COMMANDS = {  # subcommand -> arguments that reach its build() quickly
    "check": ["check", "--no-frameworks"],
    "gpu": ["gpu"],
    "bench": ["bench", "--device", "cpu", "--synthetic"],
    "fleet": ["fleet", "."],
    "allreduce": ["allreduce", "--backend", "gloo"],
    "perf": ["perf", "--cpu-only"],
}


def test_every_subcommand_is_covered():
    assert set(COMMANDS) == set(cli.SUBCOMMANDS)


class Boom(Exception):
    pass


def _raiser(error: BaseException):
    def build(*args, **kwargs):
        raise error

    return build


# (id, what build() raises, extra arguments, extra environment, exit code, traceback wanted)
FAULTS = [
    ("bug", Boom("a bug"), [], {}, 4, False),
    ("bug-debug-flag", Boom("a bug"), ["--debug"], {}, 4, True),
    ("bug-debug-env", Boom("a bug"), [], {"DLCHECK_DEBUG": "1"}, 4, True),
    ("bug-long-message", Boom("line\n" * 10_000), [], {}, 4, False),
    ("bug-hostile-message", Boom(f"bad {ESC}[/] thing"), [], {}, 4, False),
    ("bug-os-error", OSError(28, "No space left on device"), [], {}, 4, False),
    ("ctrl-c", KeyboardInterrupt(), [], {}, 130, False),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f[0] for f in FAULTS])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_injected_fault_in_every_subcommand(command, fault, fake_nvml, clean_env, monkeypatch,
                                            tmp_path):  # fmt: skip
    import importlib

    name, error, extra, environ, code, traceback_wanted = fault
    fake_nvml("no_library")
    module = importlib.import_module(f"dlcheck.commands.{command}")
    monkeypatch.setattr(module, "build", _raiser(error))
    monkeypatch.chdir(tmp_path)
    outcome = run_inside([*COMMANDS[command], *extra], tmp_path / "case", environ)
    judge(outcome, code, debug=traceback_wanted)
    assert ("Traceback (most recent call last)" in outcome.stderr) == traceback_wanted
    assert "\x1b" not in outcome.stderr and "\x07" not in outcome.stderr
    last = error_lines(outcome.stderr)[-1]
    assert len(last) < 600, "one short line, whatever the exception says"
    assert ("internal error" in last) if code == 4 else ("interrupted" in last), last


def test_bug_in_a_human_view_is_exit_4(fake_nvml, clean_env, monkeypatch, tmp_path):
    from dlcheck.render import gpu as gpu_view

    fake_nvml("healthy_single")
    monkeypatch.setattr(gpu_view, "render", _raiser(Boom("the view broke")))
    outcome = run_inside(["gpu"], tmp_path / "case")
    judge(outcome, 4)


# Error messages that quote what the user (or a file system) gave: no escape sequence passes.
HOSTILE_ARGS = [
    ("fleet-path", ["fleet", f"/nonexistent/{ESC}x"], 2),
    ("data-path", ["bench", "--device", "cpu", "--data", f"/nonexistent/{ESC}x"], 1),
    ("plot-name", ["bench", "--device", "cpu", "--plot", f"{ESC}.pdf"], 2),
    ("timeout-value", ["check", "--timeout", f"1{ESC}"], 2),
    ("impl-value", ["bench", "--impl", f"torch,{ESC}"], 2),
    ("unknown-command", [f"che{ESC}ck"], 2),
    ("unknown-option", ["gpu", f"--json{ESC}"], 2),
]


@pytest.mark.parametrize("name, args, code", HOSTILE_ARGS, ids=[c[0] for c in HOSTILE_ARGS])
def test_error_messages_quote_arguments_cleaned(name, args, code, fake_nvml, clean_env,
                                                tmp_path):  # fmt: skip
    fake_nvml("no_library")
    outcome = run_inside(args, tmp_path / "case")
    judge(outcome, code)
    assert "\x1b" not in outcome.stderr and "\x07" not in outcome.stderr, repr(outcome.stderr)


# The machine, not dlcheck: no temp folder can be made anywhere, or the interpreter for the
# children is gone. One line, exit 1 (children.ChildError), nothing left behind.
def _no_temp_folder(monkeypatch):
    import tempfile

    def mkdtemp(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)


def _no_interpreter(monkeypatch):
    import sys

    monkeypatch.setattr(sys, "executable", "/nonexistent/python3")


MACHINE = [
    ("check-no-temp-folder", _no_temp_folder, ["check"], "cannot create a temp folder"),
    ("bench-no-temp-folder", _no_temp_folder, ["bench", "--device", "cpu", "--synthetic"],
     "cannot create a temp folder"),  # fmt: skip
    ("allreduce-no-temp-folder", _no_temp_folder, ["allreduce", "--backend", "gloo"],
     "cannot create a temp folder"),  # fmt: skip
    ("bench-no-interpreter", _no_interpreter, ["bench", "--device", "cpu", "--synthetic"],
     "could not start /nonexistent/python3"),  # fmt: skip
    ("allreduce-no-interpreter", _no_interpreter, ["allreduce", "--backend", "gloo"],
     "could not start /nonexistent/python3"),  # fmt: skip
]


@pytest.mark.parametrize("name, breaks, args, words", MACHINE, ids=[m[0] for m in MACHINE])
def test_machine_cannot_run_children(name, breaks, args, words, fake_nvml, clean_env,
                                     monkeypatch, tmp_path):  # fmt: skip
    import functools

    from dlcheck.bench import data

    fake_nvml("healthy_single")
    monkeypatch.setattr(data, "synthetic", functools.partial(data.synthetic, 200, 200))
    breaks(monkeypatch)
    outcome = run_inside(args, tmp_path / "case")
    judge(outcome, 1)
    assert words in outcome.stderr, outcome.stderr
