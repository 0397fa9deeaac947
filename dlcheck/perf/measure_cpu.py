"""CPU measurements, run inside the perf child: GEMM with NumPy's and torch's BLAS, memory
copy and triad bandwidth. Returns plain dicts; the parent judges them.

Sizes grow until one GEMM takes long enough to time well (or 4096, the most a 2-core
box can afford inside its budget); buffers are 256 MiB each (well past any L3) or
1/16 of free RAM, whichever is smaller.
"""

from __future__ import annotations

import os
import re
import time
from typing import Any

from dlcheck.children import report_progress
from dlcheck.perf.timing import rates, repeat, wall

GEMM_SIZES = (1024, 2048, 3072, 4096)
GEMM_MIN_SECONDS = 0.08  # one GEMM at least this long, so timer and thread start-up vanish
BUFFER_BYTES = 256 * 1024 * 1024


def run(spec: dict[str, Any]) -> dict[str, Any]:
    import numpy as np

    seconds = float(spec.get("seconds_per_test", 2.0))
    tests = []
    started = time.time()
    for dtype in ("float32", "float64"):
        tests.append(_gemm_numpy(np, dtype, seconds))
    torch = _torch()
    if torch is not None:
        torch.set_num_threads(int(spec.get("threads") or os.cpu_count() or 1))
        tests.append(_gemm_torch(torch, seconds))
    elements = _buffer_elements()
    streaming = seconds / 2  # a streaming copy settles in a few repeats; GEMMs need longer
    tests.append(_copy_numpy(np, elements, streaming))
    if torch is not None:
        tests.append(_triad_torch(torch, elements, streaming))
    return {
        "tests": tests,
        "started": started,
        "ended": time.time(),
        "software": {
            "numpy": np.__version__,
            "numpy_blas": _numpy_blas(np),
            "torch": getattr(torch, "__version__", None),
            "torch_threads": torch.get_num_threads() if torch is not None else None,
            "torch_blas": _torch_blas(torch),
        },
    }


def _torch():
    try:
        import torch
    except ImportError:  # numpy alone still measures GEMM and copy
        return None
    return torch


def _gemm_numpy(np, dtype: str, seconds: float) -> dict[str, Any]:
    rng = np.random.default_rng(0)

    def operands(n):
        return (rng.standard_normal((n, n)).astype(dtype),
                rng.standard_normal((n, n)).astype(dtype))  # fmt: skip

    name = "gemm_fp32_numpy" if dtype == "float32" else "gemm_fp64_numpy"
    return _gemm(name, operands, lambda a, b: a @ b, seconds)


def _gemm_torch(torch, seconds: float) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)

    def operands(n):
        return torch.randn(n, n, generator=gen), torch.randn(n, n, generator=gen)

    return _gemm("gemm_fp32_torch", operands, lambda a, b: a @ b, seconds)


def _gemm(name: str, operands, multiply, seconds: float) -> dict[str, Any]:
    """Grow n until one product takes GEMM_MIN_SECONDS (the first call at each size warms
    up threads and pages), then repeat inside what is left of the time box."""
    started = time.perf_counter()
    for n in GEMM_SIZES:
        a, b = operands(n)
        multiply(a, b)
        first = wall(lambda: multiply(a, b))()  # noqa: B023 - called at once
        if first >= GEMM_MIN_SECONDS:
            break
    left = max(seconds - (time.perf_counter() - started), 0.0)
    durations = [first, *repeat(wall(lambda: multiply(a, b)), left, min_reps=2)]
    return _record(name, "gemm", "GFLOP/s", rates(durations, 2 * n**3 / 1e9), {"n": n})


def _copy_numpy(np, elements: int, seconds: float) -> dict[str, Any]:
    src = np.ones(elements, dtype=np.float32)
    dst = np.empty_like(src)
    np.copyto(dst, src)  # fault the pages in before timing
    durations = repeat(wall(lambda: np.copyto(dst, src)), seconds)
    moved = 2 * src.nbytes / 1e9  # read + write
    return _record("memory_copy_numpy", "memory", "GB/s", rates(durations, moved),
                   {"bytes": src.nbytes})  # fmt: skip


def _triad_torch(torch, elements: int, seconds: float) -> dict[str, Any]:
    a = torch.empty(elements)
    b = torch.ones(elements)
    c = torch.ones(elements)
    torch.add(b, c, alpha=3.0, out=a)  # a = b + 3c in one pass (STREAM triad)
    durations = repeat(wall(lambda: torch.add(b, c, alpha=3.0, out=a)), seconds)
    moved = 3 * a.numel() * a.element_size() / 1e9
    return _record("memory_triad_torch", "memory", "GB/s", rates(durations, moved),
                   {"bytes": a.numel() * a.element_size()})  # fmt: skip


def _buffer_elements() -> int:
    limit = BUFFER_BYTES
    try:
        available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        limit = min(limit, available // 16)
    except (ValueError, OSError, AttributeError):
        pass
    return max(limit // 4, 1024 * 1024)


def _record(name, kind, unit, rate, detail) -> dict[str, Any]:
    report_progress(f"{name} done: {rate['median']:.1f} {unit}")
    return {"name": name, "kind": kind, "unit": unit, **rate, "detail": detail}


def _numpy_blas(np) -> str | None:
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        return f"{blas.get('name')} {blas.get('version')}".strip()
    except Exception:  # older numpy: no dict mode; the name is a nicety, not a result
        return None


def _torch_blas(torch) -> str | None:
    if torch is None:
        return None
    try:
        text = torch.__config__.show()
    except Exception:
        return None
    found = re.search(r"BLAS_INFO=([\w.-]+)", text)
    return found.group(1) if found else None
