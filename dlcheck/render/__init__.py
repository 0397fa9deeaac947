"""Human views of reports: the only code that formats reports for a terminal.

Each command has a `render(report, out, **view)` in a module here; `cli.run` picks it. One rule
for all of them (render.table): on a terminal, tables fit its width by dropping whole columns,
never cutting a number, a field name or a fix; piped output is plain and unwrapped; NO_COLOR
(or a dumb terminal) turns colour off; fixes come after the tables, one per line, ready to paste.
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
    plain: bool  # a pipe or a file: plain text, every column, nothing wrapped
    width: int  # the terminal's columns (COLUMNS wins); irrelevant when plain
    color: bool = False

    @classmethod
    def for_stream(cls, stream: TextIO = sys.stdout) -> Output:
        tty = _isatty(stream)
        color = tty and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
        width = shutil.get_terminal_size((80, 24)).columns if tty else PIPE_WIDTH
        return cls(stream, not tty, max(20, width), color)

    def console(self):
        from rich.console import Console

        return Console(file=self.stream, width=self.width, no_color=not self.color,
                       color_system="auto" if self.color else None, highlight=False,
                       emoji=False, force_terminal=not self.plain,
                       soft_wrap=self.plain)  # fmt: skip

    def write(self, text: str) -> None:
        self.stream.write(text)

    def say(self, text: str, indent: str = "") -> None:
        """A message line, wrapped between words at the terminal's width (continuations
        indented two more); piped or redirected, one whole line."""
        if self.plain or len(indent) + len(text) <= self.width:
            self.write(f"{indent}{text}\n")
            return
        import textwrap

        self.write(textwrap.fill(text, self.width, initial_indent=indent,
                                 subsequent_indent=indent + "  ", break_long_words=False,
                                 break_on_hyphens=False) + "\n")  # fmt: skip

    def print(self, *objects, **options) -> None:
        """rich objects, drawn into a buffer and written once: rich turns a closed stdout into
        a SystemExit(1) of its own, where one plain write lets cli.run treat it like any
        closed pipe (quietly, with the report's exit code)."""
        console = self.console()
        with console.capture() as captured:
            console.print(*objects, **options)
        self.write(captured.get())

    def table(self, columns, rows, title: str | None = None, styles=None) -> None:
        """A table by the one rule (render.table)."""
        from dlcheck.render import table

        if self.plain:
            self.write(table.plain(columns, rows, title))
        else:
            self.print(table.terminal(columns, rows, self.width, title, styles))

    def fixes(self, items: list[tuple[str, str]]) -> None:
        """(label, fix) pairs after the tables: a comment line naming the problem, then the fix
        on one line of its own, never wrapped by us, so it can be copied whole."""
        if not items:
            return
        self.write("\nFixes (copy a line into a shell; # lines are notes):\n")
        for label, fix in items:
            self.write(f"# {label}\n{as_pasteable(fix)}\n")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (ValueError, OSError):
        return False


COMMANDS = ("sudo", "pip", "python", "export", "unset", "ls", "printf", "dlcheck", "nvidia-smi",
            "ansible-playbook", "docker", "echo", "sed", "systemctl", "apt-get", "journalctl",
            "dmesg", "CUDA_VISIBLE_DEVICES", "KERAS_BACKEND")  # fmt: skip


def as_pasteable(fix: str) -> str:
    """A fix as one line a shell accepts: commands as they are; advice in words becomes a
    `# ` comment, so pasting it does nothing harmful."""
    first = fix.split(maxsplit=1)[0] if fix.strip() else ""
    command = first.startswith(("/", "./", "~")) or first.split("=")[0] in COMMANDS
    command = command or first in COMMANDS or first.endswith(("python", "python3"))
    return fix if command else f"# {fix}"


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
