"""The one way dlcheck runs a child process: framework probes, benchmark rows, all-reduce ranks.

Every child gets its own process group (so a kill takes whatever it started), a deadline, one
kill policy (SIGTERM to the group, a grace period, then SIGKILL), its output in files in a
scratch folder (never a pipe that can fill up), a result document, and a stderr tail. Every live
child and scratch folder is registered here, so `cleanup()` (called by the CLI on Ctrl-C,
SIGTERM and exit) leaves no process and no temp file behind. A child that loses its parent
without that cleanup (the parent was SIGKILLed) dies too: see `bind_to_parent()`.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlcheck.models import MachineError

GRACE_S = 2.0  # SIGTERM -> SIGKILL
PACKAGE_ROOT = str(Path(__file__).resolve().parents[1])  # the folder holding `dlcheck/`
TAIL_CHARS = 2000
PARENT_ENV = "DLCHECK_PARENT_PID"
PROGRESS_ENV = "DLCHECK_PROGRESS"
DEBUG_ENV = "DLCHECK_DEBUG"  # set by the CLI for --debug
TRACEBACK = "Traceback (most recent call last)"

_lock = threading.Lock()
_live: dict[int, subprocess.Popen] = {}
_scratch: set[str] = set()


class ChildError(MachineError):
    """A child could not be started at all (bad interpreter, no space for its files)."""


@dataclass
class ChildResult:
    """How one child ended. `status`: ok (exit 0) | failed (exit != 0) | crashed (a signal) |
    timeout (killed at the deadline)."""

    status: str
    returncode: int | None
    seconds: float
    stdout: str  # what it printed, when stdout was captured ("" otherwise)
    stderr_tail: str | None
    document: Any  # the parsed result document, or None
    error: str | None  # one line when status is not ok, or the document was unreadable

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.error is None


class Child:
    """A started child. Use `wait()`; it always ends with the process group gone."""

    def __init__(self, process: subprocess.Popen, out: Path, err: Path, result: Path | None,
                 progress: Path, started: float):  # fmt: skip
        self.process, self.out, self.err, self.result = process, out, err, result
        self.progress_file, self.started = progress, started

    def progress(self) -> str | None:
        """The last line the child gave to report_progress(), or None."""
        try:
            with open(self.progress_file, "rb") as handle:
                handle.seek(max(0, os.fstat(handle.fileno()).st_size - 512))
                lines = handle.read().decode("utf-8", errors="replace").splitlines()
        except OSError:
            return None
        return lines[-1] if lines else None

    @property
    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> int | None:
        return self.process.poll()

    def wait(self, deadline: float, on_tick: Callable[[], None] | None = None,
             tick_s: float = 0.2) -> ChildResult:  # fmt: skip
        """Wait until the child exits or `deadline` (time.monotonic()) passes, then kill its
        group either way. `on_tick` runs every `tick_s` while waiting (progress displays)."""
        timed_out = False
        try:
            while self.process.poll() is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    timed_out = True
                    break
                try:
                    self.process.wait(timeout=min(tick_s, left))
                except subprocess.TimeoutExpired:
                    pass
                if on_tick is not None:
                    on_tick()
        finally:
            _end(self.process)  # also on Ctrl-C: the exception goes on, the child does not
        return self._result(timed_out, time.monotonic() - self.started)

    def _result(self, timed_out: bool, seconds: float) -> ChildResult:
        code = self.process.returncode
        stdout = _read(self.out)
        tail = _without_tracebacks(_read(self.err))[-TAIL_CHARS:] or None
        document, error = None, None
        if timed_out:
            status = "timeout"
            error = f"did not finish within the time limit ({seconds:.0f} s) and was stopped"
        elif code is not None and code < 0:
            status = "crashed"
            name = _signal_name(-code)
            hint = " (out of memory?)" if -code == signal.SIGKILL else ""
            error = f"killed by {name}{hint}"
        else:
            status = "ok" if code == 0 else "failed"
            document, problem = _document(self.result, stdout)
            if code != 0:
                error = f"exited with code {code}"
            elif problem:
                error = problem
        if error and tail:
            last = [line for line in tail.splitlines() if line.strip()]
            if last:
                error += f": {last[-1].strip()[:200]}"
        return ChildResult(status, code, round(seconds, 3), stdout, tail, document, error)


def start(argv: list[str], *, workdir: Path, name: str, env: dict[str, str] | None = None,
          result_file: bool = False, merge_stderr: bool = False) -> Child:  # fmt: skip
    """Start `argv` with its files under `workdir` (a scratch() folder), named after `name`.

    The child reads nothing (stdin is /dev/null), writes stdout to NAME.out and stderr to
    NAME.err (or both to NAME.err with `merge_stderr`). With `result_file`, the child is
    given RESULT path as DLCHECK_RESULT in its environment and its document is read from there;
    otherwise the last line of its stdout is the document.
    """
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    progress = workdir / f"{name}.progress"
    result = workdir / f"{name}.result.json" if result_file else None
    child_env = dict(os.environ if env is None else env)
    child_env[PARENT_ENV] = str(os.getpid())
    child_env[PROGRESS_ENV] = str(progress)
    # `python -m dlcheck...` children find this dlcheck, installed or not.
    path = [PACKAGE_ROOT, *filter(None, child_env.get("PYTHONPATH", "").split(os.pathsep))]
    child_env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
    if result is not None:
        result.unlink(missing_ok=True)
        child_env["DLCHECK_RESULT"] = str(result)
    try:
        with open(out, "wb") as stdout, open(err, "wb") as stderr, _signals_deferred():
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=stderr if merge_stderr else stdout,
                stderr=stderr,
                env=child_env,
                cwd=workdir,
                start_new_session=True,  # its own group: a kill takes its children too
            )
            with _lock:
                _live[process.pid] = process
    except OSError as error:
        raise ChildError(f"could not start {argv[0]}: {error.strerror or error}") from None
    return Child(process, out, err, result, progress, time.monotonic())


def run(argv: list[str], *, workdir: Path, name: str, timeout: float,
        env: dict[str, str] | None = None, result_file: bool = False,
        merge_stderr: bool = False, on_tick: Callable[[], None] | None = None,
        on_start: Callable[[Child], None] | None = None) -> ChildResult:  # fmt: skip
    """start() and wait() in one: the usual case."""
    child = start(argv, workdir=workdir, name=name, env=env, result_file=result_file,
                  merge_stderr=merge_stderr)  # fmt: skip
    if on_start is not None:
        on_start(child)
    return child.wait(time.monotonic() + timeout, on_tick)


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A temp folder for children's files, removed on every exit path (cleanup() included)."""
    try:
        with _signals_deferred():
            path = tempfile.mkdtemp(prefix=f"dlcheck-{prefix}-")
            with _lock:
                _scratch.add(path)
    except OSError as error:
        raise ChildError(
            f"cannot create a temp folder in {tempfile.gettempdir()}: {error.strerror or error}"
            " (set TMPDIR to a writable folder with free space)"
        ) from None
    try:
        yield Path(path)
    finally:
        shutil.rmtree(path, ignore_errors=True)
        with _lock:
            _scratch.discard(path)


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until a started child or a new temp folder is registered: raised
    in between (inside Popen, after the fork), they would leave a child that cleanup() does not
    know of (battery case check-probe-ignores-sigterm-SIGINT left its second probe running).
    The signal is handled as soon as the registration is done."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    wanted = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in wanted}  # fmt: skip
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if caught:
            handler = previous[caught[0]]
            if callable(handler):
                handler(caught[0], None)  # KeyboardInterrupt, or the CLI's Terminated
            elif handler == signal.SIG_DFL:
                os.kill(os.getpid(), caught[0])


def cleanup() -> None:
    """Kill every live child's group and remove every scratch folder (idempotent)."""
    with _lock:
        processes = list(_live.values())
        folders = list(_scratch)
    for process in processes:
        _end(process)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    with _lock:
        _scratch.difference_update(folders)


def live_count() -> int:
    with _lock:
        return len(_live)


def bind_to_parent() -> None:
    """Called first thing in a child: die when the dlcheck parent dies, even by SIGKILL.

    Linux's PR_SET_PDEATHSIG; if the parent is already gone (the race before this call),
    exit now. Elsewhere a no-op: the parent's cleanup() still covers every normal exit.
    """
    parent = os.environ.get(PARENT_ENV)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if parent and parent.isdigit() and os.getppid() != int(parent):
        os._exit(1)


def report_progress(text: str) -> None:
    """Called in a child: one line of progress for the parent's display (no-op elsewhere)."""
    path = os.environ.get(PROGRESS_ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(" ".join(text.split()) + "\n")
    except OSError:  # progress is a courtesy; the run goes on without it
        pass


def _end(process: subprocess.Popen) -> None:
    """The kill policy: TERM the group, wait GRACE_S, KILL the group; reap. Also run after a
    normal exit, for whatever the child left running in its group."""
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(process.pid, signal.SIGKILL)
    try:
        process.wait(timeout=GRACE_S)
    except subprocess.TimeoutExpired:  # unkillable (stuck in the kernel): nothing more to do
        pass
    with _lock:
        _live.pop(process.pid, None)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _without_tracebacks(text: str) -> str:
    """A child's stderr with each Python traceback cut to its last line (what went wrong):
    the frames are dlcheck's or a framework's insides, shown only with --debug
    (DLCHECK_DEBUG), as for dlcheck's own tracebacks."""
    if os.environ.get(DEBUG_ENV) or TRACEBACK not in text:
        return text
    kept, in_frames = [], False
    for line in text.splitlines():
        if line.startswith(TRACEBACK):
            in_frames = True
        elif not (in_frames and (line[:1].isspace() or not line.strip())):
            in_frames = False
            kept.append(line)
    return "\n".join(kept)


def _document(result: Path | None, stdout: str) -> tuple[Any, str | None]:
    """(document, problem): the result file's JSON, or the last stdout line's."""
    if result is not None:
        if not result.is_file():
            return None, "finished without writing its result"
        text = _read(result)
    else:
        lines = [line for line in stdout.splitlines() if line.strip()]
        if not lines:
            return None, "finished without printing a result"
        text = lines[-1]
    try:
        return json.loads(text), None
    except ValueError:
        return None, "wrote an unreadable result"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


atexit.register(cleanup)
