#!/usr/bin/env python3
"""Stop this cloud machine after N idle minutes; never while someone or something is working.

Run by dlcheck-idle-stop.timer every few minutes. Each run takes one sample of every activity
source and calls it busy, idle or unknown:

  gpu        nvidia-smi utilisation at or above a threshold on any GPU
  jupyter    a kernel executing or active recently (server API, where a runtime file has a token)
  kernels    Jupyter kernel processes, children included (cells that work in subprocesses), that
             used CPU since the last sample, or a kernel that just started (needs no login)
  sessions   SSH, SSM Session Manager, mosh, tmux and screen sessions that relayed traffic or drew
             output since the last sample (their own CPU time), or that just started. SSH and
             SSM sessions without a shell or command under them are tunnels: what flows through
             them is judged where it lands (the Jupyter probes), so a forgotten `ssh -N -L` or
             port forward with an open browser tab does not keep the machine up. A half-open SSH
             connection from a sleeping laptop relays nothing and counts as idle.
  processes  sustained CPU or disk I/O of user processes (uid >= 1000, or anything started from
             a session: tmux, nohup, sudo), e.g. tokenising, compiling or CPU training

Any busy source resets the count of consecutive idle samples; when the count reaches the idle
minutes the machine powers off, which the templates turn into a *stop* (AWS
InstanceInitiatedShutdownBehavior=stop; a GCE guest shutdown leaves the VM TERMINATED, i.e.
stopped). A source that cannot answer (a hung nvidia-smi, a Jupyter API error) is *unknown*: the
count holds, and after --unknown-limit runs in a row the unknowns are treated as idle with a
warning, so a broken driver cannot keep a machine up forever. Bad runtime data (a corrupt state
file, a malformed API answer, a bad setting) is logged and never crashes a run.

Stdlib only: it runs on a fresh image before any provisioning. Each source is a function of plain
inputs (command output, a /proc directory, JSON), so the tests feed exactly those.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

DEFAULT_STATE = "/var/lib/dlcheck-idle-stop/state.json"
RUNTIME_GLOBS = (
    "/home/*/.local/share/jupyter/runtime/jpserver-*.json",
    "/root/.local/share/jupyter/runtime/jpserver-*.json",
    "/opt/*/.local/share/jupyter/runtime/jpserver-*.json",
    "/data/*/.local/share/jupyter/runtime/jpserver-*.json",
)
BUSY, IDLE, UNKNOWN = "busy", "idle", "unknown"
# The user-side process of an SSH session ("sshd: alice@pts/0"; OpenSSH >= 9.8 "sshd-session: ...").
SSHD_SESSION = re.compile(r"^sshd(?:-session)?: \S+@(?:pts/\d+|notty)")


@dataclass(frozen=True)
class Reading:
    source: str
    state: str  # BUSY, IDLE or UNKNOWN
    reason: str = ""


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    key: str  # pid@starttime: a reused pid is a new process
    comm: str
    cmdline: str
    uid: int
    cpu_ticks: int
    io_bytes: int


@dataclass
class Settings:
    idle_minutes: int = 60
    interval_minutes: int = 5
    gpu_threshold: int = 5
    gpu_timeout_s: float = 30
    kernel_cpu_s: float = 1.0
    session_cpu_s: float = 0.05
    user_cpu_percent: float = 10.0
    user_io_mib: float = 16.0
    unknown_limit: int = 3
    problems: list[str] = field(default_factory=list)


# --- gpu --------------------------------------------------------------------------------------


def gpu_probe(threshold: int, timeout_s: float = 30, run=subprocess.run) -> Reading:
    """Busy when any GPU's utilization.gpu (percent) is at or above `threshold`."""
    if shutil.which("nvidia-smi") is None:
        return Reading("gpu", IDLE, "no nvidia-smi (no driver yet)")
    try:
        out = run(
            ["nvidia-smi", "--query-gpu=index,utilization.gpu", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=True,
        ).stdout
    except subprocess.TimeoutExpired:
        return Reading("gpu", UNKNOWN, f"nvidia-smi hung for {timeout_s:g} s")
    except (subprocess.SubprocessError, OSError) as exc:
        return Reading("gpu", UNKNOWN, f"nvidia-smi failed ({exc.__class__.__name__})")
    rows = [[p.strip() for p in line.split(",")] for line in out.splitlines() if line.strip()]
    if not rows or any(len(r) != 2 or not r[1].isdigit() for r in rows):
        return Reading("gpu", UNKNOWN, f"nvidia-smi printed something unexpected: {out[:80]!r}")
    for index, util in rows:
        if int(util) >= threshold:
            return Reading("gpu", BUSY, f"GPU {index} at {util}% utilisation")
    return Reading("gpu", IDLE)


# --- jupyter API ------------------------------------------------------------------------------


def jupyter_servers(globs=RUNTIME_GLOBS) -> list[dict]:
    """Running Jupyter servers as their runtime files describe them (url + token)."""
    servers = []
    for pattern in globs:
        for path in sorted(glob.glob(pattern)):
            try:
                with open(path, encoding="utf-8") as fh:
                    info = json.load(fh)
            except (OSError, ValueError):
                continue
            if isinstance(info, dict) and isinstance(info.get("url"), str):
                servers.append(info)
    return servers


def _get_json(url: str, token: str, timeout: float = 10):
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (loopback URL)
        return json.load(resp)


def _parse_time(text) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def jupyter_probe(
    servers: list[dict], recent: timedelta, now: datetime, get_json=_get_json
) -> Reading:
    """Busy when a kernel is executing, or ran code within `recent`."""
    for server in servers:
        base = server["url"].rstrip("/")
        try:
            kernels = get_json(f"{base}/api/kernels", str(server.get("token", "")))
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                continue  # password login, no token: the kernels probe covers this server
            return Reading("jupyter", UNKNOWN, f"Jupyter at {base} answered HTTP {exc.code}")
        except (urllib.error.URLError, OSError, ValueError):
            continue  # a stale runtime file of a server that is gone
        if not isinstance(kernels, list):
            return Reading("jupyter", UNKNOWN, f"Jupyter at {base} sent no kernel list")
        for kernel in kernels:
            if not isinstance(kernel, dict):
                continue
            name = kernel.get("id", "?")
            if kernel.get("execution_state") == "busy":
                return Reading("jupyter", BUSY, f"Jupyter kernel {name} is busy")
            last = kernel.get("last_activity")
            when = _parse_time(last) if last else None
            if when is not None and now - when < recent:
                return Reading("jupyter", BUSY, f"Jupyter kernel {name} active at {last}")
    return Reading("jupyter", IDLE)


# --- /proc ------------------------------------------------------------------------------------


def read_processes(proc_root: str = "/proc") -> dict[int, Proc]:
    """Every process now: parent, command, real uid, CPU ticks and bytes of disk I/O."""
    procs: dict[int, Proc] = {}
    for piddir in glob.glob(os.path.join(proc_root, "[0-9]*")):
        try:
            with open(os.path.join(piddir, "stat"), encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
            with open(os.path.join(piddir, "cmdline"), "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace").strip()
            with open(os.path.join(piddir, "status"), encoding="utf-8", errors="replace") as fh:
                uid_line = next(line for line in fh if line.startswith("Uid:"))
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            # Fields after "(comm)": ppid is stat field 4, utime/stime 14/15, starttime 22.
            pid = int(os.path.basename(piddir))
            io_bytes = 0
            try:
                with open(os.path.join(piddir, "io"), encoding="utf-8") as fh:
                    io = dict(line.split(":", 1) for line in fh if ":" in line)
                io_bytes = int(io.get("read_bytes", 0)) + int(io.get("write_bytes", 0))
            except (OSError, ValueError):
                pass  # kernel threads, or not root: no I/O figures
            procs[pid] = Proc(
                pid=pid,
                ppid=int(fields[1]),
                key=f"{pid}@{fields[19]}",
                comm=comm,
                cmdline=cmdline,
                uid=int(uid_line.split()[1]),
                cpu_ticks=int(fields[11]) + int(fields[12]),
                io_bytes=io_bytes,
            )
        except (OSError, ValueError, IndexError, StopIteration):
            continue  # the process ended while we looked, or its files are not what we expect
    return procs


def session_kind(p: Proc) -> str | None:
    """What kind of interactive session `p` carries, if any."""
    if SSHD_SESSION.match(p.cmdline):
        return "SSH"
    exe = os.path.basename(p.cmdline.split(" ", 1)[0]) if p.cmdline else p.comm
    if exe == "ssm-session-worker" or p.comm == "ssm-session-wor":
        return "SSM"
    if exe == "mosh-server" or p.comm == "mosh-server":
        return "mosh"
    if p.cmdline.startswith("tmux") and "server" in p.cmdline.split("(")[0]:
        return "tmux"
    if p.comm == "SCREEN":
        return "screen"
    return None


def _children(procs: dict[int, Proc]) -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for p in procs.values():
        kids.setdefault(p.ppid, []).append(p.pid)
    return kids


def _descendants(pid: int, kids: dict[int, list[int]]) -> list[int]:
    found, todo = [], list(kids.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(kids.get(child, []))
    return found


def _used(p: Proc, before: dict[str, list[int]], hz: int) -> tuple[float, int]:
    """CPU seconds and I/O bytes since the last sample (all of it for a new process)."""
    old = before.get(p.key)
    if old is None:
        return p.cpu_ticks / hz, p.io_bytes
    return max(0, p.cpu_ticks - old[0]) / hz, max(0, p.io_bytes - old[1])


def process_probes(
    procs: dict[int, Proc],
    before: dict[str, list[int]] | None,
    elapsed_s: float,
    s: Settings,
    hz: int,
) -> list[Reading]:
    """Kernels, sessions and user processes, judged from CPU and I/O since the last sample."""
    if before is None:
        return [Reading("processes", UNKNOWN, "first look: baseline taken")]
    kids = _children(procs)
    readings: list[Reading] = []

    kernel_state = Reading("kernels", IDLE)
    for p in procs.values():
        if "ipykernel" not in p.cmdline:
            continue
        if p.key not in before:
            kernel_state = Reading("kernels", BUSY, f"Jupyter kernel {p.pid} started")
            break
        tree = [p] + [procs[c] for c in _descendants(p.pid, kids)]
        cpu = sum(_used(q, before, hz)[0] for q in tree)
        if cpu >= s.kernel_cpu_s:
            kernel_state = Reading("kernels", BUSY, f"Jupyter kernel {p.pid} used {cpu:.1f} s CPU")
            break
    readings.append(kernel_state)

    session_state = Reading("sessions", IDLE)
    session_trees: set[int] = set()
    for p in procs.values():
        kind = session_kind(p)
        if kind is None:
            continue
        below = _descendants(p.pid, kids)
        session_trees.update(below)
        if kind in ("SSH", "SSM") and not any(session_kind(procs[c]) is None for c in below):
            continue  # a tunnel: no shell or command under it
        cpu = _used(p, before, hz)[0]
        if p.key not in before:
            session_state = Reading("sessions", BUSY, f"{kind} session {p.pid} started")
            break
        if cpu >= s.session_cpu_s:
            session_state = Reading(
                "sessions", BUSY, f"{kind} session {p.pid} active ({cpu:.2f} s CPU)"
            )
            break
    readings.append(session_state)

    cpu_total, io_total = 0.0, 0
    for p in procs.values():
        if (1000 <= p.uid < 65534) or p.pid in session_trees:
            cpu, io = _used(p, before, hz)
            cpu_total += cpu
            io_total += io
    cpu_share = 100 * cpu_total / max(elapsed_s, 1.0)
    if cpu_share >= s.user_cpu_percent:
        reason = f"user processes used {cpu_total:.0f} s CPU ({cpu_share:.0f}% of a core)"
        readings.append(Reading("processes", BUSY, reason))
    elif io_total >= s.user_io_mib * 2**20:
        reason = f"user processes read or wrote {io_total / 2**20:.0f} MiB"
        readings.append(Reading("processes", BUSY, reason))
    else:
        readings.append(Reading("processes", IDLE))
    return readings


def snapshot(procs: dict[int, Proc]) -> dict[str, list[int]]:
    return {p.key: [p.cpu_ticks, p.io_bytes] for p in procs.values()}


# --- decision and state -----------------------------------------------------------------------


def intervals_needed(idle_minutes: int, interval_minutes: int) -> int:
    """Consecutive idle samples needed before stopping (at least one)."""
    return max(1, math.ceil(idle_minutes / interval_minutes))


def decide(state: dict, readings: list[Reading], s: Settings) -> tuple[bool, list[str]]:
    """Update `state` (idle_count, unknown_runs) from one sample; True when it is time to stop."""
    busy = [r for r in readings if r.state == BUSY]
    unknown = [r for r in readings if r.state == UNKNOWN and r.source != "processes"]
    baseline = any(r.state == UNKNOWN and r.source == "processes" for r in readings)
    log: list[str] = []
    if busy:
        state["idle_count"] = 0
        state["unknown_runs"] = 0 if not unknown else state["unknown_runs"] + 1
        log.append("busy: " + "; ".join(r.reason for r in busy))
        return False, log
    if unknown:
        state["unknown_runs"] += 1
        what = "; ".join(r.reason for r in unknown)
        if state["unknown_runs"] < s.unknown_limit:
            log.append(
                f"unknown ({state['unknown_runs']}/{s.unknown_limit}): {what}; not counting this"
                " check as idle"
            )
            return False, log
        log.append(
            f"WARNING: {what} for {state['unknown_runs']} checks in a row; treating it as idle"
        )
    else:
        state["unknown_runs"] = 0
    if baseline:
        log.append("first check since boot: baseline taken, not counted")
        return False, log
    needed = intervals_needed(s.idle_minutes, s.interval_minutes)
    state["idle_count"] += 1
    if state["idle_count"] >= needed:
        log.append(
            f"idle for {state['idle_count']} consecutive checks (>= {s.idle_minutes} min):"
            " powering off"
        )
        state["idle_count"] = 0  # a restarted machine starts counting afresh
        return True, log
    log.append(f"idle check {state['idle_count']}/{needed}")
    return False, log


def load_state(path: str, now: float, max_gap_s: float, log: Callable[[str], None]) -> dict:
    """The state file, or a fresh state when it is missing, corrupt or stale (machine restarted)."""
    fresh = {"idle_count": 0, "unknown_runs": 0, "procs": None, "time": None}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return fresh
    except (OSError, ValueError) as exc:
        log(f"state file {path} unreadable ({exc.__class__.__name__}); starting afresh")
        return fresh
    try:
        state = {
            "idle_count": max(0, int(data["idle_count"])),
            "unknown_runs": max(0, int(data["unknown_runs"])),
            "time": float(data["time"]),
            "procs": {str(k): [int(v[0]), int(v[1])] for k, v in data["procs"].items()},
        }
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        log(f"state file {path} is malformed; starting afresh")
        return fresh
    if not 0 <= now - state["time"] <= max_gap_s:
        return fresh  # stopped and started again, or the clock jumped: count from zero
    return state


def save_state(path: str, state: dict) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(state, fh)
    os.replace(tmp, path)


def poweroff() -> None:
    subprocess.run(["systemctl", "poweroff"], check=False)


def run_once(
    s: Settings,
    state_path: str,
    take_readings: Callable[[dict], tuple[list[Reading], dict]],
    *,
    now: float | None = None,
    stop: Callable[[], None] = poweroff,
    log: Callable[[str], None] = print,
) -> bool:
    """One timer tick: sample, update the state, stop if idle long enough. True if it stopped."""
    for problem in s.problems:
        log(problem)
    if s.idle_minutes <= 0:
        log("idle stop disabled (idle minutes is 0)")
        return False
    now = time.time() if now is None else now
    state = load_state(state_path, now, 3 * s.interval_minutes * 60, log)
    elapsed = now - state["time"] if state["time"] is not None else 0.0
    try:
        readings, procs_now = take_readings({"before": state["procs"], "elapsed_s": elapsed})
    except Exception as exc:  # noqa: BLE001 (a probe bug must not stop the timer for good)
        readings, procs_now = [Reading("sample", UNKNOWN, f"sampling failed: {exc!r}")], None
    should_stop, lines = decide(state, readings, s)
    for line in lines:
        log(line)
    state["procs"], state["time"] = procs_now, now
    try:
        save_state(state_path, state)
    except OSError as exc:
        log(f"cannot write {state_path} ({exc.strerror}); this check is not remembered")
    if should_stop:
        stop()
    return should_stop


# --- command line -----------------------------------------------------------------------------


def settings_from(env, problems: list[str]) -> Settings:
    """Settings from IDLE_STOP_* variables; a bad value is reported and the default kept."""
    s = Settings()
    names = {
        "IDLE_STOP_MINUTES": ("idle_minutes", int),
        "IDLE_STOP_INTERVAL": ("interval_minutes", int),
        "IDLE_STOP_GPU_PCT": ("gpu_threshold", int),
        "IDLE_STOP_GPU_TIMEOUT": ("gpu_timeout_s", float),
        "IDLE_STOP_KERNEL_CPU_S": ("kernel_cpu_s", float),
        "IDLE_STOP_SESSION_CPU_S": ("session_cpu_s", float),
        "IDLE_STOP_USER_CPU_PCT": ("user_cpu_percent", float),
        "IDLE_STOP_USER_IO_MIB": ("user_io_mib", float),
        "IDLE_STOP_UNKNOWN_LIMIT": ("unknown_limit", int),
    }
    for var, (attr, kind) in names.items():
        raw = env.get(var)
        if raw is None or raw.strip() == "":
            continue
        try:
            value = kind(raw)
            if value < 0 or (attr == "interval_minutes" and value == 0):
                raise ValueError
        except ValueError:
            problems.append(
                f"ERROR: {var}={raw!r} is not a valid number; using {getattr(s, attr)}."
                " Fix /etc/default/dlcheck-idle-stop (or rerun the idle_stop role)."
            )
            continue
        setattr(s, attr, value)
    s.problems = problems
    return s


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--state", default=env.get("IDLE_STOP_STATE", DEFAULT_STATE))
    p.add_argument("--proc-root", default=env.get("IDLE_STOP_PROC_ROOT", "/proc"))
    p.add_argument(
        "--jupyter-runtime-glob",
        action="append",
        default=[g for g in env.get("IDLE_STOP_JUPYTER_GLOB", "").split(":") if g],
        help="extra jpserver-*.json glob (where a Jupyter service keeps its runtime files)",
    )
    p.add_argument("--dry-run", action="store_true", help="log the decision, never power off")
    args = p.parse_args(argv)
    s = settings_from(env, [])
    hz = os.sysconf("SC_CLK_TCK")

    def take_readings(ctx: dict) -> tuple[list[Reading], dict]:
        readings = [gpu_probe(s.gpu_threshold, s.gpu_timeout_s)]
        recent = timedelta(minutes=s.interval_minutes)
        servers = jupyter_servers(RUNTIME_GLOBS + tuple(args.jupyter_runtime_glob))
        readings.append(jupyter_probe(servers, recent, datetime.now(timezone.utc)))
        procs = read_processes(args.proc_root)
        readings += process_probes(procs, ctx["before"], ctx["elapsed_s"], s, hz)
        return readings, snapshot(procs)

    stop = (lambda: print("dry run: would power off")) if args.dry_run else poweroff
    run_once(s, args.state, take_readings, stop=stop, log=lambda m: print(m, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
