"""The nspawn host harness itself: several hosts at once, distinct ports, always cleaned up."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.hosts import nspawn

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="systemd-nspawn needs root"),
    pytest.mark.skipif(bool(nspawn.missing_tools()), reason="needs requirements/apt-playbooks.txt"),
]


class Boom(Exception):
    pass


def test_two_hosts_boot_with_their_own_ports_and_vanish_when_the_block_fails():
    seen = []
    with pytest.raises(Boom):
        with nspawn.boot_hosts(
            2, prefix="hz", ssh_port_start=2260, jupyter_port_start=18960
        ) as hosts:
            for host in hosts:
                assert host.ssh("systemctl is-system-running").stdout.strip() in (
                    "running",
                    "degraded",
                )
                assert host.ssh("hostname").stdout.strip() == host.name
                seen.append((host.process.pid, host.root, host.ssh_port, host.jupyter_port))
            ports = [port for *_, ssh, jupyter in seen for port in (ssh, jupyter)]
            assert len(set(ports)) == 4
            raise Boom
    for pid, root, *_ in seen:
        assert not Path(f"/proc/{pid}").exists(), f"systemd-nspawn {pid} still running"
        assert not root.exists(), f"{root} left behind"
