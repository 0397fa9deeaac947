"""Run one bad-input case of the battery and judge it by the same rules as every other case.

A case runs either in this process (`run_inside`: tests.fakes.cli.invoke, fast) or as a real
`dlcheck` process with the fake NVML (`run_process`: tests.fakes.run_dlcheck), each with its own
empty TMPDIR. `judge()` then asserts what issue 10 asks of every case, and counts it:

  no Python traceback unless --debug     the documented exit code (given by the case)
  done within CASE_LIMIT_S (a hang is a failure)
  no process left (everything whose environment says DLCHECK_PARENT_PID=<dlcheck's pid>,
  and the process groups they were in)   no file left in the case's TMPDIR
  --json output valid against its schema (jsonschema's Draft7Validator, the reference one)
  at most one line on stderr for an error (progress lines and click's usage lines aside)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dlcheck import children, schema

REPO = Path(__file__).resolve().parents[2]
CASE_LIMIT_S = 20.0  # issue 10: every case bounded at 20 s
SIGNAL_EXIT_S = 5.0  # a signal to exit: "within a few seconds" (the kill grace is 2 s)
SETTLE_S = 1.0  # after exit, time for SIGKILLed grandchildren to be torn down by the kernel
TRACEBACK = "Traceback (most recent call last)"
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith(("DLCHECK_", "COLUMNS"))}
BASE_ENV.update(PYTHONPATH=str(REPO), NO_COLOR="", PYTHONDONTWRITEBYTECODE="1")
# Lines on stderr that are progress, not errors: bench's row progress and data notes, check's
# probing line, click's usage preamble before its one "Error: ..." line.
PROGRESS = re.compile(r"^(bench: |Probing frameworks|Usage: |Try '|\s*$)")
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\r")

COUNTS: Counter = Counter()  # cases, tracebacks, hangs, orphans, leftover_temp_files, ...
SLOWEST: list = []  # the 3 slowest cases: [seconds, command] (the headroom under 20 s)
_counts_lock = threading.Lock()


@dataclass
class Outcome:
    """What one case did."""

    args: list[str]
    code: int | None  # None: it hung and was killed at CASE_LIMIT_S
    stdout: str
    stderr: str
    seconds: float
    orphans: list[str] = field(default_factory=list)  # "pid (command line)" left running
    leftovers: list[str] = field(default_factory=list)  # paths left in the case's TMPDIR
    signal_to_exit_s: float | None = None  # signal cases: from the signal to the exit
    phase_missed: bool = False  # signal cases: the phase to signal at never came
    stdout_captured: bool = True  # False: stdout was closed on purpose (nothing to validate)

    @property
    def hung(self) -> bool:
        return self.code is None


# ------------------------------------------------------------------ judging


def judge(outcome: Outcome, code: int | tuple[int, ...], schema_name: str | None = None,
          debug: bool = False, max_error_lines: int = 1) -> None:  # fmt: skip
    """Count the case, then assert every rule. `code`: the documented exit code(s) for it."""
    problems = _problems(outcome, schema_name, debug, max_error_lines)
    missed = "(the phase to send the signal at never came)\n" if outcome.phase_missed else ""
    command = " ".join(_short(a) for a in outcome.args)
    # no lone surrogates (non-UTF-8 arguments): xdist sends SLOWEST to the controller as UTF-8,
    # and a worker whose output cannot be sent loses its counts with it
    shown = f"dlcheck {command}"[:100].encode(errors="backslashreplace").decode()
    with _counts_lock:
        COUNTS["cases"] += 1
        COUNTS["tracebacks"] += "traceback" in problems
        COUNTS["hangs"] += outcome.hung
        COUNTS["orphans"] += len(outcome.orphans)
        COUNTS["leftover_temp_files"] += len(outcome.leftovers)
        COUNTS["schema_invalid_outputs"] += "schema" in problems
        COUNTS["wrong_exit_codes"] += outcome.code not in _codes(code)
        COUNTS["over_time"] += outcome.seconds > CASE_LIMIT_S
        COUNTS["multi_line_errors"] += "stderr" in problems
        SLOWEST.append([round(outcome.seconds, 1), shown])
        SLOWEST[:] = sorted(SLOWEST, reverse=True)[:3]
    context = (f"{missed}dlcheck {command}\n--- exit {outcome.code} in {outcome.seconds:.1f} s\n"
               f"--- stdout\n{outcome.stdout[-3000:]}\n--- stderr\n{outcome.stderr[-3000:]}")
    if outcome.hung:
        pytest.fail(f"hung (killed after {CASE_LIMIT_S} s)\n{context}", pytrace=False)
    if outcome.code not in _codes(code):
        pytest.fail(f"exit {outcome.code}, documented {code}\n{context}", pytrace=False)
    if problems:
        pytest.fail(f"{problems}\n{context}", pytrace=False)
    if outcome.seconds > CASE_LIMIT_S:
        pytest.fail(f"took {outcome.seconds:.1f} s\n{context}", pytrace=False)


def _codes(code) -> tuple[int, ...]:
    return code if isinstance(code, tuple) else (code,)


def _problems(outcome: Outcome, schema_name: str | None, debug: bool,
              max_error_lines: int) -> dict[str, str]:  # fmt: skip
    problems = {}
    both = outcome.stdout + outcome.stderr
    if TRACEBACK in both and not debug:
        problems["traceback"] = "a Python traceback without --debug"
    if outcome.orphans:
        problems["orphans"] = f"processes left: {outcome.orphans}"
    if outcome.leftovers:
        problems["leftovers"] = f"temp files left: {outcome.leftovers[:10]}"
    if schema_name and outcome.stdout.strip():
        problem = schema_problem(schema_name, outcome.stdout)
        if problem:
            problems["schema"] = problem
    elif schema_name and outcome.code == 0 and outcome.stdout_captured:
        problems["schema"] = "--json printed nothing on success"
    errors = error_lines(outcome.stderr)
    if not debug and len(errors) > max_error_lines:
        problems["stderr"] = f"{len(errors)} error lines on stderr: {errors[:5]}"
    return problems


def error_lines(stderr: str) -> list[str]:
    return [line for line in ANSI.sub("", stderr).splitlines() if not PROGRESS.match(line)]


def schema_problem(name: str, text: str) -> str | None:
    """Why `text` is not one JSON document valid against dlcheck/schemas/<name>, or None."""
    import jsonschema

    try:
        body = json.loads(text)
    except ValueError as error:
        return f"--json output is not JSON: {error}"
    errors = sorted(jsonschema.Draft7Validator(schema.load(name)).iter_errors(body), key=str)
    if errors:
        first = errors[0]
        return f"{name} schema: {'/'.join(map(str, first.absolute_path))}: {first.message[:300]}"
    return None


def _short(arg: str) -> str:
    return arg if len(arg) < 80 else f"{arg[:40]}...({len(arg)} chars)"


# ------------------------------------------------------------------ in this process


class _CaseHung(BaseException):
    """Raised by the alarm in an in-process case; not an Exception, so cli.run lets it through
    (after its cleanup)."""


def run_inside(args: list[str], tmp: Path, environ: dict[str, str] | None = None) -> Outcome:
    """`dlcheck ARGS` through cli.run in this process, TMPDIR its own, bounded by an alarm."""
    from tests.fakes.cli import invoke

    tmpdir = tmp / "tmp"
    tmpdir.mkdir(parents=True)
    saved_tempdir, saved_env = tempfile.tempdir, dict(os.environ)
    tempfile.tempdir = str(tmpdir)
    os.environ.update(environ or {})

    def alarm(signum, frame):
        raise _CaseHung()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, CASE_LIMIT_S)
    started = time.monotonic()
    try:
        ran = invoke(list(args))
        code, stdout, stderr = ran.code, ran.stdout, ran.stderr
    except _CaseHung:
        code, stdout, stderr = None, "", ""
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        tempfile.tempdir = saved_tempdir
        os.environ.clear()
        os.environ.update(saved_env)
    seconds = time.monotonic() - started
    orphans = _wait_gone(os.getpid(), {})
    return Outcome(list(args), code, stdout, stderr, seconds, orphans, _leftovers(tmpdir))


# ------------------------------------------------------------------ as a real process


@dataclass
class Stream:
    """How the case's stdout or stderr is connected."""

    # file | reader_gone (a pipe whose reader has left) | closed (fd closed) | pty (stderr on
    # the same terminal as stdout, with columns)
    kind: str = "file"


@dataclass
class Signal:
    """Send `signum` once `phase(watch)` is true (a child is running, a phase mark exists)."""

    signum: int
    phase: Callable[[Watch], bool]
    again_after_s: float | None = None  # a second one this long after the first (impatience)
    # "thread": to a thread other than the main one (tgkill), as the kernel may pick the thread
    # stuck in the driver for a process-directed signal
    to: str = "process"


class Watch:
    """Watches a running dlcheck: its descendants (by DLCHECK_PARENT_PID in their environment)
    and their process groups, sampled every SAMPLE_S while it runs (by the one _Sampler)."""

    def __init__(self, pid: int, marks: Path):
        self.pid, self.marks = pid, marks
        self.seen: dict[int, tuple[int, str]] = {}  # pid -> (process group, command line)
        _SAMPLER.add(self)

    def children(self) -> int:
        # list() first: the sampler adds to `seen` meanwhile, and a dict that grows during the
        # iteration raises (seen once in CI: "dictionary changed size during iteration")
        return len([p for p in list(self.seen) if _alive(p)])

    def marked(self, phase: str) -> bool:
        return (self.marks / phase).exists()

    def stop(self) -> dict[int, tuple[int, str]]:
        _SAMPLER.remove(self)
        self.seen.update(descendants(self.pid))
        return self.seen


class _Sampler:
    """One thread that reads /proc for every running case at once: a pass costs ~10 ms of CPU
    with 366 processes on the machine (the converges' hosts add more). A thread per case every
    50 ms, 6 cases watched for 10 s took 111% of a core; this sampler, 15%. The thread ends
    when no case runs, and paces itself with an Event, not time.sleep, which tests patch."""

    def __init__(self):
        self._watches: dict[int, Watch] = {}
        self._lock = threading.Lock()
        self._running = False
        self._pace = threading.Event()  # never set: wait(SAMPLE_S) is a sleep

    def add(self, watch: Watch) -> None:
        with self._lock:
            self._watches[watch.pid] = watch
            if not self._running:
                self._running = True
                threading.Thread(target=self._loop, daemon=True, name="battery-sampler").start()

    def remove(self, watch: Watch) -> None:
        with self._lock:
            self._watches.pop(watch.pid, None)

    def _loop(self) -> None:
        while True:
            self._pace.wait(SAMPLE_S)
            with self._lock:
                watches = dict(self._watches)
                if not watches:
                    self._running = False
                    return
            for parent, found in _descendants_of(set(watches)).items():
                watches[parent].seen.update(found)


SAMPLE_S = 0.1
_SAMPLER = _Sampler()


def run_process(args: list[str], tmp: Path, *, scenario: str = "healthy_single",
                env: dict[str, str] | None = None, stdout: Stream | None = None,
                stderr: Stream | None = None, send: Signal | None = None,
                columns: int | None = None) -> Outcome:  # fmt: skip
    """`dlcheck ARGS` as a real process (tests.fakes.run_dlcheck SCENARIO), its own TMPDIR and
    process group, killed at CASE_LIMIT_S. `columns`: stdout is a terminal (a pty) that wide."""
    tmp.mkdir(parents=True, exist_ok=True)
    tmpdir, fallback, marks = tmp / "tmp", tmp / "tmp-fallback", tmp / "marks"
    for folder in (tmpdir, fallback, marks):
        folder.mkdir(exist_ok=True)
    # TEMP and TMP: where Python's tempfile goes when TMPDIR is unusable (then /tmp)
    case_env = {**BASE_ENV, "TMPDIR": str(tmpdir), "TEMP": str(fallback), "TMP": str(fallback),
                "DLCHECK_TEST_MARKS": str(marks), **(env or {})}  # fmt: skip
    if columns:
        case_env.update(COLUMNS=str(columns), LINES="50", TERM="xterm-256color")
    argv = [sys.executable, "-m", "tests.fakes.run_dlcheck", scenario, *args]
    out_file, err_file = tmp / "stdout", tmp / "stderr"
    with open(out_file, "wb") as out, open(err_file, "wb") as err:
        streams = _Streams(out, err, stdout or Stream(), stderr or Stream(), columns)
        started = time.monotonic()
        process = subprocess.Popen(streams.wrap(argv), stdin=subprocess.DEVNULL, env=case_env,
                                   cwd=REPO, start_new_session=True, **streams.popen)
        streams.started()
        watch = Watch(process.pid, marks)
        signalled = _send_at_phase(process, watch, send, started) if send else None
        try:
            code = process.wait(timeout=max(0.1, started + CASE_LIMIT_S - time.monotonic()))
        except subprocess.TimeoutExpired:  # a hang: SIGTERM (dlcheck cleans up), then SIGKILL
            code = None
            process.terminate()
            try:
                process.wait(timeout=SIGNAL_EXIT_S)
            except subprocess.TimeoutExpired:
                _kill_group(process.pid)
                process.wait()
        ended = time.monotonic()
        seen = watch.stop()
        streams.finish()
    orphans = _wait_gone(process.pid, seen)
    pty_text = streams.pty_text()
    return Outcome(
        list(args),
        _exit_code(code),
        pty_text if pty_text is not None else out_file.read_text(errors="replace"),
        err_file.read_text(errors="replace"),
        ended - started,
        orphans,
        _leftovers(Path(case_env["TMPDIR"])) + _leftovers(fallback),
        ended - signalled if signalled else None,
        bool(send) and not signalled,
        (stdout or Stream()).kind in ("file", "pty") or bool(columns),
    )


class _Streams:
    """stdout/stderr wiring: files, a pipe whose reader left, a closed descriptor, or a pty."""

    def __init__(self, out, err, stdout: Stream, stderr: Stream, columns: int | None):
        self.popen, self._close_after_start = {}, []
        self._master, self._pty_chunks, self._reader = None, [], None
        self.closed: list[str] = []  # descriptors not open at all when dlcheck starts
        if columns:  # stdout is a terminal; stderr too with Stream("pty")
            self._master, slave = pty.openpty()
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
            self.popen["stdout"] = slave
            self._close_after_start.append(slave)
            self._reader = threading.Thread(target=self._read_pty, daemon=True)
        for name, stream, file in (("stdout", stdout, out), ("stderr", stderr, err)):
            if stream.kind == "pty":
                self.popen[name] = self.popen["stdout"]
            elif stream.kind == "file" and name not in self.popen:
                self.popen[name] = file
            elif stream.kind == "reader_gone":
                read_end, write_end = os.pipe()
                os.close(read_end)  # like `| head -c0`: the reader is gone before any write
                self.popen[name] = write_end
                self._close_after_start.append(write_end)
            elif stream.kind == "closed":
                self.closed.append("1" if name == "stdout" else "2")

    def wrap(self, argv: list[str]) -> list[str]:
        """`>&-` / `2>&-` as a shell does it: the descriptor closed, then exec dlcheck."""
        if not self.closed:
            return argv
        closes = " ".join(f"{fd}>&-" for fd in self.closed)
        return ["sh", "-c", f'exec "$@" {closes}', "sh", *argv]

    def started(self):
        for fd in self._close_after_start:
            os.close(fd)
        if self._reader:
            self._reader.start()

    def _read_pty(self):
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError as error:  # EIO: the terminal's other side is closed
                if error.errno == errno.EIO:
                    break
                raise
            if not chunk:
                break
            self._pty_chunks.append(chunk)

    def finish(self):
        if self._reader:
            self._reader.join(timeout=5)
            os.close(self._master)

    def pty_text(self) -> str | None:
        if self._master is None:
            return None
        return b"".join(self._pty_chunks).decode(errors="replace")


def _send_at_phase(process, watch: Watch, send: Signal, started: float) -> float | None:
    while time.monotonic() < started + CASE_LIMIT_S - SIGNAL_EXIT_S:
        if process.poll() is not None:
            return None  # it ended before the phase: the case fails on its exit code
        if send.phase(watch):
            sent = time.monotonic()
            _send(process, send.signum, send.to)
            if send.again_after_s is not None:
                time.sleep(send.again_after_s)
                _send(process, send.signum, send.to)
            return sent
        time.sleep(0.02)
    return None


def _send(process, signum: int, to: str = "process") -> None:
    try:
        if to == "thread":
            import ctypes

            threads = [int(t) for t in os.listdir(f"/proc/{process.pid}/task")]
            other = next(t for t in threads if t != process.pid)
            ctypes.CDLL(None, use_errno=True).syscall(_SYS_TGKILL, process.pid, other, signum)
        elif signum == signal.SIGINT:  # a terminal's Ctrl-C goes to the foreground group
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signum)
    except (ProcessLookupError, FileNotFoundError, StopIteration):  # it already ended
        pass


_SYS_TGKILL = {"x86_64": 234, "aarch64": 131}.get(os.uname().machine, 234)


def _exit_code(code: int | None) -> int | None:
    if code is None:
        return None
    return 128 - code if code < 0 else code  # killed by a signal: the shell's 128 + N


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ------------------------------------------------------------------ processes and temp files


def descendants(parent_pid: int) -> dict[int, tuple[int, str]]:
    """Every live process whose environment says DLCHECK_PARENT_PID=parent_pid (dlcheck's
    children and whatever they started): pid -> (process group, command line)."""
    return _descendants_of({parent_pid}).get(parent_pid, {})


_MARKER = re.compile(rb"(?:^|\0)" + re.escape(children.PARENT_ENV.encode()) + rb"=(\d+)\0")


def _descendants_of(parents: set[int]) -> dict[int, dict[int, tuple[int, str]]]:
    """descendants() of several dlcheck processes in one pass over /proc: parent -> found."""
    found: dict[int, dict[int, tuple[int, str]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            match = _MARKER.search(Path(f"/proc/{entry}/environ").read_bytes())
            parent = int(match.group(1)) if match else None
            if parent not in parents:
                continue
            command = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ")
            found.setdefault(parent, {})[int(entry)] = (
                os.getpgid(int(entry)), command.decode(errors="replace")[:120])
        except (OSError, ProcessLookupError):
            continue
    return found


def _alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a zombie has exited)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    return fields[0] != "Z"


def _group_alive(pgid: int) -> bool:
    """Any live (not zombie) process left in process group `pgid`."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid and _alive(int(entry)):
                    return True
            except ProcessLookupError:
                continue
    return False


def _wait_gone(parent_pid: int, seen: dict[int, tuple[int, str]]) -> list[str]:
    """Processes still running SETTLE_S after dlcheck exited: any that carry its pid in
    DLCHECK_PARENT_PID, and any left in the process groups its children had. Counted, then
    killed: a failed case must not leave them to the next one."""
    deadline = time.monotonic() + SETTLE_S
    while True:
        seen = {**seen, **descendants(parent_pid)}
        alive = [pid for pid in seen if _alive(pid)]
        groups = {pgid for pgid, _ in seen.values() if pgid not in (parent_pid, os.getpgid(0))}
        left_groups = [g for g in groups if _group_alive(g)]
        if not (alive or left_groups) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for group in left_groups:
        _kill_group(group)
    return [f"{pid} ({seen[pid][1]})" for pid in alive] + [
        f"process group {g}" for g in left_groups
    ]


def _leftovers(tmpdir: Path) -> list[str]:
    """What is in a case's temp folder (a full one's filler aside); not a folder: nothing."""
    if not tmpdir.is_dir():
        return []
    try:
        return sorted(str(p) for p in tmpdir.rglob("*") if p.name != ".filler")
    except OSError as error:
        return [f"cannot list {tmpdir}: {error}"]


# ------------------------------------------------------------------ the cases' tables


@dataclass
class ProcessCase:
    """One row of a battery table run as a real process. `code` is the documented exit code
    and `why` says why that code is right for this input."""

    id: str
    args: list[str]
    code: int | tuple[int, ...]
    why: str
    scenario: str = "healthy_single"
    env: dict[str, str] = field(default_factory=dict)
    # prepare(case folder) -> a context manager giving extra environment (mounts, files)
    prepare: Callable | None = None
    stdout: Stream | None = None
    stderr: Stream | None = None
    send: Signal | None = None
    columns: int | None = None
    cost: float = 1.0  # rough seconds: the slow cases start first
    waits: bool = False  # mostly asleep (a hung NVML call at its 10 s deadline): no CPU slot

    @property
    def schema(self) -> str | None:
        return command_of(self.args) if "--json" in self.args else None

    @property
    def debug(self) -> bool:
        return "--debug" in self.args

    def __str__(self) -> str:
        return self.id


def command_of(args: list[str]) -> str:
    from dlcheck.cli import SUBCOMMANDS

    return next((a for a in args if a in SUBCOMMANDS), "check")
