"""Human views of reports: the only code that formats reports for a terminal.

Each command has a `render(report, out, **view)` in a module here; `cli.main` picks it. Plain
text when stdout is not a terminal or NO_COLOR is set; rich only where it is wanted.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from typing import Any, TextIO

STATUS_STYLE = {"PASS": "green", "INFO": "cyan", "SKIP": "dim", "WARN": "yellow", "FAIL": "red"}
PIPE_WIDTH = 160  # plain output to a pipe or file: wide enough that tables do not wrap


@dataclass(frozen=True)
class Output:
    stream: TextIO
    plain: bool  # no colour, no rich markup: a pipe, a file, or NO_COLOR
    width: int

    @classmethod
    def for_stream(cls, stream: TextIO = sys.stdout) -> Output:
        tty = _isatty(stream)
        plain = bool(os.environ.get("NO_COLOR")) or not tty
        width = shutil.get_terminal_size((80, 24)).columns if tty else PIPE_WIDTH
        return cls(stream, plain, max(20, width))

    def console(self):
        from rich.console import Console

        return Console(file=self.stream, width=self.width, no_color=self.plain,
                       highlight=False, emoji=False,
                       force_terminal=None if not self.plain else False)  # fmt: skip

    def write(self, text: str) -> None:
        self.stream.write(text)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False


def escape(text: Any) -> str:
    """Text for rich markup: brackets escaped, so '[/]' in a name cannot break or hide output."""
    from rich.markup import escape as rich_escape

    return rich_escape(str(text))


def na(value: Any, unit: str = "") -> str:
    if value is None:
        return "N/A"
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return f"{value}{unit}"
