"""Multi-node all-reduce with real torch.distributed (gloo): nodes as separate dlcheck
processes on loopback, and on a LAN of network namespaces (tests/allreduce/lan.py) where one
node can be slowed or have its port blocked."""

from __future__ import annotations

import os

import pytest

from dlcheck import schema
from dlcheck.allreduce import VISIT_CALLS, _time_pairs, free_port, pair_rounds, split_master
from dlcheck.models import ExitCode
from tests.allreduce.lan import Lan, lan_available, run_nodes

pytest.importorskip("torch")
SMALL = ("--size", "256K", "--iters", "5", "--warmup", "1", "--timeout", "150")


def test_round_robin_rounds_cover_every_pair_once_with_no_node_twice_in_a_round():
    for nnodes in range(3, 40):  # all pairs up to 16 nodes, neighbours (and n-1 with 0) above
        pairs, rounds = pair_rounds(nnodes)
        flat = sorted(tuple(p) for r in rounds for p in r)
        assert flat == sorted(tuple(p) for p in pairs)
        assert len(pairs) == (nnodes * (nnodes - 1) // 2 if nnodes <= 16 else nnodes)
        for round_pairs in rounds:
            nodes = [n for pair in round_pairs for n in pair]
            assert len(nodes) == len(set(nodes))
    assert pair_rounds(2) == ([], [])  # two nodes: the whole group is the pair


@pytest.mark.parametrize("bad", ["node0", "node0:", ":29500", "node0:0", "node0:70000", "a:b"])
def test_master_needs_host_and_port(bad):
    with pytest.raises(ValueError, match="HOST:PORT"):
        split_master(bad)
    assert split_master("[fe80::1]:29500") == ("fe80::1", 29500)


@pytest.mark.parametrize(
    ("args", "said"),
    [(["--nnodes", "2"], "needs --master HOST:PORT"),
     (["--nnodes", "2", "--node-rank", "2", "--master", "h:1"], "is not below --nnodes 2"),
     (["--nnodes", "2", "--master", "h"], "give node 0's HOST:PORT")],
)
def test_usage_errors_name_the_fix(args, said, monkeypatch):
    from tests.fakes.cli import invoke

    for name in ("MASTER_ADDR", "MASTER_PORT", "NNODES", "NODE_RANK"):
        monkeypatch.delenv(name, raising=False)
    ran = invoke(["allreduce", "--backend", "gloo", *args])
    assert ran.code == ExitCode.USAGE and said in ran.stderr, ran.stderr


def test_three_nodes_on_loopback_measure_the_group_and_every_pair():
    runs = run_nodes(None, 3, free_port(), *SMALL)
    for run in runs:
        assert run.code == ExitCode.READY, run.stderr[-2000:]
        schema.validate("allreduce", run.body)
    data = runs[0].body["data"]
    assert (data["nnodes"], data["ranks"], data["wrong_elements"]) == (3, 3, 0)
    assert [p["nodes"] for p in data["pairs"]] == [[0, 1], [0, 2], [1, 2]]
    assert all(p["busbw_gbps"] > 0 and p["wrong_elements"] == 0 for p in data["pairs"])
    assert [n["hostname"] for n in data["nodes"]] == ["node0", "node1", "node2"]
    assert [n["first_rank"] for n in data["nodes"]] == [0, 1, 2]
    # every node reports the same group numbers
    assert {r.body["data"]["busbw_gbps"] for r in runs} == {data["busbw_gbps"]}


def test_a_node_with_nothing_to_meet_fails_naming_itself_in_bounded_time():
    port = free_port()  # nobody listens there
    (run,) = run_nodes(None, 2, port, *SMALL, "--rendezvous-timeout", "4", only=[1])
    assert run.code == ExitCode.NOT_READY and run.seconds < 30
    data = run.body["data"]
    assert data["status"] == "FAIL" and data["slow_node"] == "node1"
    assert f"node 1 (node1) cannot reach the rendezvous at 127.0.0.1:{port}" in data["reason"]
    assert "connection refused" in data["reason"] and f"nc -vz 127.0.0.1 {port}" in data["fix"]


def test_node_zero_names_the_node_that_never_came():
    runs = run_nodes(None, 3, free_port(), *SMALL, "--rendezvous-timeout", "4",
                     args_for=lambda node: [] if node < 2 else ["--node-rank", "1"])  # fmt: skip
    zero = runs[0].body["data"]
    assert runs[0].code == ExitCode.NOT_READY and runs[0].seconds < 30
    assert "1 of 3 nodes did not reach the rendezvous" in zero["reason"]
    assert "node 2 (node2)" in zero["reason"] and zero["slow_node"] == "node2"
    assert "came twice" in zero["reason"]  # the second node 1 was turned away, and says so
    assert any("came twice" in (r.body or {}).get("data", {}).get("reason", "") for r in runs[1:])


def test_nodes_asking_for_different_tests_are_refused():
    runs = run_nodes(None, 2, free_port(), *SMALL, "--rendezvous-timeout", "4",
                     args_for=lambda node: ["--size", "1M"] if node else [])  # fmt: skip
    assert all(r.code == ExitCode.NOT_READY for r in runs)
    assert "asked for a different test: size_bytes 1048576 vs 262144" in (
        runs[1].body["data"]["reason"])


class _Calls:
    """Stands in for the rank's timer and torch.distributed: logs each call's group in order;
    a call's "time" is its place in that log."""

    warmup, iters = 2, 12

    def __init__(self):
        self.log: list[tuple[int, ...]] = []

    def new_group(self, ranks):
        return tuple(ranks)

    def barrier(self):
        self.log.append(("barrier",))

    def call(self, group, size, index):
        self.log.append(group)
        return float(len(self.log) - 1), 0

    def slowest(self, group, times, wrong):
        return times, wrong


def test_pairs_are_timed_interleaved_so_a_burst_of_load_hits_every_pair_alike():
    pairs, rounds = pair_rounds(3)
    nodes = [{"first_rank": i, "ranks": 1} for i in range(3)]
    plan = {"pairs": pairs, "rounds": rounds, "nodes": nodes}
    calls = _Calls()
    found = _time_pairs(calls, calls, plan, rank=0)  # node 0 is in pairs 0-1 and 0-2
    first, second = (found[key]["times"] for key in ("0-1", "0-2"))
    assert len(first) == len(second) == calls.iters
    # each pair's timed calls span the others': not one block after the other
    assert min(first) < max(second) and min(second) < max(first)
    visits = -(-calls.iters // VISIT_CALLS)
    assert len(calls.log) == 2 * (calls.warmup + calls.iters + visits) + len(rounds) * (1 + visits)
    # the call opening a visit (after a barrier) is never timed; the warm-up is never timed
    after_barrier = [i for i in range(1, len(calls.log)) if calls.log[i - 1] == ("barrier",)]
    timed = set(first) | set(second)
    assert not timed & set(after_barrier)
    assert min(timed) >= 2 * calls.warmup


@pytest.fixture
def lan3():
    why = lan_available()
    if why:
        pytest.skip(why)
    with Lan(3) as lan:
        yield lan


def test_lan_pass_then_the_slow_node_is_named(lan3):
    port = free_port()
    runs = run_nodes(lan3, 3, port, *SMALL)
    assert [r.code for r in runs] == [0, 0, 0], runs[0].stderr[-2000:]
    nodes = runs[0].body["data"]["nodes"]
    assert [(n["address"], n["interface"]) for n in nodes] == [
        (lan3.address(i), "eth0") for i in range(3)]  # their own stacks, over the bridge

    lan3.slow(2, "8mbit")  # far below the pairs' speed even on a busy machine
    runs = run_nodes(lan3, 3, port, *SMALL)
    data = runs[0].body["data"]
    load = os.getloadavg()[0]
    if data.get("slow_node") != "node2" and load > (os.cpu_count() or 1):
        # The namespaces share this machine's CPUs: with more runnable work than cores (the
        # parallel suite's converges), a starved pair can look slower than the throttled link.
        pytest.skip(f"load average {load:.1f} on {os.cpu_count()} cores: pair bandwidths "
                    f"{[(p['nodes'], p['busbw_gbps']) for p in data['pairs']]} are CPU noise")
    assert runs[0].code == ExitCode.READY and data["status"] == "WARN", data
    assert data["slow_node"] == "node2" and "node 2 (node2) is the slow one" in data["reason"]
    assert "ethtool eth0" in data["fix"]
    fast, slow = ([p["busbw_gbps"] for p in data["pairs"] if (2 in p["nodes"]) == s]
                  for s in (False, True))  # fmt: skip
    assert max(slow) < 0.5 * min(fast)


def test_lan_blocked_port_fails_naming_the_host_within_60_s(lan3):
    port = free_port()
    lan3.block_port(1, port)
    runs = run_nodes(lan3, 2, port, *SMALL, "--rendezvous-timeout", "15")
    zero, one = (r.body["data"] for r in runs)
    assert [r.code for r in runs] == [ExitCode.NOT_READY] * 2
    assert max(r.seconds for r in runs) < 60
    assert one["slow_node"] == "node1" and "time out (a firewall dropping" in one["reason"]
    assert f"node 1 (node1) cannot reach the rendezvous at {lan3.address(0)}:{port}" in (
        one["reason"])
    assert zero["slow_node"] == "node1" and "node 1 (node1)" in zero["reason"]
