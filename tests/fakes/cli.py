"""Run `dlcheck ARGS` in this process, as the console script would, with output captured."""

from __future__ import annotations

from dataclasses import dataclass

from click.testing import CliRunner

from dlcheck import cli


@dataclass
class Ran:
    stdout: str
    stderr: str
    code: int


def invoke(args: list[str]) -> Ran:
    """Parse, build, render, clean up and return the exit code: cli.run, stdout/stderr captured
    (not a terminal, so the plain view unless a test says otherwise)."""
    with CliRunner().isolation() as (out, err, *_):
        code = cli.run(list(args))
    return Ran(out.getvalue().decode(), err.getvalue().decode(), code)
