"""The idle auto-stop script: every activity source busy and idle, the decision, bad data.

The script reads plain inputs (nvidia-smi's output, a /proc tree, Jupyter's JSON), so the tests
give it exactly those: a fake /proc directory built per test, a real HTTP server on loopback for
Jupyter, and executable stand-ins for nvidia-smi. Nothing inside the script is patched.
"""

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

from .conftest import ROOT, load_script

SCRIPT_PATH = ROOT / "playbooks" / "roles" / "idle_stop" / "files" / "dlcheck-idle-stop.py"
idle_stop = load_script(os.path.relpath(SCRIPT_PATH, ROOT / "cloud"))
Reading, Settings = idle_stop.Reading, idle_stop.Settings
BUSY, IDLE, UNKNOWN = idle_stop.BUSY, idle_stop.IDLE, idle_stop.UNKNOWN
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
HZ = 100
INTERVAL_S = 300


# --- a fake /proc -----------------------------------------------------------------------------


class FakeProc:
    """A /proc tree: each process has stat, cmdline, status (Uid) and io, as Linux writes them."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def add(self, pid, cmdline, *, ppid=1, uid=0, cpu_s=0.0, io_mib=0.0, comm=None, start=5000):
        d = self.root / str(pid)
        d.mkdir(exist_ok=True)
        comm = comm or os.path.basename(cmdline.split()[0])[:15]
        (d / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")
        ticks = round(cpu_s * HZ)
        fields = ["S", str(ppid), str(pid), str(pid), "0", "-1", "4194560", "9", "0", "0", "0"]
        fields += [str(ticks // 2), str(ticks - ticks // 2), "0", "0", "20", "0", "1", "0"]
        fields += [str(start), "1000"]
        (d / "stat").write_text(f"{pid} ({comm}) " + " ".join(fields) + "\n")
        (d / "status").write_text(f"Name:\t{comm}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n")
        io = round(io_mib * 2**20)
        (d / "io").write_text(
            f"rchar: 0\nwchar: 0\nread_bytes: {io // 2}\nwrite_bytes: {io - io // 2}\n"
        )
        return self

    def remove(self, pid):
        for f in (self.root / str(pid)).iterdir():
            f.unlink()
        (self.root / str(pid)).rmdir()

    def read(self):
        return idle_stop.read_processes(str(self.root))


def probes(proc: FakeProc, before, settings=None):
    """Readings of the process-based sources, by source name."""
    readings = idle_stop.process_probes(proc.read(), before, INTERVAL_S, settings or Settings(), HZ)
    return {r.source: r for r in readings}


def two_samples(tmp_path, first, second, settings=None):
    """Build /proc, take a baseline, change it, and judge the interval between."""
    proc = FakeProc(tmp_path / "proc")
    first(proc)
    before = idle_stop.snapshot(proc.read())
    second(proc)
    return probes(proc, before, settings)


def base_system(proc):
    """What any machine runs: init, sshd's listener, a root daemon busy on its own."""
    proc.add(1, "/sbin/init", ppid=0)
    proc.add(300, "sshd: /usr/sbin/sshd -D [listener] 0 of 10-100 startups", comm="sshd")
    proc.add(400, "/usr/bin/containerd", cpu_s=100)


# --- GPU --------------------------------------------------------------------------------------


def nvidia_smi(tmp_path, body: str) -> Path:
    """An executable nvidia-smi on PATH that runs `body` (shell)."""
    path = tmp_path / "bin" / "nvidia-smi"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return path.parent


@pytest.fixture
def on_path(monkeypatch):
    def put(bindir: Path):
        monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")

    return put


def test_gpu_busy_and_idle(tmp_path, on_path):
    on_path(nvidia_smi(tmp_path, "echo '0, 0'; echo '1, 42'"))
    assert idle_stop.gpu_probe(5) == Reading("gpu", BUSY, "GPU 1 at 42% utilisation")
    on_path(nvidia_smi(tmp_path, "echo '0, 0'; echo '1, 3'"))
    assert idle_stop.gpu_probe(5).state == IDLE


def test_gpu_stuck_nvidia_smi_is_unknown_not_busy(tmp_path, on_path):
    on_path(nvidia_smi(tmp_path, "exec sleep 30"))
    reading = idle_stop.gpu_probe(5, timeout_s=0.5)
    assert reading == Reading("gpu", UNKNOWN, "nvidia-smi hung for 0.5 s")


def test_gpu_failing_or_garbled_nvidia_smi_is_unknown(tmp_path, on_path):
    on_path(nvidia_smi(tmp_path, "echo 'NVIDIA-SMI has failed' >&2; exit 9"))
    assert idle_stop.gpu_probe(5).state == UNKNOWN
    on_path(nvidia_smi(tmp_path, "echo 'No devices were found'"))
    assert "unexpected" in idle_stop.gpu_probe(5).reason


def test_no_driver_yet_is_idle(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert idle_stop.gpu_probe(5).state == IDLE


# --- Jupyter API ------------------------------------------------------------------------------


class FakeJupyter(http.server.BaseHTTPRequestHandler):
    """A Jupyter server's /api/kernels, token-checked like the real one."""

    body: object = []
    token = "s3cret"

    def do_GET(self):  # noqa: N802 (http.server API)
        if self.headers.get("Authorization") != f"token {self.token}":
            self.send_response(403)
            self.end_headers()
            return
        data = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args):
        pass


@pytest.fixture
def jupyter(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeJupyter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    (runtime / "jpserver-1234.json").write_text(json.dumps({"url": url, "token": "s3cret"}))
    (runtime / "jpserver-9999.json").write_text("{not json")  # ignored, not fatal
    (runtime / "jpserver-8888.json").write_text("[1, 2]")  # not an object: ignored
    yield str(runtime / "jpserver-*.json")
    server.shutdown()


def kernel(state, minutes_ago=90, name=None):
    when = (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return {"id": name or f"k-{state}", "execution_state": state, "last_activity": when}


def api(glob_pattern):
    servers = idle_stop.jupyter_servers((glob_pattern,))
    assert len(servers) == 1
    return idle_stop.jupyter_probe(servers, timedelta(minutes=5), NOW)


def test_jupyter_api_busy_recent_and_idle(jupyter, monkeypatch):
    monkeypatch.setattr(FakeJupyter, "body", [kernel("idle")])
    assert api(jupyter).state == IDLE
    monkeypatch.setattr(FakeJupyter, "body", [kernel("idle"), kernel("busy")])
    assert api(jupyter) == Reading("jupyter", BUSY, "Jupyter kernel k-busy is busy")
    monkeypatch.setattr(FakeJupyter, "body", [kernel("idle", minutes_ago=2)])
    assert "active at" in api(jupyter).reason


@pytest.mark.parametrize(
    "body",
    [
        [{"id": "k1", "execution_state": "idle", "last_activity": "yesterday-ish"}],
        [{"id": "k1", "last_activity": 12345}],
        ["not a kernel", None, {"id": "k2"}],
    ],
)
def test_jupyter_api_malformed_kernels_never_crash(jupyter, monkeypatch, body):
    monkeypatch.setattr(FakeJupyter, "body", body)
    assert api(jupyter).state == IDLE


def test_jupyter_api_odd_answers_are_unknown_or_skipped(jupyter, monkeypatch):
    monkeypatch.setattr(FakeJupyter, "body", {"message": "not a list"})
    assert api(jupyter).state == UNKNOWN
    monkeypatch.setattr(FakeJupyter, "body", b"<html>proxy error</html>")
    assert api(jupyter).state == IDLE  # unparseable: like a server that is gone
    # Password login (no token): the API is closed to us; the kernels probe watches instead.
    monkeypatch.setattr(FakeJupyter, "token", "rotated")
    monkeypatch.setattr(FakeJupyter, "body", [kernel("busy")])
    assert api(jupyter).state == IDLE


def test_jupyter_api_stale_runtime_file():
    gone = [{"url": "http://127.0.0.1:9/", "token": "x"}]  # discard port: connection refused
    assert idle_stop.jupyter_probe(gone, timedelta(minutes=5), NOW).state == IDLE


# --- Jupyter kernels from /proc ---------------------------------------------------------------

KERNEL = "/opt/dl/venv/bin/python -m ipykernel_launcher -f /data/jupyter/k.json"


def test_kernel_busy_in_its_own_process_and_idle(tmp_path):
    def first(proc):
        base_system(proc)
        proc.add(500, KERNEL, uid=1001, cpu_s=10)

    busy = two_samples(tmp_path / "a", first, lambda p: p.add(500, KERNEL, uid=1001, cpu_s=14))
    assert busy["kernels"] == Reading("kernels", BUSY, "Jupyter kernel 500 used 4.0 s CPU")
    idle = two_samples(tmp_path / "b", first, lambda p: p.add(500, KERNEL, uid=1001, cpu_s=10.5))
    assert idle["kernels"].state == IDLE  # half a second: a tab autosaving, not work


def test_kernel_busy_through_a_child_process(tmp_path):
    """A cell that works in a subprocess (multiprocessing, a shell command) keeps it busy."""

    def first(proc):
        base_system(proc)
        proc.add(500, KERNEL, uid=1001, cpu_s=10)
        proc.add(501, "/opt/dl/venv/bin/python -c work", ppid=500, uid=1001, cpu_s=0)

    def second(proc):
        proc.add(501, "/opt/dl/venv/bin/python -c work", ppid=500, uid=1001, cpu_s=250)

    assert "used 250.0 s CPU" in two_samples(tmp_path, first, second)["kernels"].reason


def test_a_new_kernel_is_busy(tmp_path):
    readings = two_samples(tmp_path, base_system, lambda p: p.add(500, KERNEL, uid=1001))
    assert readings["kernels"] == Reading("kernels", BUSY, "Jupyter kernel 500 started")


# --- sessions: SSM, SSH, mosh, tmux, screen ---------------------------------------------------

SSM_WORKER = "/usr/bin/ssm-session-worker alice-0a1b2c3d4e i-0123456789abcdef0"


def test_ssm_only_user_working_in_a_shell_is_busy(tmp_path):
    """An SSM Session Manager shell opens no port-22 connection; its worker relays the typing."""

    def first(proc):
        base_system(proc)
        proc.add(600, "/usr/bin/amazon-ssm-agent", cpu_s=50)
        proc.add(610, SSM_WORKER, ppid=600, cpu_s=1.0, comm="ssm-session-wor")
        proc.add(620, "sh", ppid=610, uid=1001)

    def typing(proc):
        proc.add(610, SSM_WORKER, ppid=600, cpu_s=1.4, comm="ssm-session-wor")

    busy = two_samples(tmp_path / "a", first, typing)["sessions"]
    assert busy == Reading("sessions", BUSY, "SSM session 610 active (0.40 s CPU)")
    assert two_samples(tmp_path / "b", first, lambda p: None)["sessions"].state == IDLE


def test_ssm_port_forward_alone_is_a_tunnel_not_a_user(tmp_path):
    """A forgotten SSM port forward with a browser tab polling Jupyter does not keep it up."""

    def first(proc):
        base_system(proc)
        proc.add(610, SSM_WORKER, cpu_s=1.0, comm="ssm-session-wor")  # no shell under it

    def polling(proc):
        proc.add(610, SSM_WORKER, cpu_s=9.0, comm="ssm-session-wor")

    assert two_samples(tmp_path, first, polling)["sessions"].state == IDLE


def ssh_session(proc, *, cpu_s, shell=True, tty="pts/0"):
    proc.add(700, "sshd: alice [priv]", ppid=300, comm="sshd")
    proc.add(701, f"sshd: alice@{tty}", ppid=700, uid=1000, cpu_s=cpu_s, comm="sshd")
    if shell:
        proc.add(702, "-bash", ppid=701, uid=1000)


def test_ssh_shell_with_traffic_is_busy(tmp_path):
    def first(proc):
        base_system(proc)
        ssh_session(proc, cpu_s=2.0)

    busy = two_samples(tmp_path, first, lambda p: ssh_session(p, cpu_s=2.3))["sessions"]
    assert busy == Reading("sessions", BUSY, "SSH session 701 active (0.30 s CPU)")


def test_half_open_ssh_from_a_sleeping_laptop_is_idle(tmp_path):
    """The connection is still ESTABLISHED, but nothing flows through it."""

    def first(proc):
        base_system(proc)
        ssh_session(proc, cpu_s=2.0)

    assert two_samples(tmp_path, first, lambda p: None)["sessions"].state == IDLE


def test_forgotten_ssh_tunnel_is_idle_even_with_traffic(tmp_path):
    """`ssh -N -L 8888:...` with a tab polling Jupyter: a tunnel, judged by the kernels."""

    def first(proc):
        base_system(proc)
        ssh_session(proc, cpu_s=2.0, shell=False, tty="notty")

    second = lambda p: ssh_session(p, cpu_s=30.0, shell=False, tty="notty")  # noqa: E731
    assert two_samples(tmp_path, first, second)["sessions"].state == IDLE


def test_a_new_ssh_login_is_busy(tmp_path):
    second = lambda p: ssh_session(p, cpu_s=0.01)  # noqa: E731
    assert (
        two_samples(tmp_path, base_system, second)["sessions"].reason == "SSH session 701 started"
    )


@pytest.mark.parametrize(
    "cmdline,comm,kind",
    [
        ("mosh-server new -s -c 256 -l LANG=C.UTF-8", "mosh-server", "mosh"),
        ("tmux: server (/tmp/tmux-1000/default)", "tmux: server", "tmux"),
        ("SCREEN -S train", "SCREEN", "screen"),
    ],
)
def test_mosh_tmux_and_screen_busy_with_output_and_idle_without(tmp_path, cmdline, comm, kind):
    def first(proc):
        base_system(proc)
        proc.add(800, cmdline, uid=1000, cpu_s=5, comm=comm)
        proc.add(801, "-bash", ppid=800, uid=1000)

    def output(proc):
        proc.add(800, cmdline, uid=1000, cpu_s=5.5, comm=comm)

    busy = two_samples(tmp_path / "a", first, output)["sessions"]
    assert busy == Reading("sessions", BUSY, f"{kind} session 800 active (0.50 s CPU)")
    assert two_samples(tmp_path / "b", first, lambda p: None)["sessions"].state == IDLE


# --- user processes ---------------------------------------------------------------------------


def test_cpu_bound_work_in_nohup_is_busy_and_a_quiet_user_is_idle(tmp_path):
    def first(proc):
        base_system(proc)
        proc.add(900, "python tokenize.py", uid=1000, cpu_s=1000)

    busy = two_samples(tmp_path / "a", first, lambda p: p.add(900, "python tokenize.py", uid=1000,
                                                              cpu_s=1290))  # fmt: skip
    assert busy["processes"] == Reading(
        "processes", BUSY, "user processes used 290 s CPU (97% of a core)"
    )
    quiet = two_samples(tmp_path / "b", first, lambda p: p.add(900, "python tokenize.py", uid=1000,
                                                               cpu_s=1002))  # fmt: skip
    assert quiet["processes"].state == IDLE


def test_root_work_started_from_a_session_counts_but_root_daemons_do_not(tmp_path):
    def first(proc):
        base_system(proc)
        proc.add(800, "tmux: server (/tmp/tmux-1000/default)", uid=1000, comm="tmux: server")
        proc.add(801, "-bash", ppid=800, uid=1000)
        proc.add(802, "sudo make -j8", ppid=801, uid=0)
        proc.add(803, "cc1 big.c", ppid=802, uid=0, cpu_s=10)

    def compiling(proc):
        proc.add(803, "cc1 big.c", ppid=802, uid=0, cpu_s=200)
        proc.add(400, "/usr/bin/containerd", cpu_s=5000)  # a daemon's CPU is not the user's

    assert "190 s CPU" in two_samples(tmp_path, first, compiling)["processes"].reason
    only_daemon = two_samples(tmp_path / "b", base_system,
                              lambda p: p.add(400, "/usr/bin/containerd", cpu_s=5000))  # fmt: skip
    assert only_daemon["processes"].state == IDLE


def test_disk_io_of_user_processes_is_busy(tmp_path):
    def first(proc):
        base_system(proc)
        proc.add(900, "rsync -a /data/in /data/out", uid=1000, io_mib=10)

    def copying(proc):
        proc.add(900, "rsync -a /data/in /data/out", uid=1000, io_mib=900)

    assert two_samples(tmp_path, first, copying)["processes"].reason == (
        "user processes read or wrote 890 MiB"
    )


def test_corrupt_proc_entries_are_skipped(tmp_path):
    proc = FakeProc(tmp_path / "proc")
    base_system(proc)
    (tmp_path / "proc" / "777").mkdir()
    (tmp_path / "proc" / "777" / "stat").write_text("garbage")
    (tmp_path / "proc" / "778").mkdir()  # vanished mid-read: no files
    assert set(proc.read()) == {1, 300, 400}


# --- the decision -----------------------------------------------------------------------------


def tick(tmp_path, readings_list, settings=None, start=1_000_000.0):
    """Run one timer tick per readings; return the 1-based tick that stopped, and the log."""
    settings = settings or Settings(idle_minutes=60, interval_minutes=5)
    logged, stopped = [], []
    state = tmp_path / "state.json"
    for i, readings in enumerate(readings_list, start=1):
        did = idle_stop.run_once(
            settings,
            str(state),
            lambda _ctx, r=readings: (r, {}),
            now=start + i * INTERVAL_S,
            stop=lambda i=i: stopped.append(i),
            log=logged.append,
        )
        if did:
            return stopped[0], logged
    return None, logged


IDLE_ALL = [Reading("gpu", IDLE), Reading("sessions", IDLE), Reading("processes", IDLE)]
BASELINE = [Reading("processes", UNKNOWN, "first look: baseline taken")]


def test_stops_after_the_idle_minutes_and_not_before(tmp_path):
    at, log = tick(tmp_path, [BASELINE] + [IDLE_ALL] * 30)
    assert at == 1 + 12  # the baseline check, then 60 min at 5-minute checks
    assert "first check since boot: baseline taken, not counted" in log
    assert log[-1] == "idle for 12 consecutive checks (>= 60 min): powering off"


def test_any_busy_source_resets_the_count(tmp_path):
    busy = [Reading("sessions", BUSY, "SSH session 7 active (0.30 s CPU)")]
    at, log = tick(tmp_path, [IDLE_ALL] * 11 + [busy] + [IDLE_ALL] * 12)
    assert at == 24
    assert "busy: SSH session 7 active (0.30 s CPU)" in log


def test_stuck_nvidia_smi_holds_then_counts_as_idle_with_a_warning(tmp_path):
    stuck = [Reading("gpu", UNKNOWN, "nvidia-smi hung for 30 s"), Reading("processes", IDLE)]
    at, log = tick(tmp_path, [stuck] * 30)
    # Checks 1-2 are held (unknown), from the 3rd the GPU counts as idle: 3 + 11 more = 14.
    assert at == 14
    assert log[0] == ("unknown (1/3): nvidia-smi hung for 30 s; not counting this check as idle")
    assert "WARNING: nvidia-smi hung for 30 s for 3 checks in a row; treating it as idle" in log


def test_a_busy_machine_with_a_broken_driver_never_stops(tmp_path):
    readings = [Reading("gpu", UNKNOWN, "nvidia-smi failed"), Reading("kernels", BUSY, "k")]
    assert tick(tmp_path, [readings] * 100)[0] is None


def test_zero_minutes_disables(tmp_path):
    at, log = tick(tmp_path, [IDLE_ALL] * 50, Settings(idle_minutes=0))
    assert at is None and log[0] == "idle stop disabled (idle minutes is 0)"


def test_a_restarted_machine_counts_afresh(tmp_path):
    settings = Settings(idle_minutes=60, interval_minutes=5)
    tick(tmp_path, [IDLE_ALL] * 5, settings)
    assert json.loads((tmp_path / "state.json").read_text())["idle_count"] == 5
    # Three hours later (it was stopped and started): the old count is void.
    tick(tmp_path, [IDLE_ALL], settings, start=1_000_000.0 + 3 * 3600)
    assert json.loads((tmp_path / "state.json").read_text())["idle_count"] == 1


@pytest.mark.parametrize(
    "content",
    ["{not json", "[]", '{"idle_count": "many"}', '{"idle_count": 1, "unknown_runs": 0}', ""],
)
def test_a_corrupt_state_file_starts_afresh(tmp_path, content):
    (tmp_path / "state.json").write_text(content)
    at, log = tick(tmp_path, [IDLE_ALL] * 12)
    assert at == 12
    assert any("starting afresh" in line for line in log), log


def test_a_read_only_state_directory_is_logged_not_fatal(tmp_path):
    state_dir = tmp_path / "ro"
    state_dir.mkdir()
    state_dir.chmod(0o500)
    try:
        logged = []
        idle_stop.run_once(
            Settings(), str(state_dir / "sub" / "state.json"), lambda _c: (IDLE_ALL, {}),
            stop=lambda: None, log=logged.append,
        )  # fmt: skip
    finally:
        state_dir.chmod(0o700)
    if os.geteuid() != 0:  # root writes anyway
        assert any("this check is not remembered" in line for line in logged), logged


def test_a_probe_that_raises_is_unknown_not_a_crash(tmp_path):
    def broken(_ctx):
        raise KeyError("surprise")

    logged = []
    idle_stop.run_once(Settings(), str(tmp_path / "s.json"), broken, stop=None, log=logged.append)
    assert logged[0].startswith("unknown (1/3): sampling failed: KeyError")


def test_bad_settings_are_reported_and_defaults_kept():
    problems: list[str] = []
    env = {"IDLE_STOP_MINUTES": "ninety", "IDLE_STOP_INTERVAL": "0", "IDLE_STOP_GPU_PCT": "20"}
    s = idle_stop.settings_from(env, problems)
    assert (s.idle_minutes, s.interval_minutes, s.gpu_threshold) == (60, 5, 20)
    assert problems[0].startswith("ERROR: IDLE_STOP_MINUTES='ninety' is not a valid number")


def test_intervals_round_up():
    assert idle_stop.intervals_needed(61, 5) == 13
    assert idle_stop.intervals_needed(1, 5) == 1


# --- the script as the timer runs it ----------------------------------------------------------


def run_script(tmp_path, env_extra, *args):
    env = {
        **os.environ,
        "IDLE_STOP_MINUTES": "10",
        "IDLE_STOP_INTERVAL": "5",
        "IDLE_STOP_STATE": str(tmp_path / "state" / "state.json"),
        "IDLE_STOP_PROC_ROOT": str(tmp_path / "proc"),
        "IDLE_STOP_JUPYTER_GLOB": str(tmp_path / "no-runtime" / "*.json"),
        **env_extra,
    }
    cmd = [sys.executable, str(SCRIPT_PATH), "--dry-run", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=True)


def test_script_end_to_end(tmp_path):
    proc = FakeProc(tmp_path / "proc")
    base_system(proc)
    bindir = nvidia_smi(tmp_path, "echo '0, 0'")
    path = {"PATH": f"{bindir}:{os.environ['PATH']}"}
    assert "baseline taken" in run_script(tmp_path, path).stdout
    assert "idle check 1/2" in run_script(tmp_path, path).stdout
    assert "would power off" in run_script(tmp_path, path).stdout
    proc.add(900, "python train.py", uid=1000, cpu_s=200)
    out = run_script(tmp_path, path).stdout
    assert "busy: user processes" in out and "power" not in out


def test_script_with_a_stuck_nvidia_smi_and_a_bad_setting(tmp_path):
    FakeProc(tmp_path / "proc")
    env = {
        "PATH": f"{nvidia_smi(tmp_path, 'exec sleep 30')}:{os.environ['PATH']}",
        "IDLE_STOP_GPU_TIMEOUT": "0.5",
        "IDLE_STOP_USER_IO_MIB": "lots",
    }
    res = run_script(tmp_path, env)
    assert "nvidia-smi hung for 0.5 s" in res.stdout
    assert "IDLE_STOP_USER_IO_MIB='lots' is not a valid number" in res.stdout
    assert "Traceback" not in res.stderr
