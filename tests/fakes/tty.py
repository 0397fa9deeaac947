"""Run a command with its stdout on a pseudo-terminal of a given width (rich's terminal path)."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def run_on_tty(args: list[str], columns: int, env: dict[str, str] | None = None,
               timeout: float = 120, cwd=None) -> tuple[str, int]:  # fmt: skip
    """(what the terminal showed, ANSI codes removed, exit code)."""
    leader, follower = pty.openpty()
    environment = {**os.environ, **(env or {}), "COLUMNS": str(columns), "LINES": "50",
                   "TERM": "xterm-256color"}  # fmt: skip
    environment.pop("NO_COLOR", None)
    process = subprocess.Popen(args, stdout=follower, stderr=subprocess.DEVNULL,
                               stdin=subprocess.DEVNULL, env=environment, cwd=cwd)  # fmt: skip
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    code = process.wait(timeout=timeout)
    text = b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")
    return ANSI.sub("", text), code


def dlcheck_on_tty(scenario: str, args: list[str], columns: int, **kw) -> tuple[str, int]:
    return run_on_tty([sys.executable, "-m", "tests.fakes.run_dlcheck", scenario, *args],
                      columns, **kw)  # fmt: skip
