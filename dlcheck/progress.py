"""Progress of long work on stderr, for people: never on stdout, never in --json data.

RowProgress follows a benchmark run row by row: which child runs, its phase and epoch as the
child reports them (dlcheck.children.report_progress), elapsed time, and an ETA for the
epochs. On a terminal it redraws one line; elsewhere it prints a line per change.
"""

from __future__ import annotations

import os
import re
import sys
import time

_EPOCH = re.compile(r"epoch (\d+)/(\d+)")


class RowProgress:
    def __init__(self, stream=None, prefix: str = "bench"):
        self.stream = stream or sys.stderr
        self.prefix = prefix
        self.live = _isatty(self.stream)
        self.label = ""
        self.last = None
        self.first: tuple[str, int, float] | None = None  # phase, epoch, time of its first report
        self.pending = False
        self.started = time.monotonic()

    def __enter__(self) -> RowProgress:
        return self

    def __exit__(self, *exc) -> None:
        self._end_line()

    def say(self, message: str) -> None:
        self._end_line()
        self._write(f"{self.prefix}: {message}\n")

    def start(self, number: int, total: int, spec) -> None:
        self._end_line()
        self.label = f"[{number}/{total}] {spec.impl} on {spec.device}"
        self.started = time.monotonic()
        self.last, self.first = None, None
        self._show("starting")

    def tick(self, child) -> None:
        text = child.progress() or self.last
        if text != self.last:
            self.last = text
            self._note_epoch(text)
            self._show(text)
        elif self.live:
            self._show(text or "starting")

    def _note_epoch(self, text: str) -> None:
        """Remember the first epoch report of each phase: the ETA comes from the pace since."""
        match = _EPOCH.search(text)
        phase = text.split(" epoch")[0]
        if match and (self.first is None or self.first[0] != phase):
            self.first = (phase, int(match.group(1)), time.monotonic())

    def done(self, row) -> None:
        elapsed = time.monotonic() - self.started
        self._show(f"{'failed: ' + row.error if row.error else 'done'} ({elapsed:.0f} s)")
        self._end_line()

    def _show(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        line = f"{self.prefix}: {self.label}: {text}  {elapsed:.0f} s{self._eta(text)}"
        if self.live:  # redrawn in place: it must fit one terminal line, or redraws pile up
            self._write("\r\x1b[2K" + line[: _columns(self.stream) - 1])
            self.pending = True
        else:
            self._write(line + "\n")

    def _eta(self, text: str) -> str:
        match = _EPOCH.search(text)
        if not match or self.first is None:
            return ""
        done, total = int(match.group(1)), int(match.group(2))
        _, first_done, first_time = self.first
        if done <= first_done or done >= total:
            return ""
        per_epoch = (time.monotonic() - first_time) / (done - first_done)
        return f", about {per_epoch * (total - done):.0f} s left"

    def _end_line(self) -> None:
        if self.live and self.pending:
            self._write("\n")
            self.pending = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed: progress is a courtesy
            pass


def _columns(stream) -> int:
    try:
        return max(20, os.get_terminal_size(stream.fileno()).columns)
    except (AttributeError, OSError, ValueError):
        return 80


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False
