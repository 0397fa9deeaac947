"""The datasheet table (skus.json): find a GPU's SKU by PCI device id or NVML name.

NVML's `pciDeviceId` packs (device << 16) | vendor, e.g. 0x233010DE for an H100 SXM;
the device half is the key. Names are the fallback (older bindings, fakes, odd
boards): compared case-insensitively, with the "NVIDIA " prefix older drivers
left out and runs of spaces/hyphens treated alike.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("skus.json")

# Usable bytes per second per lane and direction, after line coding (PCI-SIG: gen1-2 8b/10b,
# gen3-5 128b/130b, gen6 FLIT); x16 gen4 = 31.5 GB/s, the figure datasheets quote.
PCIE_LANE_GBPS = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}


@dataclass(frozen=True)
class Sku:
    key: str
    names: tuple[str, ...]
    pci_device_ids: tuple[int, ...]
    architecture: str
    compute_cap: str
    peak_tflops: dict[str, float]  # dense, per dtype: fp32 tf32 bf16 fp16 fp8
    memory_bandwidth_gbps: float
    pcie_gen: int
    pcie_width: int
    tdp_w: float
    boost_clock_mhz: int
    nvlink_gbps: float | None = None  # per direction, to all peers together
    dcgm_reference: dict[str, Any] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    notes: str | None = None

    @property
    def name(self) -> str:
        return self.names[0]

    @property
    def pcie_gbps(self) -> float:
        return pcie_bandwidth(self.pcie_gen, self.pcie_width) or 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "pci_device_ids": [f"0x{i:04x}" for i in self.pci_device_ids],
            "architecture": self.architecture,
            "peak_tflops": dict(self.peak_tflops),
            "memory_bandwidth_gbps": self.memory_bandwidth_gbps,
            "pcie": f"gen{self.pcie_gen} x{self.pcie_width}",
            "tdp_w": self.tdp_w,
            "boost_clock_mhz": self.boost_clock_mhz,
            "sources": [source_url(s) for s in self.sources],
        }


def pcie_bandwidth(gen: int | None, width: int | None) -> float | None:
    """Usable GB/s per direction of a PCIe link, or None when either number is unknown."""
    if not gen or not width or gen not in PCIE_LANE_GBPS:
        return None
    return round(PCIE_LANE_GBPS[gen] * width, 2)


@functools.lru_cache(maxsize=1)
def table() -> dict[str, Any]:
    return json.loads(TABLE.read_text())


@functools.lru_cache(maxsize=1)
def all_skus() -> tuple[Sku, ...]:
    return tuple(_sku(record) for record in table()["skus"])


def _sku(r: dict[str, Any]) -> Sku:
    return Sku(
        key=r["key"],
        names=tuple(r["names"]),
        pci_device_ids=tuple(int(i, 16) for i in r["pci_device_ids"]),
        architecture=r["architecture"],
        compute_cap=r["compute_cap"],
        peak_tflops=dict(r["peak_tflops"]),
        memory_bandwidth_gbps=float(r["memory_bandwidth_gbps"]),
        pcie_gen=int(r["pcie"]["gen"]),
        pcie_width=int(r["pcie"]["width"]),
        tdp_w=float(r["tdp_w"]),
        boost_clock_mhz=int(r["boost_clock_mhz"]),
        nvlink_gbps=r.get("nvlink_gbps"),
        dcgm_reference=dict(r.get("dcgm_reference") or {}),
        sources=tuple(r["sources"]),
        notes=r.get("notes"),
    )


def source_url(key: str) -> str:
    return table()["sources"][key]["url"]


def normalise_name(name: str) -> str:
    text = re.sub(r"[\s\-_]+", " ", name.strip().lower())
    return text.removeprefix("nvidia ").strip()


def device_id(pci_device_id: int | str | None) -> int | None:
    """The PCI device id from NVML's packed pciDeviceId (or an already plain id / hex string)."""
    if pci_device_id is None or isinstance(pci_device_id, bool):
        return None
    if isinstance(pci_device_id, str):
        try:
            pci_device_id = int(pci_device_id, 16)
        except ValueError:
            return None
    value = int(pci_device_id)
    if value > 0xFFFF:  # packed: device in the upper half, vendor (0x10de) in the lower
        value >>= 16
    return value or None


def lookup(pci_device_id: int | str | None = None, name: str | None = None) -> Sku | None:
    """The SKU for a GPU: by PCI device id first, then by name; None when neither is known."""
    wanted = device_id(pci_device_id)
    if wanted is not None:
        for sku in all_skus():
            if wanted in sku.pci_device_ids:
                return sku
    if name:
        key = normalise_name(name)
        for sku in all_skus():
            if key in (normalise_name(n) for n in sku.names):
                return sku
    return None


def expected_fraction(test: str, sku: Sku | None) -> float | None:
    """The share of the datasheet peak a healthy card reaches in `test` (see skus.json)."""
    if sku is not None:
        measured = _dcgm_fraction(test, sku)
        if measured is not None:
            return measured
    entry = table()["expected_fraction"].get(test)
    return None if entry is None else float(entry["value"])


def _dcgm_fraction(test: str, sku: Sku) -> float | None:
    """NVIDIA's own measurement on a known-good card, as a share of the datasheet peak."""
    ref = sku.dcgm_reference
    if test in ("memory_copy", "memory_triad") and ref.get("memory_gbps"):
        share = ref["memory_gbps"] / sku.memory_bandwidth_gbps
    elif test == "matmul_fp32" and ref.get("sgemm_gflops") and sku.peak_tflops.get("fp32"):
        share = ref["sgemm_gflops"] / 1000.0 / sku.peak_tflops["fp32"]
    else:
        return None
    return round(share, 3) if 0.1 < share <= 1.0 else None  # a reading above peak is not used
