"""Where the nodes of a multi-node all-reduce meet before any rank starts.

Node 0's dlcheck listens on --master's port; every other node's dlcheck connects, says who it
is (node rank, host name, how many ranks it brings) and what it was asked to run. Node 0
checks that everyone asked for the same test, numbers the ranks, and sends everyone the plan;
then it closes the port, and its rank 0 opens torch.distributed's store on that same port, so
a firewall needs one port open, as for torchrun.

Everything here has a deadline: a node that cannot reach the port (a firewall drops the
packets, nothing listens, a wrong address) fails with its own name and the address it tried,
and node 0 fails naming the nodes that never came. Plain sockets and JSON lines, no torch: the
parent process never imports it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import socket
import struct
import time
from dataclasses import asdict, dataclass, field
from typing import Any

PROTOCOL = "dlcheck-allreduce/1"
LINE_LIMIT = 64 * 1024
RETRY_S = 0.5  # between connection attempts while node 0 is not listening yet
PLAN_GRACE_S = 5.0  # a joined node waits this much longer than node 0 for its answer


class RendezvousError(Exception):
    """The nodes did not all meet; the message names who and why, in one line."""


@dataclass
class NodeInfo:
    node_rank: int
    hostname: str
    ranks: int  # local ranks this node runs
    address: str | None = None  # the address this node reaches node 0 from
    interface: str | None = None  # the network interface of that address
    link_speed_mbps: int | None = None  # /sys/class/net/IFACE/speed; None for lo, unknown
    first_rank: int = 0  # global rank of its local rank 0 (set by node 0)
    devices: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def interface_of(address: str) -> tuple[str | None, int | None]:
    """(name, link speed in Mb/s) of the interface holding IPv4 `address` on this machine."""
    for _, name in socket.if_nameindex():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            try:
                packed = fcntl.ioctl(probe.fileno(), 0x8915,  # SIOCGIFADDR
                                     struct.pack("256s", name.encode()[:15]))  # fmt: skip
            except OSError:
                continue
        if socket.inet_ntoa(packed[20:24]) == address:
            return name, _link_speed(name)
    return None, None


def _link_speed(name: str) -> int | None:
    try:
        with open(f"/sys/class/net/{name}/speed") as handle:
            speed = int(handle.read().strip())
    except (OSError, ValueError):  # lo and some virtual links have none
        return None
    return speed if speed > 0 else None


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _receive(sock: socket.socket, deadline: float) -> dict[str, Any] | None:
    """One JSON line, or None when the peer closed or the deadline passed."""
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0 or len(data) > LINE_LIMIT:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except (TimeoutError, OSError):
            return None
        if not chunk:
            return None
        data += chunk
    try:
        message = json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def serve(port: int, me: NodeInfo, nnodes: int, settings: dict[str, Any], timeout_s: float,
          names: dict[int, str] | None = None) -> list[NodeInfo]:  # fmt: skip
    """Node 0: wait up to timeout_s for nodes 1..nnodes-1; every node's info, by node rank."""
    deadline = time.monotonic() + timeout_s
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("", port))
    except OSError as error:
        listener.close()
        raise RendezvousError(
            f"node 0 ({me.hostname}) cannot listen on port {port}: {error.strerror} (another "
            "program holds it? pick another --master port)"
        ) from None
    listener.listen(max(8, nnodes))
    joined: dict[int, tuple[socket.socket, NodeInfo]] = {}
    refused: list[str] = []
    try:
        while len(joined) < nnodes - 1 and time.monotonic() < deadline:
            listener.settimeout(max(0.05, min(1.0, deadline - time.monotonic())))
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            hello = _receive(conn, min(deadline, time.monotonic() + 10))
            problem = _check_hello(hello, nnodes, settings, joined)
            if problem:
                refused.append(problem)
                with contextlib.suppress(OSError):
                    _send(conn, {"error": f"node 0 ({me.hostname}) refused: {problem}"})
                conn.close()
                continue
            node = NodeInfo(**{k: hello["node"][k] for k in ("node_rank", "hostname", "ranks",
                                                             "address", "interface",
                                                             "link_speed_mbps")})  # fmt: skip
            if me.address is None:  # the address the others reach node 0 at
                me.address = conn.getsockname()[0]
                me.interface, me.link_speed_mbps = interface_of(me.address)
            joined[node.node_rank] = (conn, node)
        listener.close()  # before the plan goes out: rank 0's store takes this port next
        if len(joined) < nnodes - 1:
            missing = [n for n in range(1, nnodes) if n not in joined]
            named = ", ".join(_node_name(n, names) for n in missing)
            why = f"; refused: {'; '.join(refused)}" if refused else ""
            message = (f"{len(missing)} of {nnodes} nodes did not reach the rendezvous on "
                       f"port {port} of node 0 ({me.hostname}) within {timeout_s:g} s: "
                       f"{named}{why}")  # fmt: skip
            for conn, _ in joined.values():
                with contextlib.suppress(OSError):
                    _send(conn, {"error": message})
            raise RendezvousError(message)
        nodes = [me, *(node for _, (_, node) in sorted(joined.items()))]
        _number(nodes)
        plan = {"nodes": [n.to_dict() for n in nodes]}
        for conn, _ in joined.values():
            with contextlib.suppress(OSError):
                _send(conn, plan)
        for conn, _ in joined.values():  # they close first: no TIME_WAIT on node 0's port
            _receive(conn, time.monotonic() + 2)
        return nodes
    finally:
        listener.close()
        for conn, _ in joined.values():
            conn.close()


def _node_name(rank: int, names: dict[int, str] | None) -> str:
    name = (names or {}).get(rank)
    return f"node {rank} ({name})" if name else f"node {rank}"


def _check_hello(hello, nnodes: int, settings: dict[str, Any], joined) -> str | None:
    if not hello or hello.get("protocol") != PROTOCOL or not isinstance(hello.get("node"), dict):
        return "a connection that is not a dlcheck allreduce of this version"
    node = hello["node"]
    rank = node.get("node_rank")
    if not isinstance(rank, int) or not 1 <= rank < nnodes:
        return f"node rank {rank!r} is not in 1..{nnodes - 1}"
    if rank in joined:
        return f"node rank {rank} came twice ({joined[rank][1].hostname}, {node.get('hostname')})"
    if not isinstance(node.get("ranks"), int) or node["ranks"] < 1:
        return f"node {rank} brings no ranks"
    theirs = hello.get("settings") or {}
    differ = [f"{key} {theirs.get(key)!r} vs {value!r}" for key, value in settings.items()
              if theirs.get(key) != value]  # fmt: skip
    if differ:
        return f"node {rank} ({node.get('hostname')}) asked for a different test: " + ", ".join(
            differ)
    return None


def _number(nodes: list[NodeInfo]) -> None:
    first = 0
    for node in nodes:
        node.first_rank = first
        first += node.ranks


def join(host: str, port: int, me: NodeInfo, settings: dict[str, Any], timeout_s: float
         ) -> list[NodeInfo]:  # fmt: skip
    """Node 1..n-1: reach node 0 within timeout_s and get the plan (every node's info)."""
    deadline = time.monotonic() + timeout_s
    last = "no attempt"
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RendezvousError(
                f"node {me.node_rank} ({me.hostname}) cannot reach the rendezvous at "
                f"{host}:{port} within {timeout_s:g} s: {last}"
            )
        try:
            sock = socket.create_connection((host, port), timeout=min(3.0, left))
            break
        except TimeoutError:
            last = "connection attempts time out (a firewall dropping the packets?)"
        except ConnectionRefusedError:
            last = "connection refused (node 0 not started yet, or a firewall rejecting)"
        except OSError as error:  # no route, unknown host name
            last = str(error.strerror or error)
        time.sleep(min(RETRY_S, max(0.0, deadline - time.monotonic())))
    with sock:
        me.address = sock.getsockname()[0]
        me.interface, me.link_speed_mbps = interface_of(me.address)
        _send(sock, {"protocol": PROTOCOL, "node": me.to_dict(), "settings": settings})
        # Node 0 may still be waiting for the others: its own deadline, plus a margin.
        answer = _receive(sock, time.monotonic() + timeout_s + PLAN_GRACE_S)
    if answer is None:
        raise RendezvousError(
            f"node {me.node_rank} ({me.hostname}) reached {host}:{port} but got no plan from "
            "node 0 (it stopped, or is not a dlcheck allreduce)"
        )
    if "error" in answer:
        raise RendezvousError(str(answer["error"])[:500])
    try:
        return [NodeInfo(**node) for node in answer["nodes"]]
    except (KeyError, TypeError) as error:
        raise RendezvousError(f"node 0 sent an unreadable plan ({error})") from None
