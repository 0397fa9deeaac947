"""GPU measurements with the installed PyTorch, run inside the perf child (never the CLI).

Per GPU: dense matmul for each dtype the card has tensor cores for (FP32 on CUDA
cores with TF32 off, TF32, BF16, FP16, FP8), device memory copy and triad,
host<->device copies pinned and pageable; then peer copies for each GPU pair.
Each test: warm-up, then timed repeats (CUDA events) inside a time box; the
median is reported. Each matmul is checked against a float64 reference block, so
a card that is fast but wrong fails. Wall-clock windows (time.time) go with each
test so the parent can line them up with its NVML samples.
"""

from __future__ import annotations

import time
from typing import Any

from dlcheck.children import report_progress
from dlcheck.perf.timing import rates, repeat

MAX_REPS = 100_000  # the time box, not a count, ends a GPU test: throttling takes seconds to show
MATMUL_N = 8192  # 1.1 TFLOP per GEMM: long enough to saturate any card here, short to time
COPY_BYTES = 1 << 30  # 1 GiB: far past the largest L2 (72 MB on AD102)
TRANSFER_BYTES = 256 << 20
P2P_BYTES = 256 << 20
CHECK_BLOCK = 64  # rows/cols of the float64 reference block
# Allowed max |c - ref| / max |ref| per dtype: about 5x the output rounding (bf16 keeps 8
# significant bits: 2^-8 = 0.004; fp16 11 bits), so only gross faults exceed it.
TOLERANCE = {"fp32": 1e-3, "tf32": 1e-2, "bf16": 2e-2, "fp16": 1e-2, "fp8": 5e-2}
MIN_CC = {"fp32": (0, 0), "tf32": (8, 0), "bf16": (8, 0), "fp16": (7, 0), "fp8": (8, 9)}


def run(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    software = {
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
    }
    if not torch.cuda.is_available():
        return {"devices": [], "p2p": [], "software": software,
                "error": "torch.cuda.is_available() is False"}  # fmt: skip
    seconds = float(spec.get("seconds_per_test", 2.5))
    wanted = spec.get("uuids")  # NVML UUIDs to test; None = every visible device
    devices = []
    for ordinal in range(torch.cuda.device_count()):
        info = _identity(torch, ordinal)
        if wanted is not None and _plain_uuid(info["uuid"]) not in {_plain_uuid(u) for u in wanted}:
            continue
        info["tests"] = _device_tests(torch, ordinal, info, seconds)
        devices.append(info)
        torch.cuda.empty_cache()
    pairs = []
    if spec.get("p2p", True) and len(devices) > 1:
        pairs = _p2p(torch, [d["ordinal"] for d in devices], min(seconds, 1.0))
    return {"devices": devices, "p2p": pairs, "software": software, "error": None}


def _identity(torch, ordinal: int) -> dict[str, Any]:
    props = torch.cuda.get_device_properties(ordinal)
    return {
        "ordinal": ordinal,
        "name": props.name,
        "uuid": str(getattr(props, "uuid", "") or "") or None,
        "pci_bus_id": getattr(props, "pci_bus_id", None),
        "compute_cap": f"{props.major}.{props.minor}",
        "total_memory": props.total_memory,
        "sm_count": props.multi_processor_count,
    }


def _plain_uuid(text: str | None) -> str:
    return (text or "").lower().removeprefix("gpu-")


def _device_tests(torch, ordinal: int, info: dict[str, Any], seconds: float) -> list[dict]:
    device = torch.device("cuda", ordinal)
    cc = tuple(int(x) for x in info["compute_cap"].split("."))
    tests = []
    with torch.cuda.device(device):
        for dtype in ("fp32", "tf32", "bf16", "fp16", "fp8"):
            name = f"matmul_{dtype}"
            if cc < MIN_CC[dtype] or (dtype == "fp8" and not _has_fp8(torch)):
                tests.append(_skipped(name, "matmul", "TFLOP/s", _why_not(dtype, cc)))
                continue
            tests.append(_guard(name, "matmul", "TFLOP/s", _matmul, torch, device, dtype, seconds))
        tests.append(_guard("memory_copy", "memory", "GB/s", _copy, torch, device, seconds))
        tests.append(_guard("memory_triad", "memory", "GB/s", _triad, torch, device, seconds))
        for direction in ("h2d", "d2h"):
            for pinned in (True, False):
                name = f"{direction}_{'pinned' if pinned else 'pageable'}"
                tests.append(_guard(name, "transfer", "GB/s", _transfer, torch, device,
                                    direction, pinned, seconds))  # fmt: skip
    return tests


def _guard(name, kind, unit, function, *args) -> dict[str, Any]:
    """Run one test; an exception (out of memory, CUDA error) becomes that test's error."""
    report_progress(f"{name} {' '.join(str(a) for a in args[1:2])}")
    started = time.time()
    try:
        rate, detail = function(*args)
        error = None
    except Exception as exc:  # reported per test; the other tests still run
        rate, detail = {"median": None, "low": None, "high": None, "repeats": 0}, {}
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    detail.update(started=started, ended=time.time())
    return {"name": name, "kind": kind, "unit": unit, **rate, "detail": detail, "error": error}


def _skipped(name, kind, unit, reason) -> dict[str, Any]:
    return {"name": name, "kind": kind, "unit": unit, "median": None, "low": None,
            "high": None, "repeats": 0, "detail": {}, "error": None, "skipped": reason}  # fmt: skip


def _has_fp8(torch) -> bool:
    return hasattr(torch, "_scaled_mm") and hasattr(torch, "float8_e4m3fn")


def _why_not(dtype: str, cc: tuple[int, int]) -> str:
    if cc < MIN_CC[dtype]:
        need = ".".join(map(str, MIN_CC[dtype]))
        return f"{dtype} tensor cores need compute capability {need}+ (this GPU: {cc[0]}.{cc[1]})"
    return "this torch build has no float8 matmul (torch._scaled_mm)"


def _event_timer(torch, function):
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)

    def timed() -> float:
        start.record()
        function()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0

    return timed


def _synced_timer(torch, function, *devices):
    """Wall clock between device synchronisations (pageable and peer copies)."""

    def timed() -> float:
        for d in devices:
            torch.cuda.synchronize(d)
        start = time.perf_counter()
        function()
        for d in devices:
            torch.cuda.synchronize(d)
        return time.perf_counter() - start

    return timed


def _matmul_size(torch, device, element_bytes: int) -> int:
    free, _ = torch.cuda.mem_get_info(device)
    n = MATMUL_N
    while n > 2048 and 4 * n * n * element_bytes > free * 0.8:  # a, b, c and workspace
        n //= 2
    return n


def _matmul(torch, device, dtype: str, seconds: float):
    """TF32 only for the tf32 test: FP32 is measured on the CUDA cores, as datasheets count it."""
    tf32 = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
    try:
        return _timed_matmul(torch, device, dtype, seconds)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = tf32


def _timed_matmul(torch, device, dtype: str, seconds: float):
    store = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16,
             "fp16": torch.float16, "fp8": torch.bfloat16}[dtype]  # fmt: skip
    n = _matmul_size(torch, device, 4 if store == torch.float32 else 2)
    gen = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, generator=gen).to(store)
    b = torch.randn(n, n, device=device, generator=gen).to(store)
    if dtype == "fp8":
        a8 = a.to(torch.float8_e4m3fn)
        b8 = b.to(torch.float8_e4m3fn).t().contiguous().t()  # _scaled_mm wants b column-major
        one = torch.ones((), device=device)

        def step():
            return torch._scaled_mm(a8, b8, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)

        ref_a, ref_b = a8.to(torch.float64), b8.to(torch.float64)
    else:

        def step():
            return a @ b

        ref_a, ref_b = a.to(torch.float64), b.to(torch.float64)
    for _ in range(2):
        c = step()
    torch.cuda.synchronize(device)
    error = _relative_error(torch, c, ref_a, ref_b)
    durations = repeat(_event_timer(torch, step), seconds, max_reps=MAX_REPS)
    detail = {"n": n, "dtype": dtype, "relative_error": error,
              "correct": error <= TOLERANCE[dtype]}  # fmt: skip
    return rates(durations, 2 * n**3 / 1e12), detail


def _relative_error(torch, c, a, b) -> float:
    k = CHECK_BLOCK
    ref = a[:k] @ b[:, :k]
    diff = (c[:k, :k].to(torch.float64) - ref).abs().max().item()
    scale = ref.abs().max().item() or 1.0
    value = diff / scale
    return value if value == value else float("inf")  # NaN in the output: as wrong as it gets


def _buffer(torch, device, total_bytes: int, count: int) -> int:
    free, _ = torch.cuda.mem_get_info(device)
    return max(min(total_bytes, int(free * 0.6) // count) // 4, 1 << 20)


def _copy(torch, device, seconds: float):
    elements = _buffer(torch, device, COPY_BYTES, 2)
    src = torch.ones(elements, device=device)
    dst = torch.empty_like(src)
    dst.copy_(src)
    durations = repeat(_event_timer(torch, lambda: dst.copy_(src)), seconds, max_reps=MAX_REPS)
    return rates(durations, 2 * src.numel() * 4 / 1e9), {"bytes": src.numel() * 4}


def _triad(torch, device, seconds: float):
    elements = _buffer(torch, device, COPY_BYTES, 3)
    a = torch.empty(elements, device=device)
    b = torch.ones(elements, device=device)
    c = torch.ones(elements, device=device)

    def step():
        torch.add(b, c, alpha=3.0, out=a)

    step()
    durations = repeat(_event_timer(torch, step), seconds, max_reps=MAX_REPS)
    return rates(durations, 3 * elements * 4 / 1e9), {"bytes": elements * 4}


def _transfer(torch, device, direction: str, pinned: bool, seconds: float):
    elements = TRANSFER_BYTES // 4
    host = torch.ones(elements, pin_memory=pinned)
    dev = torch.empty(elements, device=device)
    if direction == "h2d":

        def step():
            dev.copy_(host, non_blocking=pinned)

    else:

        def step():
            host.copy_(dev, non_blocking=pinned)

    step()
    timer = _event_timer(torch, step) if pinned else _synced_timer(torch, step, device)
    durations = repeat(timer, seconds, max_reps=MAX_REPS)
    return rates(durations, TRANSFER_BYTES / 1e9), {"bytes": TRANSFER_BYTES, "pinned": pinned}


def _p2p(torch, ordinals: list[int], seconds: float) -> list[dict[str, Any]]:
    results = []
    for i in ordinals:
        for j in ordinals:
            if j <= i:
                continue
            name = f"p2p_{i}_{j}"
            result = _guard(name, "p2p", "GB/s", _peer_copy, torch, i, j, seconds)
            result["detail"].update(src=i, dst=j, peer_access=_peer(torch, i, j))
            results.append(result)
    return results


def _peer(torch, i: int, j: int) -> bool | None:
    try:
        return bool(torch.cuda.can_device_access_peer(i, j))
    except Exception:
        return None


def _peer_copy(torch, i: int, j: int, seconds: float):
    src = torch.ones(P2P_BYTES // 4, device=f"cuda:{i}")
    dst = torch.empty(P2P_BYTES // 4, device=f"cuda:{j}")
    dst.copy_(src)
    timer = _synced_timer(torch, lambda: dst.copy_(src), f"cuda:{i}", f"cuda:{j}")
    return rates(repeat(timer, seconds, max_reps=MAX_REPS), P2P_BYTES / 1e9), {"bytes": P2P_BYTES}
