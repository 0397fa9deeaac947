"""All-reduce readiness, nccl-tests style: this host's GPUs (or CPU processes), or many hosts.

One child process per rank (dlcheck.children: own process group, deadline, cleanup), each
`python -m dlcheck.allreduce PLAN RANK LOCAL_RANK`. The parent never imports torch. On one
host the ranks meet at tcp://127.0.0.1:<free port>. Across hosts (--nnodes), the dlcheck of
every node first meets node 0's at --master (dlcheck.rendezvous: bounded in time, names the
node that does not come), then each node starts its ranks: one per GPU with NCCL, or
processes with gloo on CPU hosts, and they meet in torch.distributed on that same port.

Each rank fills a float32 buffer with values whose sum it knows, times `iters`
all_reduce(SUM) calls after `warmup` untimed ones, and checks every element of the result:
first across all ranks, then within each pair of nodes (pairs that share no node run at the
same time, in rounds; the pairs' calls interleaved), so a slow node stands out against the
others.

Bandwidth as nccl-tests reports it (NVIDIA/nccl-tests doc/PERFORMANCE.md):
  algbw = bytes / time           busbw = algbw * 2(n-1)/n
busbw is comparable across rank counts: it approaches the slowest link's speed.
Time per call is the slowest rank's, median over the timed calls.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from importlib.util import find_spec
from itertools import combinations
from typing import Any

from dlcheck import children
from dlcheck.text import clean

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:I?B)?\s*$", re.IGNORECASE)
ELEMENT_BYTES = 4  # float32
MAX_SIZE = 1 << 40  # 1 TiB per rank: more than any GPU holds; above it, a typo
SLOW_SHARE = 0.5  # a node whose pairs reach under half the others' bus bandwidth is "slow"
LINK_SHARE = 0.25  # busbw under this share of the slowest link's speed is worth a look
VISIT_CALLS = 5  # timed calls to one pair before the next pair's turn
ALL_PAIRS_UP_TO = 16  # nodes; above, only neighbours (i, i+1) are paired: n pairs, not n^2/2


def parse_size(text: str) -> int:
    """'32M' -> 33554432 bytes (K/M/G are powers of 1024, as in nccl-tests -b/-e)."""
    match = _SIZE_RE.match(text)
    if not match:
        raise ValueError(f"cannot read size {text!r}; use bytes or a K/M/G suffix, e.g. 32M")
    number = float(match.group(1)) * _UNITS[match.group(2).upper()]  # 400 digits: inf
    if not number <= MAX_SIZE:
        raise ValueError(f"size {text[:40]!r} is over 1 TiB per rank (the limit: 1024G)")
    value = int(number)
    if value < ELEMENT_BYTES:
        raise ValueError(f"size {text!r} is below one float32 element ({ELEMENT_BYTES} bytes)")
    return value


def bus_factor(ranks: int) -> float:
    """nccl-tests' all-reduce correction: each byte crosses 2(n-1)/n links."""
    return 2 * (ranks - 1) / ranks if ranks > 0 else 0.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PairResult:
    """One all-reduce among the ranks of two nodes."""

    nodes: list[int]
    hosts: list[str]
    ranks: int
    median_time_us: float
    algbw_gbps: float
    busbw_gbps: float
    wrong_elements: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AllreduceResult:
    backend: str
    ranks: int
    size_bytes: int
    iters: int
    warmup: int
    status: str = "PASS"  # PASS | WARN | FAIL | SKIP
    devices: list[str] = field(default_factory=list)
    median_time_us: float | None = None
    min_time_us: float | None = None
    algbw_gbps: float | None = None  # GB/s, 1e9 bytes
    busbw_gbps: float | None = None
    wrong_elements: int | None = None  # elements differing from the expected sum, all ranks
    reason: str | None = None  # why SKIP, WARN or FAIL, one line
    nnodes: int = 1
    node_rank: int = 0
    nodes: list = field(default_factory=list)  # list[rendezvous.NodeInfo]
    pairs: list[PairResult] = field(default_factory=list)
    slow_node: str | None = None  # the host name the verdict blames
    fix: str | None = None

    @property
    def elements(self) -> int:
        return self.size_bytes // ELEMENT_BYTES

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["nodes"] = [n.to_dict() if hasattr(n, "to_dict") else n for n in self.nodes]
        return {**data, "elements": self.elements, "bus_factor": bus_factor(self.ranks)}


@dataclass(frozen=True)
class AllreduceOptions:
    backend: str = "nccl"
    size_bytes: int = 32 * 1024**2
    iters: int = 20
    warmup: int = 5
    ranks: int | None = None  # on this node: default GPU count (nccl) or 2 (gloo, one node)
    timeout_s: float = 300.0
    nnodes: int = 1
    node_rank: int = 0
    master: str | None = None  # HOST:PORT of node 0 (multi-node)
    rendezvous_timeout_s: float = 30.0
    node_names: tuple[str, ...] = ()  # what to call each node in messages (inventory names)


# ---------------------------------------------------------------- one rank (a child process)


def main(argv: list[str]) -> int:
    children.bind_to_parent()
    plan_path, rank, local_rank = argv[0], int(argv[1]), int(argv[2])
    result_path = os.environ["DLCHECK_RESULT"]
    with open(plan_path, encoding="utf-8") as handle:
        plan = json.load(handle)
    try:
        report = _measure(plan, rank, local_rank)
    except Exception as error:  # the parent turns this into a one-line FAIL
        with open(result_path, "w") as out:
            json.dump({"error": f"{type(error).__name__}: {error}"}, out)
        return 1
    with open(result_path, "w") as out:
        json.dump(report, out)
    return 0


def _measure(plan: dict[str, Any], rank: int, local_rank: int) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    backend, world = plan["backend"], plan["world"]
    use_cuda = backend == "nccl"
    device = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend,
        init_method=f"tcp://{plan['master_addr']}:{plan['port']}",
        rank=rank,
        world_size=world,
        timeout=timedelta(seconds=plan["timeout_s"]),
        **({"device_id": device} if use_cuda else {}),
    )
    try:
        sync = torch.cuda.synchronize if use_cuda else (lambda: None)
        run = _Timer(torch, dist, device, sync, plan["elements"], plan["iters"], plan["warmup"])
        world_times, world_wrong = run(None, world, rank)
        mine = _time_pairs(run, dist, plan, rank)
        gathered = [None] * world
        dist.all_gather_object(gathered, {"device": _device_name(torch, device), "pairs": mine})
        pairs = {key: value for part in gathered for key, value in part["pairs"].items()}
        return {"times": world_times, "wrong": world_wrong, "pairs": pairs,
                "devices": [part["device"] for part in gathered]}  # fmt: skip
    finally:
        dist.destroy_process_group()


def _time_pairs(run: _Timer, dist, plan: dict[str, Any], rank: int) -> dict[str, Any]:
    """Every pair's calls, interleaved: the warm-up, then visits of VISIT_CALLS timed calls to
    every pair, round after round (a barrier between rounds, whose pairs share nodes). A burst
    of load on the machine then slows every pair alike, not the one pair measured while it
    lasted: timed in one block per pair, 6 of 15 three-node runs on a loopback beside bursty
    CPU load named a "slow" node, 0 of 15 in turns. Each visit opens with an untimed call,
    which absorbs how unevenly the ranks leave the barrier."""
    members = {tuple(pair): _pair_ranks(plan, pair) for pair in plan["pairs"]}
    # Every rank creates every pair's group, in the same order (torch requires it).
    groups = {pair: dist.new_group(ranks) for pair, ranks in members.items()}
    rounds = [[tuple(pair) for pair in pairs] for pairs in plan["rounds"]]
    # per round, this rank's pair (at most one) and its members
    mine = [[(pair, members[pair]) for pair in pairs if rank in members[pair]] for pairs in rounds]
    times = {pair: [] for pairs in mine for pair, _ in pairs}
    wrong = dict.fromkeys(times, 0)
    # (untimed, timed) calls to each pair per visit: the warm-up, then the timed visits
    visits = [(run.warmup, 0)] + [(1, min(VISIT_CALLS, run.iters - done))
                                  for done in range(0, run.iters, VISIT_CALLS)]  # fmt: skip
    for untimed, timed in visits:
        for pairs in mine:
            for pair, members in pairs:
                for call in range(untimed + timed):
                    elapsed, bad = run.call(groups[pair], len(members), members.index(rank))
                    wrong[pair] += bad
                    if call >= untimed:
                        times[pair].append(elapsed)
            dist.barrier()
    found = {}
    for pair, members in (p for pairs in mine for p in pairs):  # one order on every member
        slowest, total = run.slowest(groups[pair], times[pair], wrong[pair])
        if rank == members[0]:
            found[f"{pair[0]}-{pair[1]}"] = {"times": slowest, "wrong": total}
    return found


class _Timer:
    """Timed all_reduce(SUM) on a group: per-call times of the slowest member, wrong values."""

    def __init__(self, torch, dist, device, sync, elements, iters, warmup):
        self.torch, self.dist, self.device, self.sync = torch, dist, device, sync
        self.iters, self.warmup = iters, warmup
        self.pattern = (torch.arange(elements, device=device) % 7).to(torch.float32)
        self.buffer = torch.empty(elements, dtype=torch.float32, device=device)

    def __call__(self, group, size: int, index: int) -> tuple[list[float], int]:
        """`warmup` untimed and `iters` timed calls in a row."""
        times, wrong = [], 0
        for step in range(self.warmup + self.iters):
            elapsed, bad = self.call(group, size, index)
            wrong += bad
            if step >= self.warmup:
                times.append(elapsed)
        return self.slowest(group, times, wrong)

    def call(self, group, size: int, index: int) -> tuple[float, int]:
        """One call: its seconds on this member, and the elements that came back wrong."""
        # Member i contributes pattern + i + 1; the sum is pattern * n + n(n+1)/2, exact.
        expected = self.pattern * size + size * (size + 1) / 2
        self.buffer.copy_(self.pattern).add_(index + 1)
        self.sync()
        start = time.perf_counter()
        self.dist.all_reduce(self.buffer, op=self.dist.ReduceOp.SUM, group=group)
        self.sync()
        elapsed = time.perf_counter() - start
        return elapsed, int((self.buffer != expected).sum().item())

    def slowest(self, group, times: list[float], wrong: int) -> tuple[list[float], int]:
        """Each call's time on the group's slowest member, and the wrong elements of them all."""
        torch, dist = self.torch, self.dist
        slowest = torch.tensor(times, dtype=torch.float64, device=self.device)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX, group=group)
        total = torch.tensor([wrong], dtype=torch.int64, device=self.device)
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        return slowest.tolist(), int(total.item())


def _pair_ranks(plan: dict[str, Any], pair: list[int]) -> list[int]:
    ranks = []
    for node in pair:
        info = plan["nodes"][node]
        ranks += range(info["first_rank"], info["first_rank"] + info["ranks"])
    return ranks


def _device_name(torch, device) -> str:
    if device.type == "cuda":
        return f"{device}: {torch.cuda.get_device_name(device)}"
    return "cpu"


def pair_rounds(nnodes: int) -> tuple[list[list[int]], list[list[list[int]]]]:
    """(pairs, rounds): which node pairs are measured, and rounds of pairs that share no node
    (the circle method of a round-robin tournament), so each round runs its pairs at once.
    Two nodes: no pairs (the whole group is that pair). Over ALL_PAIRS_UP_TO: neighbours only."""
    if nnodes < 3:
        return [], []
    if nnodes > ALL_PAIRS_UP_TO:
        line, wrap = [[i, i + 1] for i in range(nnodes - 1)], [0, nnodes - 1]  # a ring
        # node 0 plays in the first round; node n-1 in the first (n even) or the second (n odd)
        if nnodes % 2 == 0:
            return line + [wrap], [line[0::2], line[1::2] + [wrap]]
        return line + [wrap], [line[0::2], line[1::2], [wrap]]  # 0 and n-1 busy in both
    pairs = [list(pair) for pair in combinations(range(nnodes), 2)]
    players = list(range(nnodes)) + ([None] if nnodes % 2 else [])
    rounds = []
    for _ in range(len(players) - 1):
        half = len(players) // 2
        matches = [(players[i], players[-1 - i]) for i in range(half)]
        rounds.append([sorted(m) for m in matches if None not in m])
        players = [players[0], players[-1], *players[1:-1]]
    return pairs, rounds


# ---------------------------------------------------------------- the parent


def cuda_device_count() -> int:
    """GPUs NVML sees (the parent never imports torch to count them); 0 without NVML."""
    from dlcheck import nvml

    try:
        return int(nvml.query("nvmlDeviceGetCount", default=0) or 0)
    except Exception:  # NvmlUnavailable, a hung driver, an NVML error: no usable GPU here
        return 0


def torch_installed() -> bool:
    return find_spec("torch") is not None


def run_allreduce(
    backend: str,
    size_bytes: int,
    iters: int,
    warmup: int = 5,
    ranks: int | None = None,
    timeout_s: float = 300.0,
) -> AllreduceResult:
    """One host's all-reduce (kept for callers of the single-host form)."""
    return run(AllreduceOptions(backend, size_bytes, iters, warmup, ranks, timeout_s))


def run(options: AllreduceOptions) -> AllreduceResult:
    """Meet the other nodes (if any), spawn this node's ranks, wait at most timeout_s, and
    summarise; never raises for a bad run."""
    from dlcheck import rendezvous

    backend, multi = options.backend, options.nnodes > 1
    ranks = options.ranks
    if ranks is None:
        ranks = cuda_device_count() if backend == "nccl" else (1 if multi else 2)
    result = AllreduceResult(backend, ranks, options.size_bytes, options.iters, options.warmup,
                             nnodes=options.nnodes, node_rank=options.node_rank)  # fmt: skip
    problem = _local_problem(backend, ranks, multi)
    if problem:
        result.status, result.reason = problem
        return result

    started = time.monotonic()
    names = dict(enumerate(options.node_names))
    name = names.get(options.node_rank) or socket.gethostname()  # the inventory's name, if given
    me = rendezvous.NodeInfo(options.node_rank, clean(name, 100), ranks)
    if multi:
        host, port = split_master(options.master)
        settings = {"backend": backend, "size_bytes": options.size_bytes, "iters": options.iters,
                    "warmup": options.warmup, "nnodes": options.nnodes}  # fmt: skip
        try:
            if options.node_rank == 0:
                nodes = rendezvous.serve(port, me, options.nnodes, settings,
                                         options.rendezvous_timeout_s, names)  # fmt: skip
            else:
                nodes = rendezvous.join(host, port, me, settings, options.rendezvous_timeout_s)
        except rendezvous.RendezvousError as error:
            result.status, result.reason = "FAIL", clean(error, 600)
            result.slow_node = _blamed(str(error), me, options)
            result.fix = _rendezvous_fix(host, port, options)
            return result
        master_addr = host if options.node_rank else "127.0.0.1"
        me = nodes[options.node_rank]  # as node 0 numbered it: its first global rank
    else:
        port, master_addr, nodes = free_port(), "127.0.0.1", [me]
    result.nodes = nodes
    result.ranks = sum(node.ranks for node in nodes)
    left = options.timeout_s - (time.monotonic() - started)
    _spawn(result, nodes, me, master_addr, port, max(5.0, left))
    return result


def _local_problem(backend: str, ranks: int, multi: bool) -> tuple[str, str] | None:
    if backend == "nccl":
        gpus = cuda_device_count()
        if gpus < (1 if multi else 2):
            need = "a CUDA GPU" if multi else "at least 2 CUDA GPUs"
            return "SKIP", f"NCCL all-reduce needs {need}; this host has {gpus}"
        if ranks > gpus:
            return "FAIL", f"{ranks} ranks asked, only {gpus} GPUs"
    if ranks < (1 if multi else 2):
        return "SKIP", "an all-reduce needs at least 2 ranks"
    return None


def split_master(master: str | None) -> tuple[str, int]:
    """'node0:29500' -> ('node0', 29500); ValueError with the fix for anything else."""
    if not master or ":" not in master:
        raise ValueError(f"--master {master!r}: give node 0's HOST:PORT, e.g. 10.0.0.1:29500")
    host, _, port = master.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--master {master!r}: give node 0's HOST:PORT, e.g. 10.0.0.1:29500")
    return host, int(port)


def _spawn(result: AllreduceResult, nodes, me, master_addr: str, port: int, timeout_s: float
           ) -> None:  # fmt: skip
    pairs, rounds = pair_rounds(len(nodes))
    plan = {
        "backend": result.backend, "world": result.ranks, "master_addr": master_addr,
        "port": port, "elements": result.elements, "iters": result.iters,
        "warmup": result.warmup, "timeout_s": max(10.0, timeout_s - 5),
        "nodes": [node.to_dict() for node in nodes], "pairs": pairs, "rounds": rounds,
    }  # fmt: skip
    env = dict(os.environ)
    if result.backend == "gloo":  # the interface this node reaches node 0 on (lo on one host)
        env.setdefault("GLOO_SOCKET_IFNAME", me.interface or "lo")
    elif me.interface:
        env.setdefault("NCCL_SOCKET_IFNAME", me.interface)
    first = me.first_rank if len(nodes) > 1 else 0
    with children.scratch("allreduce") as scratch:
        plan_path = scratch / "plan.json"
        plan_path.write_text(json.dumps(plan), encoding="utf-8")
        argv = [sys.executable, "-m", "dlcheck.allreduce", str(plan_path)]
        started = [
            children.start([*argv, str(first + local), str(local)], workdir=scratch,
                           name=f"rank{first + local}", env=env, result_file=True)  # fmt: skip
            for local in range(me.ranks)
        ]
        deadline = time.monotonic() + timeout_s
        ended = [child.wait(deadline) for child in started]
    hung = [first + i for i, end in enumerate(ended) if end.status == "timeout"]
    broken = [(first + i, end) for i, end in enumerate(ended) if not end.ok]
    where = f" on node {me.node_rank} ({me.hostname})" if len(nodes) > 1 else ""
    if hung:
        result.status = "FAIL"
        result.reason = (
            f"{len(hung)} of {me.ranks} ranks{where} still running after {timeout_s:.0f} s "
            f"(ranks {', '.join(map(str, hung))}); stopped"
        )
        if len(nodes) > 1:
            result.fix = ("A rank that starts but never finishes usually cannot open a "
                          "connection to another node's ranks (ports other than --master's "
                          "blocked between the nodes): allow TCP between them, or set "
                          "GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME to the right interface")
    elif broken:
        rank, end = broken[0]
        said = end.document.get("error") if isinstance(end.document, dict) else None
        result.status = "FAIL"
        result.reason = clean(f"rank {rank}{where}: {said or end.error}", 400)
    else:
        summarise(result, ended[0].document, nodes)


def summarise(result: AllreduceResult, report: dict[str, Any], nodes=()) -> None:
    """Fill the numbers and the verdict from rank documents (the first rank's of this node)."""
    times = report["times"]
    median = statistics.median(times)
    result.devices = report["devices"]
    result.median_time_us = median * 1e6
    result.min_time_us = min(times) * 1e6
    result.algbw_gbps = result.size_bytes / median / 1e9
    result.busbw_gbps = result.algbw_gbps * bus_factor(result.ranks)
    result.wrong_elements = report["wrong"]
    for key, pair in sorted((report.get("pairs") or {}).items()):
        a, b = (int(n) for n in key.split("-"))
        size = nodes[a].ranks + nodes[b].ranks
        pair_median = statistics.median(pair["times"])
        algbw = result.size_bytes / pair_median / 1e9
        result.pairs.append(PairResult([a, b], [nodes[a].hostname, nodes[b].hostname], size,
                                       pair_median * 1e6, algbw, algbw * bus_factor(size),
                                       pair["wrong"]))  # fmt: skip
    wrong = result.wrong_elements + sum(p.wrong_elements for p in result.pairs)
    if wrong:
        result.status = "FAIL"
        result.reason = f"{wrong} reduced elements differ from the expected sum"
        return
    if len(nodes) > 1:
        _judge_nodes(result, list(nodes))


def _judge_nodes(result: AllreduceResult, nodes) -> None:
    """WARN naming the slow node: from the pairs with 3+ nodes, else from link speeds."""
    slow = _slow_from_pairs(result.pairs, len(nodes))
    if slow is not None:
        node, ratio = slow
        result.status, result.slow_node = "WARN", nodes[node].hostname
        result.reason = (f"node {node} ({nodes[node].hostname}) is the slow one: the pairs it is "
                         f"in reach {ratio:.0%} of the others' bus bandwidth")  # fmt: skip
        result.fix = _node_fix(nodes[node], nodes)
        return
    speeds = [n.link_speed_mbps for n in nodes]
    if all(speeds) and result.busbw_gbps is not None:
        slowest = min(range(len(nodes)), key=lambda i: speeds[i])
        link_gbps = speeds[slowest] / 8 / 1000
        if result.busbw_gbps < LINK_SHARE * link_gbps:
            node = nodes[slowest]
            result.status, result.slow_node = "WARN", node.hostname
            result.reason = (f"bus bandwidth {result.busbw_gbps:.2f} GB/s is under "
                             f"{LINK_SHARE:.0%} of the slowest link ({node.hostname} "
                             f"{node.interface} at {speeds[slowest]} Mb/s = "
                             f"{link_gbps:.2f} GB/s)")  # fmt: skip
            result.fix = _node_fix(node, nodes)


def _slow_from_pairs(pairs: list[PairResult], nnodes: int) -> tuple[int, float] | None:
    if nnodes < 3 or not pairs:
        return None
    worst = None
    for node in range(nnodes):
        inside = [p.busbw_gbps for p in pairs if node in p.nodes]
        outside = [p.busbw_gbps for p in pairs if node not in p.nodes]
        if not inside or not outside or statistics.median(outside) <= 0:
            continue
        ratio = statistics.median(inside) / statistics.median(outside)
        if ratio < SLOW_SHARE and (worst is None or ratio < worst[1]):
            worst = (node, ratio)
    return worst


def _node_fix(node, nodes) -> str:
    others = sorted({n.link_speed_mbps for n in nodes if n is not node and n.link_speed_mbps})
    speed = (f"its link runs at {node.link_speed_mbps} Mb/s"
             + (f" (the others: {', '.join(map(str, others))} Mb/s)" if others else "")
             if node.link_speed_mbps else "its link speed is unknown")  # fmt: skip
    iface = node.interface or "IFACE"
    return (f"On {node.hostname}: {speed}; check the interface (`ip -s link show {iface}`: "
            f"errors, drops; `ethtool {iface}`: speed, duplex), its NIC's PCIe link "
            "(`sudo lspci -vv | grep -A2 Ethernet`, LnkSta vs LnkCap), and on GPU hosts "
            "`nvidia-smi -q -d PCIE` for the GPUs' own links")


def _blamed(message: str, me, options: AllreduceOptions) -> str | None:
    """The host a rendezvous failure points at: this node when it could not reach node 0,
    the missing node(s) named by node 0."""
    if options.node_rank != 0:
        return me.hostname if "cannot reach" in message or "got no plan" in message else None
    missing = re.findall(r"node (\d+)(?: \(([^)]*)\))?", message.split(":", 1)[-1])
    names = [name or f"node {number}" for number, name in missing if number != "0"]
    return ", ".join(dict.fromkeys(names)) or None


def _rendezvous_fix(host: str, port: int, options: AllreduceOptions) -> str:
    return (f"Every node must reach node 0 at {host}:{port} over TCP: on the node named, test "
            f"with `nc -vz {host} {port}` (or `timeout 3 bash -c '</dev/tcp/{host}/{port}'`); "
            f"open port {port} (and the ports the ranks pick) in the firewall between the nodes, "
            "check that every node got the same --nnodes/--backend/--size, and that node 0 "
            "started")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
