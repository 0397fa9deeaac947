#!/usr/bin/env python3
"""Stop this cloud machine after N idle minutes: GPUs idle, no busy Jupyter kernel, no SSH session.

Run by dlcheck-idle-stop.timer every few minutes. Each run takes one sample; a sample is idle when
no GPU is above the utilisation threshold, no Jupyter kernel is busy (by the server's API where its
runtime file gives a token, and always by the kernel processes' CPU time, which needs no login), and
no SSH or Jupyter connection is established. The count of consecutive idle samples lives in a
state file; any activity resets it. When the count reaches the limit the machine powers off, which
the templates turn into a *stop* (AWS InstanceInitiatedShutdownBehavior=stop; a GCE guest
shutdown leaves the VM TERMINATED, i.e. stopped). Disks still bill while stopped.

Stdlib only: it runs on a fresh image before any provisioning. Every activity source is a probe
function, so the tests replace exactly those and nothing else.
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

DEFAULT_STATE = "/var/lib/dlcheck-idle-stop/idle-count"
RUNTIME_GLOBS = (
    "/home/*/.local/share/jupyter/runtime/jpserver-*.json",
    "/root/.local/share/jupyter/runtime/jpserver-*.json",
    "/opt/*/.local/share/jupyter/runtime/jpserver-*.json",
)


@dataclass(frozen=True)
class Sample:
    """One look at the machine. Each field is a short reason string when busy, else None."""

    gpu: str | None
    jupyter: str | None
    ssh: str | None
    kernel_cpu: str | None = None

    @property
    def busy_reasons(self) -> list[str]:
        return [r for r in (self.gpu, self.jupyter, self.kernel_cpu, self.ssh) if r]


# --- probes: each returns a reason string when the source is active, None when idle ----------


def gpu_probe(threshold: int, run=subprocess.run) -> str | None:
    """Busy when any GPU's utilisation.gpu (percent) is at or above `threshold`."""
    if shutil.which("nvidia-smi") is None:
        return None  # no driver yet (fresh Ubuntu image): nothing on a GPU can be running
    try:
        out = run(
            ["nvidia-smi", "--query-gpu=index,utilization.gpu", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        # A hung or failing driver is not proof of idleness: keep the machine up, say why.
        return f"nvidia-smi failed ({exc.__class__.__name__}); not counting as idle"
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[1].isdigit() and int(parts[1]) >= threshold:
            return f"GPU {parts[0]} at {parts[1]}% utilisation"
    return None


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
            if "url" in info:
                servers.append(info)
    return servers


def _get_json(url: str, token: str, timeout: float = 10):
    req = urllib.request.Request(url, headers={"Authorization": f"token {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 (loopback URL)
        return json.load(resp)


def jupyter_probe(
    servers: list[dict], recent: timedelta, now: datetime, get_json=_get_json
) -> str | None:
    """Busy when a kernel is executing, or ran code within `recent`."""
    for server in servers:
        base = server["url"].rstrip("/")
        try:
            kernels = get_json(f"{base}/api/kernels", server.get("token", ""))
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                continue  # password login, no token: kernel_cpu_probe covers this server
            return f"Jupyter at {base} answered HTTP {exc.code}; not counting as idle"
        except (urllib.error.URLError, OSError, ValueError):
            continue  # stale runtime file of a server that is gone
        for kernel in kernels:
            if kernel.get("execution_state") == "busy":
                return f"Jupyter kernel {kernel.get('id', '?')} is busy"
            last = kernel.get("last_activity")
            if last:
                when = datetime.fromisoformat(last.replace("Z", "+00:00"))
                if now - when < recent:
                    return f"Jupyter kernel {kernel.get('id', '?')} active at {last}"
    return None


def kernel_cpu_probe(
    state_path: str, proc_root: str = "/proc", min_cpu_s: float = 1.0, tick_hz: int | None = None
) -> str | None:
    """Busy when a Jupyter kernel process used `min_cpu_s` of CPU since the last sample, or is new.

    Works without Jupyter credentials: it reads /proc. A kernel computing on the GPU shows up in
    gpu_probe too. CPU tick totals per kernel are kept in `state_path` between runs.
    """
    hz = tick_hz or os.sysconf("SC_CLK_TCK")
    now: dict[str, int] = {}
    for cmdline_path in glob.glob(os.path.join(proc_root, "[0-9]*", "cmdline")):
        piddir = os.path.dirname(cmdline_path)
        try:
            with open(cmdline_path, "rb") as fh:
                if b"ipykernel" not in fh.read():
                    continue
            with open(os.path.join(piddir, "stat"), encoding="ascii") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        # Fields after "(comm)": utime and stime are stat fields 14 and 15, starttime 22.
        key = f"{os.path.basename(piddir)}@{fields[19]}"
        now[key] = int(fields[11]) + int(fields[12])
    try:
        with open(state_path, encoding="utf-8") as fh:
            before = json.load(fh)
    except (OSError, ValueError):
        before = None
    _write_json(state_path, now)
    for key, ticks in sorted(now.items()):
        pid = key.split("@")[0]
        if before is None or key not in before:
            return f"Jupyter kernel process {pid} started since the last check"
        used = (ticks - before[key]) / hz
        if used >= min_cpu_s:
            return f"Jupyter kernel process {pid} used {used:.1f} s of CPU"
    return None


def _write_json(path: str, data) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def ssh_probe(run=subprocess.run, jupyter_port: int = 8888) -> str | None:
    """Busy while a TCP connection to sshd (shells, -L tunnels) or to Jupyter (an open notebook,
    e.g. through an SSM port forward) is established."""
    try:
        out = run(
            ["ss", "-Htn", "state", "established", f"( sport = :22 or sport = :{jupyter_port} )"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError) as exc:
        return f"ss failed ({exc.__class__.__name__}); not counting as idle"
    sessions = [line for line in out.splitlines() if line.strip()]
    return f"{len(sessions)} SSH or Jupyter connection(s)" if sessions else None


# --- decision ---------------------------------------------------------------------------------


def intervals_needed(idle_minutes: int, interval_minutes: int) -> int:
    """Consecutive idle samples needed before stopping (at least one)."""
    return max(1, math.ceil(idle_minutes / interval_minutes))


def decide(previous_idle: int, sample: Sample, needed: int) -> tuple[int, bool]:
    """New consecutive-idle count and whether to stop now. Any activity resets the count."""
    if sample.busy_reasons:
        return 0, False
    count = previous_idle + 1
    return count, count >= needed


def read_count(path: str) -> int:
    try:
        with open(path, encoding="utf-8") as fh:
            return max(0, int(fh.read().strip() or 0))
    except (OSError, ValueError):
        return 0


def write_count(path: str, count: int) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(f"{count}\n")
    os.replace(tmp, path)


def poweroff() -> None:
    subprocess.run(["systemctl", "poweroff"], check=False)


def run_once(
    *,
    idle_minutes: int,
    interval_minutes: int,
    state_path: str,
    take_sample: Callable[[], Sample],
    stop: Callable[[], None] = poweroff,
    log: Callable[[str], None] = print,
) -> bool:
    """One timer tick: sample, update the count, stop if idle long enough. True if it stopped."""
    if idle_minutes <= 0:
        log("idle stop disabled (idle minutes is 0)")
        return False
    needed = intervals_needed(idle_minutes, interval_minutes)
    sample = take_sample()
    count, should_stop = decide(read_count(state_path), sample, needed)
    if should_stop:
        write_count(state_path, 0)  # a restarted machine starts counting afresh
        log(f"idle for {count} consecutive checks (>= {idle_minutes} min): powering off")
        stop()
        return True
    write_count(state_path, count)
    if sample.busy_reasons:
        log("busy: " + "; ".join(sample.busy_reasons))
    else:
        log(f"idle check {count}/{needed}")
    return False


def main(argv: list[str] | None = None) -> int:
    env = os.environ
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--idle-minutes", type=int, default=int(env.get("IDLE_STOP_MINUTES", "60")))
    p.add_argument("--interval-minutes", type=int, default=int(env.get("IDLE_STOP_INTERVAL", "5")))
    p.add_argument("--gpu-threshold", type=int, default=int(env.get("IDLE_STOP_GPU_PCT", "5")))
    p.add_argument("--state", default=env.get("IDLE_STOP_STATE", DEFAULT_STATE))
    p.add_argument(
        "--jupyter-port", type=int, default=int(env.get("IDLE_STOP_JUPYTER_PORT", "8888"))
    )
    p.add_argument("--proc-root", default=env.get("IDLE_STOP_PROC_ROOT", "/proc"))
    p.add_argument(
        "--jupyter-runtime-glob",
        action="append",
        default=[g for g in env.get("IDLE_STOP_JUPYTER_GLOB", "").split(":") if g],
        help="extra jpserver-*.json glob (where a Jupyter service keeps its runtime files)",
    )
    p.add_argument("--dry-run", action="store_true", help="log the decision, never power off")
    args = p.parse_args(argv)
    if args.interval_minutes <= 0:
        print("idle-stop: --interval-minutes must be positive; fix the env file", file=sys.stderr)
        return 2

    def take_sample() -> Sample:
        recent = timedelta(minutes=args.interval_minutes)
        now = datetime.now(timezone.utc)
        return Sample(
            gpu=gpu_probe(args.gpu_threshold),
            jupyter=jupyter_probe(
                jupyter_servers(RUNTIME_GLOBS + tuple(args.jupyter_runtime_glob)), recent, now
            ),
            ssh=ssh_probe(jupyter_port=args.jupyter_port),
            kernel_cpu=kernel_cpu_probe(f"{args.state}.kernels.json", args.proc_root),
        )

    stop = (lambda: print("dry run: would power off")) if args.dry_run else poweroff
    run_once(
        idle_minutes=args.idle_minutes,
        interval_minutes=args.interval_minutes,
        state_path=args.state,
        take_sample=take_sample,
        stop=stop,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
