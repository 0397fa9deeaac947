"""Test hosts on a private LAN of network namespaces, and dlcheck allreduce run on them.

Lan(n) makes one namespace per node, each with an eth0 (10.231.7.<i+1>/24) whose veth peer sits
on a bridge in a hub namespace: separate network stacks joined by a switch, all inside
namespaces this test makes and removes (nothing is added to the machine's own network). One
node can be slowed (tc tbf on both ends of its link) or have a port blocked (an nftables rule
in its namespace dropping outgoing packets to that port).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUBNET = "10.231.7"


def lan_available() -> str | None:
    """Why network namespaces cannot be used here, or None."""
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    if not shutil.which("ip"):
        return "needs iproute2's ip"
    return None


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=30)


class Lan:
    def __init__(self, nodes: int):
        tag = f"dl{os.getpid() % 100000}"
        self.hub = f"{tag}-hub"
        self.names = [f"{tag}-n{i}" for i in range(nodes)]
        self.peers = [f"{tag}p{i}" for i in range(nodes)]  # hub ends, <= 15 characters

    def address(self, node: int) -> str:
        return f"{SUBNET}.{node + 1}"

    def __enter__(self) -> Lan:
        try:
            _ip("netns", "add", self.hub)
            _ip("-n", self.hub, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.hub, "link", "set", "br0", "up")
            for node, (name, peer) in enumerate(zip(self.names, self.peers, strict=True)):
                _ip("netns", "add", name)
                _ip("-n", name, "link", "set", "lo", "up")
                _ip("-n", name, "link", "add", "eth0", "type", "veth", "peer", "name", peer,
                    "netns", self.hub)  # fmt: skip
                _ip("-n", name, "addr", "add", f"{self.address(node)}/24", "dev", "eth0")
                _ip("-n", name, "link", "set", "eth0", "up")
                _ip("-n", self.hub, "link", "set", peer, "master", "br0")
                _ip("-n", self.hub, "link", "set", peer, "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for name in (*self.names, self.hub):  # deleting a namespace deletes its veth ends
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)

    def slow(self, node: int, rate: str = "40mbit") -> None:
        """Limit the node's link both ways, as a bad cable or a 100 Mb/s port would."""
        for namespace, device in ((self.names[node], "eth0"), (self.hub, self.peers[node])):
            _ip("netns", "exec", namespace, "tc", "qdisc", "add", "dev", device, "root", "tbf",
                "rate", rate, "burst", "32kbit", "latency", "400ms")  # fmt: skip

    def block_port(self, node: int, port: int) -> None:
        """Drop the node's outgoing TCP to `port` (a firewall that answers nothing)."""
        rules = ("table inet dlcheck_test {\n chain out {\n  type filter hook output priority 0;\n"
                 f"  tcp dport {port} drop\n }}\n}}\n")  # fmt: skip
        subprocess.run(["ip", "netns", "exec", self.names[node], "nft", "-f", "-"], input=rules,
                       check=True, capture_output=True, text=True, timeout=30)  # fmt: skip


@dataclass
class NodeRun:
    code: int
    body: dict | None
    stderr: str
    seconds: float


def run_nodes(lan: Lan | None, nnodes: int, port: int, *extra: str, timeout: float = 170,
              args_for=None, only=None) -> list[NodeRun]:  # fmt: skip
    """`dlcheck allreduce --json` on every node (or those in `only`) at once, in its namespace
    when `lan`, node 0 at --master; args_for(node) may add arguments for one node."""
    master = f"{lan.address(0) if lan else '127.0.0.1'}:{port}"
    processes = []
    for node in range(nnodes) if only is None else only:
        argv = [sys.executable, "-m", "dlcheck", "allreduce", "--json", "--backend", "gloo",
                "--nnodes", str(nnodes), "--node-rank", str(node), "--master", master,
                "--node-names", ",".join(f"node{i}" for i in range(nnodes)), *extra,
                *(args_for(node) if args_for else ())]  # fmt: skip
        if lan is not None:
            argv = ["ip", "netns", "exec", lan.names[node], *argv]
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        processes.append((time.monotonic(), subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)))
    runs = []
    for started, process in processes:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            err += "\n[killed by the test: it hung]"
        try:
            body = json.loads(out)
        except ValueError:
            body = None
        runs.append(NodeRun(process.returncode, body, err, time.monotonic() - started))
    return runs
