"""Progress of long work on stderr, for people: never on stdout, never in --json data.

RowProgress follows a benchmark run row by row: which child runs, its phase and epoch as the
child reports them (dlcheck.children.report_progress), elapsed time, and an ETA from the pace
of the epochs so far. On a terminal it is a rich progress display, one line per row; elsewhere
(a log, CI) it prints a line whenever the phase or epoch changes.
"""

from __future__ import annotations

import re
import sys
import time

_EPOCH = re.compile(r"epoch (\d+)/(\d+)")


class RowProgress:
    def __init__(self, stream=None, prefix: str = "bench"):
        self.stream = stream or sys.stderr
        self.prefix = prefix
        self.live = _isatty(self.stream)
        self.display = None  # rich.progress.Progress on a terminal
        self.task = None
        self.label = ""
        self.last: str | None = None
        self.first: tuple[str, int, float] | None = None  # phase, epoch, time of its first report
        self.started = time.monotonic()

    def __enter__(self) -> RowProgress:
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            console = Console(file=self.stream, highlight=False)
            self.display = Progress(
                TextColumn("{task.description}"), BarColumn(bar_width=20),
                TextColumn("{task.fields[phase]}"), TimeElapsedColumn(),
                TextColumn("{task.fields[eta]}"), console=console, transient=False,
            )  # fmt: skip
            self.display.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.display is not None:
            self.display.stop()

    def say(self, message: str) -> None:
        if self.display is not None:
            self.display.console.print(f"{self.prefix}: {message}", markup=False)
        else:
            self._write(f"{self.prefix}: {message}\n")

    def start(self, number: int, total: int, spec) -> None:
        self.label = f"[{number}/{total}] {spec.impl} on {spec.device}"
        self.started = time.monotonic()
        self.last, self.first = None, None
        if self.display is not None:
            self.task = self.display.add_task(self.label, total=None, phase="starting", eta="")
        else:
            self._line("starting")

    def tick(self, child) -> None:
        text = child.progress() or self.last
        if text is None or text == self.last:
            return
        self.last = text
        match = _EPOCH.search(text)
        phase = text.split(" epoch")[0]
        if match and (self.first is None or self.first[0] != phase):
            self.first = (phase, int(match.group(1)), time.monotonic())
        if self.display is not None:
            done, total = (int(match.group(1)), int(match.group(2))) if match else (0, None)
            self.display.update(self.task, phase=text, eta=self._eta(text), completed=done,
                                total=total)  # fmt: skip
        else:
            self._line(text)

    def done(self, row) -> None:
        elapsed = time.monotonic() - self.started
        text = f"failed: {row.error}" if row.error else "done"
        if self.display is not None:
            self.display.update(self.task, phase=text, eta="", total=1, completed=1)
        else:
            self._write(f"{self.prefix}: {self.label}: {text} ({elapsed:.0f} s)\n")

    def _line(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        eta = self._eta(text)
        timing = f"{elapsed:.0f} s" + (f", {eta}" if eta else "")
        self._write(f"{self.prefix}: {self.label}: {text} ({timing})\n")

    def _eta(self, text: str) -> str:
        match = _EPOCH.search(text)
        if not match or self.first is None:
            return ""
        done, total = int(match.group(1)), int(match.group(2))
        _, first_done, first_time = self.first
        if done <= first_done or done >= total:
            return ""
        per_epoch = (time.monotonic() - first_time) / (done - first_done)
        return f"about {per_epoch * (total - done):.0f} s left"

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr closed: progress is a courtesy
            pass


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False
