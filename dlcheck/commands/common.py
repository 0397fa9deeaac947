"""What every subcommand shares: the --json/--debug options, the Invocation its callback returns
(the Report plus how to show it), and option types that refuse nonsense numbers."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import click

from dlcheck.models import Report


@dataclass(frozen=True)
class Repeat:
    """Render again every `seconds` with a fresh report from `rebuild()` (dlcheck gpu -l)."""

    seconds: float
    rebuild: Callable[[], Report]


@dataclass(frozen=True)
class Invocation:
    """What a command callback hands to cli.run: the report and how to render it."""

    report: Report
    as_json: bool
    renderer: str  # "module:function" taking (report, out, **view); imported for humans only
    view: dict | None = None  # options of the human view only (e.g. verbose)
    repeat: Repeat | None = None


def command(name: str, renderer: str, **settings) -> Callable:
    """Make `function(**options) -> Report | (Report, view options[, Repeat])` a dlcheck
    subcommand.

    Adds --json and --debug; --debug itself is read by cli.main (it must work even when
    option parsing is what fails)."""

    def decorate(function: Callable) -> click.Command:
        @functools.wraps(function)
        def callback(as_json: bool, debug: bool, **options) -> Invocation:
            result = function(**options)
            report, view, repeat = (*result, None, None)[:3] if isinstance(result, tuple) else (
                result, None, None)  # fmt: skip
            return Invocation(report, as_json, renderer, view, repeat)

        callback = click.option(
            "--debug", is_flag=True, help="Show a traceback on internal errors."
        )(callback)
        callback = click.option(
            "--json", "as_json", is_flag=True, help="Print the versioned JSON envelope."
        )(callback)
        return click.command(name, **settings)(callback)

    return decorate


class FiniteFloat(click.FloatRange):
    """A float in [min, max] that is a real number: nan and inf are refused at parse time."""

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class UsablePath(click.Path):
    """A path the file system can at least look up: a name too long for it (ENAMETOOLONG) or a
    folder that cannot be searched is a usage error now, not an OSError later. Whether it
    exists is still the command's business."""

    def convert(self, value, param, ctx):
        path = super().convert(value, param, ctx)
        try:
            os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            pass
        except OSError as error:
            from dlcheck.text import clean

            self.fail(f"{clean(os.fsdecode(value), 60)}: {error.strerror}", param, ctx)
        return path


def nvml_timeout_option(function: Callable) -> Callable:
    return click.option(
        "--nvml-timeout",
        type=FiniteFloat(min=0.1, max=3600),
        default=None,
        envvar="DLCHECK_NVML_TIMEOUT",
        help="Seconds one NVML call may take before the driver is reported as hung "
        "[default: 10; env DLCHECK_NVML_TIMEOUT].",
    )(function)


def show_ids_option(function: Callable) -> Callable:
    return click.option(
        "--show-ids",
        is_flag=True,
        envvar="DLCHECK_SHOW_IDS",
        help="Show GPU UUIDs and serials (masked by default) [env DLCHECK_SHOW_IDS].",
    )(function)


def apply_nvml_timeout(seconds: float | None) -> None:
    from dlcheck import nvml

    nvml.set_timeout(seconds)


class Failure(click.ClickException):
    """The command cannot do its job for a reason outside dlcheck (bad data file, a full disk):
    one line on stderr, no traceback, and this exit code (default: NOT_READY)."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"dlcheck: {self.format_message()}", err=True)
