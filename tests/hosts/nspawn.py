"""Fresh Debian 12/13 systemd hosts for tests, booted with systemd-nspawn and reached over SSH.

    with boot_hosts(2, binds_ro={"/opt/wheels": "/srv/wheelhouse"}) as hosts:
        hosts[0].ssh("systemctl is-system-running")
        inventory = write_inventory(hosts, path)
    with boot_hosts(suites=["bookworm", "trixie"], tmpfs={"/tmp": "size=64M"}) as hosts: ...

Each host is a copy of a cached debootstrap root file system (one per Debian suite, built when
missing, kept outside the repository), runs systemd as PID 1, and shares the machine's network
namespace: every host gets its own SSH port and its own Jupyter port, chosen free. Hosts are
always stopped and deleted when the `with` block ends, on errors and Ctrl-C too.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CACHE_DIR = Path(os.environ.get("DLCHECK_TEST_CACHE", "/var/cache/dlcheck-test"))
SUITE = "bookworm"  # the default; SUITES lists every suite the harness can build
SUITES = ("bookworm", "trixie")
MIRROR = os.environ.get("DLCHECK_TEST_MIRROR", "http://deb.debian.org/debian")
# What a minimal cloud or server image has: systemd, Python for Ansible, SSH, sudo.
INCLUDE = "systemd,systemd-sysv,dbus,python3,sudo,openssh-server,ca-certificates"
# Every host is new and its key throwaway: no known_hosts entries for them.
_SSH_NO_KNOWN_HOSTS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
TOOLS = ("debootstrap", "systemd-nspawn", "ssh", "ssh-keygen", "tar")


class HostError(RuntimeError):
    """A host could not be built, booted or reached; the message says what to do."""


@dataclass
class Host:
    name: str
    suite: str
    root: Path
    ssh_port: int
    jupyter_port: int
    key: Path
    log: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    def ssh_args(self) -> list[str]:
        return [
            "ssh",
            "-i",
            str(self.key),
            "-p",
            str(self.ssh_port),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "root@127.0.0.1",
        ]

    def ssh(
        self, command: str, *, check: bool = True, input: str | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess:
        """Run a shell command on the host as root; returns the completed process (text)."""
        result = subprocess.run(
            [*self.ssh_args(), command],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise HostError(
                f"{self.name}: `{command}` exited {result.returncode}: {result.stderr.strip()}"
            )
        return result

    def inventory_vars(self) -> dict[str, object]:
        return {
            "ansible_host": "127.0.0.1",
            "ansible_port": self.ssh_port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.key),
            "ansible_ssh_common_args": _SSH_NO_KNOWN_HOSTS,
            "jupyter_port": self.jupyter_port,
        }


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def ensure_image(cache_dir: Path = CACHE_DIR, suite: str = SUITE) -> Path:
    """Return the cached root file system tarball, running debootstrap first when it is missing."""
    if suite not in SUITES:
        raise HostError(f"unknown suite {suite!r}; the harness builds {', '.join(SUITES)}")
    tarball = cache_dir / f"{suite}.tar"
    if tarball.exists():
        return tarball
    if missing := missing_tools():
        raise HostError(
            f"missing tools {missing}; fix: apt-get install "
            "debootstrap systemd-container openssh-client"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    # One builder at a time: a second test run waits rather than racing debootstrap.
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():
            return tarball
        build = Path(tempfile.mkdtemp(prefix="rootfs-", dir=cache_dir))
        # mkdtemp makes 0700, and tar records it as the mode of "/": unprivileged users
        # (messagebus, jupyter) could not reach anything and dbus never starts.
        build.chmod(0o755)
        started = time.monotonic()
        try:
            subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={INCLUDE}", suite, build, MIRROR],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            partial = tarball.with_suffix(".tar.partial")
            subprocess.run(["tar", "--numeric-owner", "-C", build, "-cf", partial, "."], check=True)
            partial.rename(tarball)
            print(f"nspawn: built {tarball} in {time.monotonic() - started:.0f} s", file=sys.stderr)
        except subprocess.CalledProcessError as error:
            detail = (error.stderr or b"").decode(errors="replace").strip().splitlines()[-3:]
            raise HostError(f"building the {suite} image failed: {' '.join(detail)}") from error
        finally:
            shutil.rmtree(build, ignore_errors=True)
    return tarball


def free_port(start: int, taken: set[int]) -> int:
    """First port >= start that nobody listens on and that no host of ours was given."""
    for port in range(start, start + 1000):
        if port in taken:
            continue
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        taken.add(port)
        return port
    raise HostError(f"no free port in {start}..{start + 999}")


def _prepare_root(tarball: Path, root: Path, ssh_port: int, public_key: str) -> None:
    root.mkdir(parents=True)
    subprocess.run(["tar", "--numeric-owner", "-C", root, "-xpf", tarball], check=True)
    root.chmod(0o755)  # images cached before the fix above carry a 0700 "/"
    # The network namespace is shared with this machine: sshd must not take port 22.
    conf = root / "etc/ssh/sshd_config.d/dlcheck-test.conf"
    conf.write_text(f"Port {ssh_port}\nListenAddress 127.0.0.1\nPasswordAuthentication no\n")
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(public_key)
    # A fresh machine-id per host, as a new install has (debootstrap leaves it empty or shared).
    (root / "etc/machine-id").write_text("")


def _set_hostname(root: Path, name: str) -> None:
    # debootstrap copies the build machine's /etc/hostname; each host names itself.
    (root / "etc/hostname").write_text(name + "\n")


def _wait_until_up(host: Host, deadline: float) -> None:
    state = ""
    while time.monotonic() < deadline:
        if host.process is not None and host.process.poll() is not None:
            raise HostError(f"{host.name} exited while booting; see {host.log}")
        result = host.ssh("systemctl is-system-running", check=False, timeout=20)
        state = result.stdout.strip()
        if state in ("running", "degraded"):
            return
        time.sleep(1)
    raise HostError(f"{host.name} did not boot (last state {state!r}); see {host.log}")


def _stop(host: Host) -> None:
    process = host.process
    if process is None or process.poll() is not None:
        return
    # SIGTERM asks systemd-nspawn to shut the container down cleanly.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@contextlib.contextmanager
def boot_hosts(
    count: int = 1,
    *,
    suites: list[str] | None = None,
    prefix: str = "dlc",
    binds_ro: dict[str, str] | None = None,
    tmpfs: dict[str, str] | None = None,
    ssh_port_start: int = 2222,
    jupyter_port_start: int = 18888,
    workdir: Path | None = None,
    boot_timeout: float = 120,
) -> Iterator[list[Host]]:
    """Boot `count` fresh hosts (or one per entry of `suites`); yield them; always stop and delete
    them afterwards. `tmpfs` mounts a tmpfs per path, e.g. {"/tmp": "size=64M"}."""
    suites = list(suites) if suites else [SUITE] * count
    tarballs = {suite: ensure_image(suite=suite) for suite in dict.fromkeys(suites)}
    base = Path(tempfile.mkdtemp(prefix=f"{prefix}-hosts-", dir=workdir or "/var/tmp"))
    key = base / "id_ed25519"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "dlcheck-test", "-f", key],
        check=True,
    )
    public_key = key.with_suffix(".pub").read_text()
    taken: set[int] = set()
    hosts: list[Host] = []
    # A SIGTERM (a CI timeout) must still stop the hosts: turn it into SystemExit meanwhile.
    previous = signal.getsignal(signal.SIGTERM)
    if previous == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    # Jupyter binds its port only after the converge, so two test runs at once would both see
    # the same port free: offset the scan by this process so concurrent runs do not collide.
    # The same for sshd, which binds only once its host has booted (test workers boot at once).
    jupyter_start = jupyter_port_start + 10 * (os.getpid() % 100)
    ssh_start = ssh_port_start + 10 * (os.getpid() % 100)
    try:
        for index, suite in enumerate(suites):
            name = f"{prefix}{index}-{os.getpid()}"[:64]
            host = Host(
                name=name,
                suite=suite,
                root=base / name,
                ssh_port=free_port(ssh_start, taken),
                jupyter_port=free_port(jupyter_start, taken),
                key=key,
                log=base / f"{name}.log",
            )
            _prepare_root(tarballs[suite], host.root, host.ssh_port, public_key)
            _set_hostname(host.root, name)
            command = [
                "systemd-nspawn",
                "--quiet",
                "--register=no",
                "--keep-unit",
                f"--machine={name}",
                f"--hostname={name}",
                "-D",
                str(host.root),
                *(f"--bind-ro={src}:{dst}" for src, dst in (binds_ro or {}).items()),
                *(f"--tmpfs={path}:{options}" for path, options in (tmpfs or {}).items()),
                "--boot",
            ]
            with open(host.log, "wb") as log:
                host.process = subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            hosts.append(host)
        deadline = time.monotonic() + boot_timeout
        for host in hosts:
            _wait_until_up(host, deadline)
        yield hosts
    finally:
        for host in hosts:
            _stop(host)
        shutil.rmtree(base, ignore_errors=True)
        if previous == signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _exit_on_sigterm(signum, frame):
    raise SystemExit(128 + signum)


def write_inventory(
    hosts: list[Host],
    path: Path,
    group: str = "workstations",
    host_vars: dict | None = None,
    per_host: dict[str, dict] | None = None,
) -> Path:
    """Write a YAML inventory (JSON is valid YAML) naming each host by its name. `host_vars`
    go to every host, `per_host[name]` to that host only (and win)."""
    import json

    per_host = per_host or {}
    inventory = {
        group: {
            "hosts": {
                h.name: {**h.inventory_vars(), **(host_vars or {}), **per_host.get(h.name, {})}
                for h in hosts
            },
        }
    }
    path.write_text(json.dumps({"all": {"children": inventory}}, indent=2))
    return path
