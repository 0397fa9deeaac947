"""Driver <-> CUDA <-> compute-capability rules. The numbers live in compat.json, with sources."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

_DATA = Path(__file__).with_name("compat.json")


@functools.cache
def data() -> dict[str, Any]:
    return json.loads(_DATA.read_text(encoding="utf-8"))


def version_tuple(text: str | None) -> tuple[int, ...]:
    """'580.65.06' -> (580, 65, 6); '2.13.0+cpu' -> (2, 13, 0); junk -> ()."""
    if not text:
        return ()
    match = re.match(r"\d+(?:\.\d+)*", str(text).strip())
    return tuple(int(part) for part in match.group(0).split(".")) if match else ()


def decode_cuda_version(value: int | None) -> str | None:
    """NVML/CUDA integer encoding: 13000 -> '13.0', 12040 -> '12.4'."""
    if value is None or value <= 0:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def min_driver_for_cuda(cuda: str | None) -> dict[str, Any] | None:
    """The table row for the newest CUDA release <= `cuda`, or None when older than the table."""
    wanted = version_tuple(cuda)
    if not wanted:
        return None
    rows = [r for r in data()["cuda_min_driver"]["rows"] if version_tuple(r["cuda"]) <= wanted]
    return max(rows, key=lambda r: version_tuple(r["cuda"]), default=None)


def architecture(cc: str | None) -> str | None:
    """Compute capability '9.0' -> 'Hopper' (exact major.minor first, then the major)."""
    if not cc:
        return None
    table = data()["architectures"]
    return table.get(cc) or table.get(cc.split(".")[0])


def arch_supported(cc: str, arch_list: list[str]) -> bool:
    """Would a build for `arch_list` (e.g. ['sm_80', 'compute_90']) run on capability `cc`?

    SASS (sm_XY) runs on the same major with an equal or higher minor; PTX (compute_XY)
    is JIT-compiled for any equal or newer capability.
    """
    major, minor = version_tuple(cc)[:2]
    for entry in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)(\d)[a-z]?", entry.strip())
        if not match:
            continue
        kind, a_major, a_minor = match.group(1), int(match.group(2)), int(match.group(3))
        if kind == "sm" and a_major == major and a_minor <= minor:
            return True
        if kind == "compute" and (a_major, a_minor) <= (major, minor):
            return True
    return False


def torch_wheels_covering(capabilities: list[str]) -> list[dict[str, Any]]:
    """Torch wheel flavours whose kernels cover every one of `capabilities`, newest CUDA first."""
    rows = [
        r for r in data()["torch_wheels"]["rows"]
        if all(arch_supported(cc, _as_sm(r["archs"])) for cc in capabilities)
    ]  # fmt: skip
    return sorted(rows, key=lambda r: version_tuple(r["cuda"]), reverse=True)


def driver_meets(driver: str, cuda: str, release: bool = False) -> bool:
    """Can `driver` run CUDA `cuda` code: through minor-version compatibility (family_min), or
    with `release` as the toolkit release itself expects (release_min)?"""
    row = min_driver_for_cuda(cuda)
    floor = row and row["release_min" if release else "family_min"]
    return row is None or version_tuple(driver) >= version_tuple(floor)


def tensorflow_tested(version: str | None) -> dict[str, Any] | None:
    wanted = version_tuple(version)[:2]
    rows = [r for r in data()["tensorflow_tested"]["rows"] if version_tuple(r["tf"]) <= wanted]
    return max(rows, key=lambda r: version_tuple(r["tf"]), default=None)


def _as_sm(ccs: list[str]) -> list[str]:
    return ["sm_" + cc.replace(".", "") for cc in ccs]
