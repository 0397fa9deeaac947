"""What every subcommand shares: turn an unexpected exception into one line and exit 4."""

from __future__ import annotations

import sys
import traceback

import click

from dlcheck.models import ExitCode


def guarded(debug: bool, function, *args, **kwargs) -> ExitCode:
    try:
        return function(*args, **kwargs)
    except (click.ClickException, click.exceptions.Exit, KeyboardInterrupt):
        raise
    except Exception as error:  # a bug in dlcheck: one line, unless --debug asks for more
        if debug:
            traceback.print_exc()
        message = " ".join(str(error).split()) or "no detail"
        click.echo(
            f"dlcheck: internal error: {type(error).__name__}: {message} "
            "(rerun with --debug for the traceback; please report it)",
            err=True,
        )
        sys.stdout.flush()
        return ExitCode.INTERNAL
