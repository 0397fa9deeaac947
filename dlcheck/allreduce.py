"""All-reduce readiness across this host's GPUs (or CPU processes), nccl-tests style.

One child process per rank (dlcheck.children: own process group, deadline, cleanup), each
`python -m dlcheck.allreduce RANK ...`, meeting at tcp://127.0.0.1:<free port>. The parent
never imports torch. Each rank fills a float32 buffer with
values whose sum it knows, times `iters` all_reduce(SUM) calls after `warmup`
untimed ones, and checks every element of the result.

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
from importlib.util import find_spec
from typing import Any

from dlcheck import children
from dlcheck.text import clean

_UNITS = {"": 1, "B": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:I?B)?\s*$", re.IGNORECASE)
ELEMENT_BYTES = 4  # float32
MAX_SIZE = 1 << 40  # 1 TiB per rank: more than any GPU holds; above it, a typo


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
class AllreduceResult:
    backend: str
    ranks: int
    size_bytes: int
    iters: int
    warmup: int
    status: str = "PASS"  # PASS | FAIL | SKIP
    devices: list[str] = field(default_factory=list)
    median_time_us: float | None = None
    min_time_us: float | None = None
    algbw_gbps: float | None = None  # GB/s, 1e9 bytes
    busbw_gbps: float | None = None
    wrong_elements: int | None = None  # elements differing from the expected sum, all ranks
    reason: str | None = None  # why SKIP or FAIL, one line

    @property
    def elements(self) -> int:
        return self.size_bytes // ELEMENT_BYTES

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "elements": self.elements, "bus_factor": bus_factor(self.ranks)}


def main(argv: list[str]) -> int:  # one rank, in a child process
    children.bind_to_parent()
    rank, ranks, backend, port, elements, iters, warmup = argv
    result_path = os.environ["DLCHECK_RESULT"]
    try:
        report = _measure(int(rank), int(ranks), backend, int(port), int(elements), int(iters),
                          int(warmup))  # fmt: skip
    except Exception as error:  # the parent turns this into a one-line FAIL
        with open(result_path, "w") as out:
            json.dump({"error": f"{type(error).__name__}: {error}"}, out)
        return 1
    with open(result_path, "w") as out:
        json.dump(report if int(rank) == 0 else {"ok": True}, out)
    return 0


def _measure(rank, ranks, backend, port, elements, iters, warmup) -> dict[str, Any]:
    import torch
    import torch.distributed as dist

    use_cuda = backend == "nccl"
    device = torch.device(f"cuda:{rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend,
        init_method=f"tcp://127.0.0.1:{port}",
        rank=rank,
        world_size=ranks,
        **({"device_id": device} if use_cuda else {}),
    )
    try:
        sync = torch.cuda.synchronize if use_cuda else (lambda: None)
        # Rank r contributes pattern + r + 1; the sum is pattern * n + n(n+1)/2, exact in float32.
        pattern = (torch.arange(elements, device=device) % 7).to(torch.float32)
        expected = pattern * ranks + ranks * (ranks + 1) / 2
        buffer = torch.empty(elements, dtype=torch.float32, device=device)
        times, wrong = [], 0
        for step in range(warmup + iters):
            buffer.copy_(pattern).add_(rank + 1)
            sync()
            start = time.perf_counter()
            dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
            sync()
            elapsed = time.perf_counter() - start
            wrong += int((buffer != expected).sum().item())
            if step >= warmup:
                times.append(elapsed)
        # The slowest rank bounds each call; wrong elements add up over ranks.
        slowest = torch.tensor(times, dtype=torch.float64, device=device)
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        total_wrong = torch.tensor([wrong], dtype=torch.int64, device=device)
        dist.all_reduce(total_wrong, op=dist.ReduceOp.SUM)
        names = [None] * ranks
        dist.all_gather_object(names, _device_name(torch, device))
        return {"times": slowest.tolist(), "wrong": int(total_wrong.item()), "devices": names}
    finally:
        dist.destroy_process_group()


def _device_name(torch, device) -> str:
    if device.type == "cuda":
        return f"{device}: {torch.cuda.get_device_name(device)}"
    return "cpu"


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
    """Spawn the ranks, wait at most timeout_s, and summarise; never raises for a bad run."""
    if ranks is None:
        ranks = cuda_device_count() if backend == "nccl" else 2
    result = AllreduceResult(backend, ranks, size_bytes, iters, warmup)
    if backend == "nccl":
        gpus = cuda_device_count()
        if gpus < 2:
            result.status = "SKIP"
            result.reason = f"NCCL all-reduce needs at least 2 CUDA GPUs; this host has {gpus}"
            return result
        if ranks > gpus:
            result.status, result.reason = "FAIL", f"{ranks} ranks asked, only {gpus} GPUs"
            return result
    if ranks < 2:
        result.status, result.reason = "SKIP", "an all-reduce needs at least 2 ranks"
        return result

    port = free_port()
    env = dict(os.environ)
    if backend == "gloo":
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")  # ranks meet on loopback, whatever the hostname
    elements = size_bytes // ELEMENT_BYTES
    with children.scratch("allreduce") as scratch:
        argv = [sys.executable, "-m", "dlcheck.allreduce"]
        args = [str(a) for a in (ranks, backend, port, elements, iters, warmup)]
        started = [
            children.start([*argv, str(rank), *args], workdir=scratch, name=f"rank{rank}",
                           env=env, result_file=True)  # fmt: skip
            for rank in range(ranks)
        ]
        deadline = time.monotonic() + timeout_s
        ended = [child.wait(deadline) for child in started]
    hung = [rank for rank, end in enumerate(ended) if end.status == "timeout"]
    broken = [(rank, end) for rank, end in enumerate(ended) if not end.ok]
    if hung:
        result.status = "FAIL"
        result.reason = (
            f"{len(hung)} of {ranks} ranks still running after {timeout_s:.0f} s "
            f"(ranks {', '.join(map(str, hung))}); stopped"
        )
    elif broken:
        rank, end = broken[0]
        said = end.document.get("error") if isinstance(end.document, dict) else None
        result.status, result.reason = "FAIL", clean(f"rank {rank}: {said or end.error}", 300)
    else:
        _summarise(result, ended[0].document)
    return result


def _summarise(result: AllreduceResult, report: dict[str, Any]) -> None:
    times = report["times"]
    median = statistics.median(times)
    result.devices = report["devices"]
    result.median_time_us = median * 1e6
    result.min_time_us = min(times) * 1e6
    result.algbw_gbps = result.size_bytes / median / 1e9
    result.busbw_gbps = result.algbw_gbps * bus_factor(result.ranks)
    result.wrong_elements = report["wrong"]
    if result.wrong_elements:
        result.status = "FAIL"
        result.reason = f"{result.wrong_elements} reduced elements differ from the expected sum"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
