"""The idle auto-stop logic, with only its activity sources faked (GPU, Jupyter, SSH)."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from .conftest import load_script

idle_stop = load_script("common/idle_stop.py")
Sample = idle_stop.Sample

SCRIPT = Path(idle_stop.__file__)
IDLE = Sample(gpu=None, jupyter=None, ssh=None)
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def tick_until_stop(samples, *, idle_minutes, interval_minutes, state):
    """Feed samples one timer tick at a time; return the 1-based tick that stopped, or None."""
    stopped = []
    for i, sample in enumerate(samples, start=1):
        did = idle_stop.run_once(
            idle_minutes=idle_minutes,
            interval_minutes=interval_minutes,
            state_path=str(state),
            take_sample=lambda s=sample: s,
            stop=lambda i=i: stopped.append(i),
            log=lambda _msg: None,
        )
        if did:
            return stopped[0]
    return None


def test_stops_only_after_n_idle_intervals(tmp_path):
    state = tmp_path / "count"
    # 60 idle minutes at a 5-minute timer = 12 consecutive idle checks.
    assert tick_until_stop([IDLE] * 30, idle_minutes=60, interval_minutes=5, state=state) == 12


def test_any_activity_resets_the_count(tmp_path):
    busy_gpu = Sample(gpu="GPU 0 at 97% utilisation", jupyter=None, ssh=None)
    ssh = Sample(gpu=None, jupyter=None, ssh="1 SSH connection(s)")
    samples = [IDLE] * 11 + [busy_gpu] + [IDLE] * 11 + [ssh] + [IDLE] * 12
    stop_at = tick_until_stop(samples, idle_minutes=60, interval_minutes=5, state=tmp_path / "c")
    assert stop_at == 11 + 1 + 11 + 1 + 12


def test_never_stops_while_a_kernel_is_busy(tmp_path):
    busy = Sample(gpu=None, jupyter="Jupyter kernel k1 is busy", ssh=None)
    state = tmp_path / "c"
    assert tick_until_stop([busy] * 500, idle_minutes=10, interval_minutes=5, state=state) is None
    assert (tmp_path / "c").read_text().strip() == "0"


def test_zero_minutes_disables(tmp_path):
    state = tmp_path / "c"
    assert tick_until_stop([IDLE] * 50, idle_minutes=0, interval_minutes=5, state=state) is None


def test_count_survives_between_runs_and_resets_after_stop(tmp_path):
    state = tmp_path / "c"
    assert tick_until_stop([IDLE] * 2, idle_minutes=15, interval_minutes=5, state=state) is None
    assert state.read_text().strip() == "2"
    assert tick_until_stop([IDLE], idle_minutes=15, interval_minutes=5, state=state) == 1
    assert state.read_text().strip() == "0"  # the next boot counts afresh


def test_intervals_round_up():
    assert idle_stop.intervals_needed(61, 5) == 13
    assert idle_stop.intervals_needed(1, 5) == 1


# --- probes -----------------------------------------------------------------------------------


class FakeRun:
    def __init__(self, stdout="", exc=None):
        self.stdout, self.exc, self.argv = stdout, exc, None

    def __call__(self, argv, **_kw):
        self.argv = argv
        if self.exc:
            raise self.exc
        return subprocess.CompletedProcess(argv, 0, stdout=self.stdout)


def test_gpu_probe_reads_nvidia_smi_csv(monkeypatch):
    monkeypatch.setattr(idle_stop.shutil, "which", lambda _n: "/usr/bin/nvidia-smi")
    assert idle_stop.gpu_probe(5, run=FakeRun("0, 0\n1, 3\n")) is None
    assert idle_stop.gpu_probe(5, run=FakeRun("0, 0\n1, 42\n")) == "GPU 1 at 42% utilisation"
    hung = FakeRun(exc=subprocess.TimeoutExpired("nvidia-smi", 30))
    assert "not counting as idle" in idle_stop.gpu_probe(5, run=hung)


def test_gpu_probe_without_driver_is_idle(monkeypatch):
    monkeypatch.setattr(idle_stop.shutil, "which", lambda _n: None)
    assert idle_stop.gpu_probe(5, run=FakeRun(exc=AssertionError("must not run"))) is None


def test_ssh_probe_counts_established_connections():
    two = "0 0 10.0.0.5:22 203.0.113.7:50522\n0 0 10.0.0.5:22 203.0.113.7:50523\n"
    run = FakeRun(two)
    assert idle_stop.ssh_probe(run=run) == "2 SSH or Jupyter connection(s)"
    assert run.argv == ["ss", "-Htn", "state", "established", "( sport = :22 or sport = :8888 )"]
    assert idle_stop.ssh_probe(run=FakeRun("")) is None


class FakeJupyter(http.server.BaseHTTPRequestHandler):
    """A Jupyter server's /api/kernels, token-checked like the real one."""

    kernels: list = []
    token = "s3cret"

    def do_GET(self):  # noqa: N802 (http.server API)
        if self.headers.get("Authorization") != f"token {self.token}":
            self.send_response(403)
            self.end_headers()
            return
        body = json.dumps(self.kernels).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture
def jupyter(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeJupyter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    (runtime / "jpserver-1234.json").write_text(json.dumps({"url": url, "token": "s3cret"}))
    (runtime / "jpserver-9999.json").write_text("{not json")  # ignored, not fatal
    yield str(runtime / "jpserver-*.json")
    server.shutdown()


def kernel(state, minutes_ago):
    when = (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return {"id": f"k-{state}", "execution_state": state, "last_activity": when}


def test_jupyter_probe_against_a_server(jupyter, monkeypatch):
    servers = idle_stop.jupyter_servers((jupyter,))
    assert len(servers) == 1
    probe = lambda: idle_stop.jupyter_probe(servers, timedelta(minutes=5), NOW)  # noqa: E731
    monkeypatch.setattr(FakeJupyter, "kernels", [kernel("idle", 90)])
    assert probe() is None
    monkeypatch.setattr(FakeJupyter, "kernels", [kernel("idle", 90), kernel("busy", 90)])
    assert probe() == "Jupyter kernel k-busy is busy"
    monkeypatch.setattr(FakeJupyter, "kernels", [kernel("idle", 2)])
    assert "active at" in probe()
    # Password login (no token in the runtime file): the API is closed to us, so this probe stays
    # silent and kernel_cpu_probe, which needs no login, watches the kernels instead.
    monkeypatch.setattr(FakeJupyter, "token", "rotated")
    monkeypatch.setattr(FakeJupyter, "kernels", [kernel("busy", 0)])
    assert probe() is None


def test_jupyter_probe_ignores_a_stale_runtime_file():
    gone = [{"url": "http://127.0.0.1:9/", "token": "x"}]  # discard port: connection refused
    assert idle_stop.jupyter_probe(gone, timedelta(minutes=5), NOW) is None


def fake_process(proc, pid, cmdline, cpu_ticks, start=5000):
    d = proc / str(pid)
    d.mkdir(parents=True, exist_ok=True)
    (d / "cmdline").write_bytes(b"\0".join(part.encode() for part in cmdline) + b"\0")
    utime, stime = cpu_ticks // 2, cpu_ticks - cpu_ticks // 2
    rest = ["S", "1", str(pid), str(pid), "0", "-1", "4194560", "9", "0", "0", "0"]
    rest += [str(utime), str(stime), "0", "0", "20", "0", "3", "0", str(start), "1000"]
    (d / "stat").write_text(f"{pid} (python3) " + " ".join(rest) + "\n")


def test_kernel_cpu_probe_reads_kernel_processes(tmp_path):
    proc, state = tmp_path / "proc", str(tmp_path / "kernels.json")
    kernel_cmd = ["/opt/dl/venv/bin/python", "-m", "ipykernel_launcher", "-f", "k.json"]
    fake_process(proc, 4242, kernel_cmd, cpu_ticks=1000)
    fake_process(proc, 77, ["/usr/sbin/sshd", "-D"], cpu_ticks=99999)  # not a kernel
    probe = lambda: idle_stop.kernel_cpu_probe(state, str(proc), tick_hz=100)  # noqa: E731
    assert probe() == "Jupyter kernel process 4242 started since the last check"
    assert probe() is None  # no CPU used since
    fake_process(proc, 4242, kernel_cmd, cpu_ticks=1050)  # 0.5 s: a tab autosaving, not work
    assert probe() is None
    fake_process(proc, 4242, kernel_cmd, cpu_ticks=1350)  # 3 s of CPU: a cell is running
    assert probe() == "Jupyter kernel process 4242 used 3.0 s of CPU"
    fake_process(proc, 4242, kernel_cmd, cpu_ticks=10, start=9000)  # pid reused by a new kernel
    assert "started since the last check" in probe()
    for f in (proc / "4242").iterdir():
        f.unlink()
    assert probe() is None  # the kernel is gone


# --- the script as the timer runs it ----------------------------------------------------------


def fake_bin(tmp_path, name, stdout):
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\nprintf '%s' '{stdout}'\n")
    path.chmod(0o755)


def run_script(tmp_path, jupyter_glob):
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "IDLE_STOP_MINUTES": "10",
        "IDLE_STOP_INTERVAL": "5",
        "IDLE_STOP_STATE": str(tmp_path / "state" / "count"),
        "IDLE_STOP_JUPYTER_GLOB": jupyter_glob,
        "IDLE_STOP_PROC_ROOT": str(tmp_path / "proc"),
    }
    cmd = [sys.executable, str(SCRIPT), "--dry-run"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=True)


def test_script_end_to_end_with_fake_sources(tmp_path, jupyter, monkeypatch):
    fake_bin(tmp_path, "nvidia-smi", "0, 0\n")
    fake_bin(tmp_path, "ss", "")
    monkeypatch.setattr(FakeJupyter, "kernels", [])
    assert "idle check 1/2" in run_script(tmp_path, jupyter).stdout
    assert "would power off" in run_script(tmp_path, jupyter).stdout
    fake_bin(tmp_path, "nvidia-smi", "0, 77\n")
    out = run_script(tmp_path, jupyter).stdout
    assert "busy: GPU 0 at 77% utilisation" in out
    assert "power" not in out
    fake_bin(tmp_path, "nvidia-smi", "0, 0\n")
    fake_process(tmp_path / "proc", 31337, ["python", "-m", "ipykernel_launcher"], cpu_ticks=5)
    assert "busy: Jupyter kernel process 31337 started" in run_script(tmp_path, jupyter).stdout
