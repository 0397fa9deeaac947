"""A fake pynvml module driven by a scenario, for the one seam `dlcheck.nvml._import_pynvml`.

A scenario has the shape of `dlcheck gpu --json --show-ids` data (driver + per-GPU records in
nvidia-smi units), plus fault knobs:
  init_error        "NVML_ERROR_LIBRARY_NOT_FOUND" | ... : nvmlInit raises it
  device_errors     {index: {function name or "*": "NVML_ERROR_..."}}
  missing_functions [function names]: they raise FunctionNotFound (an older driver)
  hang              function name (or "*" for every call): that call blocks until
                    FakePynvml.release() (a wedged driver after an Xid)
  hang_index        with hang: only that GPU's calls block (one wedged GPU among healthy ones)
So a real capture from a GPU machine replays as a scenario unchanged.
The fake encodes records back into raw NVML units (bytes, mW, ints, tuples), so the
decoding in dlcheck/gpu.py is really exercised. Errors are the real pynvml classes.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml as _real

MIB = 1024 * 1024
FIXTURES = Path(__file__).parent.parent / "fixtures"
FABRIC = {"Not Supported": 0, "Not Started": 1, "In Progress": 2, "Completed": 3}


class _FabricInfo:
    def __init__(self):
        self.state = 0
        self.status = 0


class FakePynvml:
    NVMLError = _real.NVMLError
    nvmlMemory_v2 = _real.nvmlMemory_v2
    c_nvmlGpuFabricInfo_t = _FabricInfo

    def __init__(self, scenario: dict[str, Any]):
        self.scenario = scenario
        self.calls: list[str] = []
        self._unblock = threading.Event()
        self.on_hang = lambda: None  # called as a call starts to block (tests time signals by it)
        for name in dir(_real):
            if name.startswith("NVML_ERROR_") or name == "NVML_SUCCESS":
                setattr(self, name, getattr(_real, name))

    # --- helpers -------------------------------------------------------------------
    def _raise(self, constant: str):
        raise _real.NVMLError(getattr(_real, constant))

    def release(self):
        """Let a hung call return (tests end; the worker thread must not stay blocked)."""
        self._unblock.set()

    def _check(self, function: str, index: int | None = None):
        self.calls.append(function)
        if self.scenario.get("hang") in (function, "*") and self.scenario.get(
            "hang_index", index
        ) == index:
            self.on_hang()
            self._unblock.wait()
        if function in self.scenario.get("missing_functions", []):
            self._raise("NVML_ERROR_FUNCTION_NOT_FOUND")
        if index is not None:
            errors = self.scenario.get("device_errors", {}).get(index) or {}
            constant = errors.get(function) or errors.get("*")
            if constant:
                self._raise(constant)

    def _field(self, function: str, handle, key: str):
        self._check(function, handle.index)
        value = self.scenario["gpus"][handle.index].get(key)
        if value is None:
            self._raise("NVML_ERROR_NOT_SUPPORTED")
        return value

    @staticmethod
    def byref(value):
        return value

    # --- system --------------------------------------------------------------------
    def nvmlInit(self):
        self._check("nvmlInit")
        if self.scenario.get("init_error"):
            self._raise(self.scenario["init_error"])

    def nvmlShutdown(self):
        pass

    def nvmlSystemGetDriverVersion(self):
        self._check("nvmlSystemGetDriverVersion")
        return self.scenario["driver"]["version"]

    def nvmlSystemGetNVMLVersion(self):
        self._check("nvmlSystemGetNVMLVersion")
        return self.scenario["driver"]["nvml_version"]

    def nvmlSystemGetCudaDriverVersion(self):
        self._check("nvmlSystemGetCudaDriverVersion")
        major, minor = self.scenario["driver"]["cuda_driver_version"].split(".")
        return int(major) * 1000 + int(minor) * 10

    def nvmlDeviceGetCount(self):
        self._check("nvmlDeviceGetCount")
        return len(self.scenario["gpus"])

    def nvmlDeviceGetHandleByIndex(self, index):
        self._check("nvmlDeviceGetHandleByIndex", index)
        return SimpleNamespace(index=index)

    # --- identity --------------------------------------------------------------------
    def nvmlDeviceGetName(self, h):
        return self._field("nvmlDeviceGetName", h, "name")

    def nvmlDeviceGetUUID(self, h):
        if getattr(h, "mig", None) is not None:
            return h.mig["uuid"]
        return self._field("nvmlDeviceGetUUID", h, "uuid")

    def nvmlDeviceGetSerial(self, h):
        return self._field("nvmlDeviceGetSerial", h, "serial")

    def nvmlDeviceGetPciInfo(self, h):
        info = SimpleNamespace(busId=self._field("nvmlDeviceGetPciInfo", h, "pci.bus_id"))
        # Optional, scenario-level (the per-GPU records keep `dlcheck gpu`'s exact shape):
        # {"pci_device_ids": {index: "0x2330"}} -> pciDeviceId packed as NVML packs it.
        ids = self.scenario.get("pci_device_ids") or {}
        device = ids.get(h.index, ids.get(str(h.index)))
        if device:
            info.pciDeviceId = (int(device, 16) << 16) | 0x10DE
        return info

    def nvmlDeviceGetCudaComputeCapability(self, h):
        cc = self._field("nvmlDeviceGetCudaComputeCapability", h, "compute_cap")
        return tuple(int(x) for x in cc.split("."))

    # --- memory, thermals, power, clocks ---------------------------------------------
    def nvmlDeviceGetMemoryInfo(self, h, version=None):
        if getattr(h, "mig", None) is not None:
            mig = h.mig
            return SimpleNamespace(total=mig["memory_total"] * MIB, used=mig["memory_used"] * MIB,
                                   free=(mig["memory_total"] - mig["memory_used"]) * MIB)
        if version is not None:
            self._check("nvmlDeviceGetMemoryInfo_v2", h.index)
        g = self.scenario["gpus"][h.index]
        self._field("nvmlDeviceGetMemoryInfo", h, "memory.total")
        return SimpleNamespace(
            total=g["memory.total"] * MIB, used=g["memory.used"] * MIB, free=g["memory.free"] * MIB
        )

    def nvmlDeviceGetTemperature(self, h, sensor):
        assert sensor == _real.NVML_TEMPERATURE_GPU
        return self._field("nvmlDeviceGetTemperature", h, "temperature.gpu")

    def nvmlDeviceGetTemperatureThreshold(self, h, kind):
        assert kind == _real.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN
        return self._field("nvmlDeviceGetTemperatureThreshold", h, "temperature.gpu.slowdown")

    def _milliwatts(self, function, h, key):
        return int(round(self._field(function, h, key) * 1000))

    def nvmlDeviceGetPowerUsage(self, h):
        return self._milliwatts("nvmlDeviceGetPowerUsage", h, "power.draw")

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return self._milliwatts("nvmlDeviceGetEnforcedPowerLimit", h, "enforced.power.limit")

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h):
        return self._milliwatts(
            "nvmlDeviceGetPowerManagementDefaultLimit", h, "power.default_limit"
        )

    def nvmlDeviceGetPerformanceState(self, h):
        return int(self._field("nvmlDeviceGetPerformanceState", h, "pstate")[1:])

    def _clock(self, function, h, kind, scope):
        name = {_real.NVML_CLOCK_SM: "sm", _real.NVML_CLOCK_MEM: "memory"}[kind]
        return self._field(function, h, f"clocks.{scope}.{name}")

    def nvmlDeviceGetClockInfo(self, h, kind):
        return self._clock("nvmlDeviceGetClockInfo", h, kind, "current")

    def nvmlDeviceGetMaxClockInfo(self, h, kind):
        return self._clock("nvmlDeviceGetMaxClockInfo", h, kind, "max")

    # --- PCIe ------------------------------------------------------------------------
    def nvmlDeviceGetCurrPcieLinkGeneration(self, h):
        return self._field("nvmlDeviceGetCurrPcieLinkGeneration", h, "pcie.link.gen.current")

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h):
        return self._field("nvmlDeviceGetMaxPcieLinkGeneration", h, "pcie.link.gen.max")

    def nvmlDeviceGetGpuMaxPcieLinkGeneration(self, h):
        return self._field("nvmlDeviceGetGpuMaxPcieLinkGeneration", h, "pcie.link.gen.gpumax")

    def nvmlDeviceGetCurrPcieLinkWidth(self, h):
        return self._field("nvmlDeviceGetCurrPcieLinkWidth", h, "pcie.link.width.current")

    def nvmlDeviceGetMaxPcieLinkWidth(self, h):
        return self._field("nvmlDeviceGetMaxPcieLinkWidth", h, "pcie.link.width.max")

    # --- modes, ECC, memory health ----------------------------------------------------
    def nvmlDeviceGetPersistenceMode(self, h):
        return int(self._field("nvmlDeviceGetPersistenceMode", h, "persistence_mode") == "Enabled")

    def _mode_pair(self, function, h, prefix):
        current = self._field(function, h, f"{prefix}.current")
        pending = self.scenario["gpus"][h.index][f"{prefix}.pending"]
        return [int(current == "Enabled"), int(pending == "Enabled")]

    def nvmlDeviceGetMigMode(self, h):
        return self._mode_pair("nvmlDeviceGetMigMode", h, "mig.mode")

    def nvmlDeviceGetEccMode(self, h):
        return self._mode_pair("nvmlDeviceGetEccMode", h, "ecc.mode")

    def nvmlDeviceGetTotalEccErrors(self, h, error_type, counter):
        assert error_type == _real.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
        scope = {_real.NVML_VOLATILE_ECC: "volatile", _real.NVML_AGGREGATE_ECC: "aggregate"}
        key = f"ecc.errors.uncorrected.{scope[counter]}.total"
        return self._field("nvmlDeviceGetTotalEccErrors", h, key)

    def nvmlDeviceGetRetiredPages(self, h, cause):
        key = {0: "retired_pages.sbe", 1: "retired_pages.dbe"}[cause]
        return [0x1000 * i for i in range(self._field("nvmlDeviceGetRetiredPages", h, key))]

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h):
        key = "retired_pages.pending"
        return int(self._field("nvmlDeviceGetRetiredPagesPendingStatus", h, key))

    def nvmlDeviceGetRemappedRows(self, h):
        g = self.scenario["gpus"][h.index]
        self._field("nvmlDeviceGetRemappedRows", h, "remapped_rows.pending")
        return (
            g["remapped_rows.correctable"],
            g["remapped_rows.uncorrectable"],
            int(g["remapped_rows.pending"]),
            int(g["remapped_rows.failure"]),
        )

    def _reasons(self, function, h):
        return int(self._field(function, h, "clocks_event_reasons.active"), 16)

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return self._reasons("nvmlDeviceGetCurrentClocksEventReasons", h)

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h):
        return self._reasons("nvmlDeviceGetCurrentClocksThrottleReasons", h)

    def nvmlDeviceGetGpuFabricInfo(self, h, info):
        info.state = FABRIC[self._field("nvmlDeviceGetGpuFabricInfo", h, "fabric.state")]
        status = self.scenario["gpus"][h.index]["fabric.status"]
        info.status = 0 if status == "Success" else _real.NVML_ERROR_NOT_READY
        return 0

    def _procs(self, function, h, letter="C"):
        procs = self._field(function, h, "processes")
        return [SimpleNamespace(pid=p["pid"], usedGpuMemory=(p["used_memory"] or 0) * MIB)
                for p in procs if letter in p.get("type", "C").split("+")]  # fmt: skip

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return self._procs("nvmlDeviceGetComputeRunningProcesses", h)

    def nvmlDeviceGetComputeRunningProcesses_v2(self, h):
        return self._procs("nvmlDeviceGetComputeRunningProcesses_v2", h)

    def nvmlDeviceGetGraphicsRunningProcesses(self, h):
        return self._procs("nvmlDeviceGetGraphicsRunningProcesses", h, "G")

    def nvmlDeviceGetMPSComputeRunningProcesses(self, h):
        return self._procs("nvmlDeviceGetMPSComputeRunningProcesses", h, "M")

    # --- utilization, fans, NVLink, MIG ------------------------------------------------
    def nvmlDeviceGetUtilizationRates(self, h):
        gpu = self._field("nvmlDeviceGetUtilizationRates", h, "utilization.gpu")
        memory = self.scenario["gpus"][h.index].get("utilization.memory")
        return SimpleNamespace(gpu=gpu, memory=memory)

    def nvmlDeviceGetEncoderUtilization(self, h):
        return [self._field("nvmlDeviceGetEncoderUtilization", h, "utilization.encoder"), 167000]

    def nvmlDeviceGetDecoderUtilization(self, h):
        return [self._field("nvmlDeviceGetDecoderUtilization", h, "utilization.decoder"), 167000]

    def nvmlDeviceGetFanSpeed(self, h):
        return self._field("nvmlDeviceGetFanSpeed", h, "fan.speed")

    def nvmlDeviceGetNvLinkState(self, h, link):
        links = self._field("nvmlDeviceGetNvLinkState", h, "nvlink.links")
        if link >= len(links):
            self._raise("NVML_ERROR_INVALID_ARGUMENT")
        return int(links[link]["active"])

    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        self._field("nvmlDeviceGetMaxMigDeviceCount", h, "mig.devices")
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, slot):
        devices = self._field("nvmlDeviceGetMigDeviceHandleByIndex", h, "mig.devices")
        found = [d for d in devices if d["index"] == slot]
        if not found:
            self._raise("NVML_ERROR_NOT_FOUND")
        return SimpleNamespace(index=h.index, mig=found[0])


# --- named scenarios -------------------------------------------------------------------


def load_fixture(name: str) -> dict[str, Any]:
    """A `dlcheck gpu --json --show-ids` capture; fields it predates read as unsupported."""
    from dlcheck.gpu import FIELDS

    data = json.loads((FIXTURES / name).read_text())
    data.pop("_note", None)
    data["gpus"] = [{**dict.fromkeys(FIELDS), **g} for g in data["gpus"]]
    return data


def _h100() -> dict[str, Any]:
    scenario = load_fixture("gpu_h100_pcie.json")
    # Fields the capture predates, as an idle H100 PCIe reports them (passively cooled: no fan).
    scenario["gpus"][0].update({"utilization.gpu": 0, "utilization.memory": 0,
                                "utilization.encoder": 0, "utilization.decoder": 0})  # fmt: skip
    return scenario


def _busy() -> dict[str, Any]:
    """One H100 at work: a training job, a desktop's graphics process and an MPS client, all
    this test process's pid (so /proc has a user and a command line for them)."""
    me = os.getpid()
    return _with({
        "utilization.gpu": 95, "utilization.memory": 61, "memory.used": 60212,
        "memory.free": 81559 - 60212, "power.draw": 312.4, "temperature.gpu": 71,
        "processes": [{"pid": me, "used_memory": 60100, "type": "C+G"}],
    })  # fmt: skip


def _two_a100(degraded: int | None = None) -> dict[str, Any]:
    """Two A100 80GB PCIe; `degraded` names the GPU whose link trained at gen 3 x8 under load."""
    a100 = {"name": "NVIDIA A100 80GB PCIe", "compute_cap": "8.0", "architecture": "Ampere",
            "memory.total": 81920, "memory.used": 4, "memory.free": 81916,
            "enforced.power.limit": 300.0, "power.default_limit": 300.0, "power.draw": 61.0,
            "clocks.max.sm": 1410, "clocks.current.sm": 1410, "clocks.max.memory": 1512,
            "clocks.current.memory": 1512, "pcie.link.gen.current": 4, "pcie.link.gen.max": 4,
            "pcie.link.gen.gpumax": 4, "pcie.link.width.current": 16,
            "pcie.link.width.max": 16}  # fmt: skip
    scenario = _many(2, **a100)
    if degraded is not None:
        link = {"pcie.link.gen.current": 3, "pcie.link.width.current": 8}
        scenario["gpus"][degraded].update(link)
    return scenario


def _with(gpu_changes: dict[str, Any], base=None, **scenario_changes) -> dict[str, Any]:
    scenario = copy.deepcopy(base or _h100())
    for g in scenario["gpus"]:
        g.update(gpu_changes)
    scenario.update(scenario_changes)
    return scenario


def _many(count: int, **changes) -> dict[str, Any]:
    scenario = _h100()
    template = scenario["gpus"][0]
    scenario["gpus"] = []
    for i in range(count):
        g = {**copy.deepcopy(template), **changes}
        g.update(index=i, uuid=f"GPU-3f1c2a7e-5b6d-4e8f-9a0b-1c2d3e4f5a{i:02d}",
                 serial=f"16501234567{i:02d}")  # fmt: skip
        g["pci.bus_id"] = f"00000000:{0x18 + i * 0x20:02X}:00.0"
        scenario["gpus"].append(g)
    return scenario


def _consumer() -> dict[str, Any]:
    """GeForce RTX 4090: no ECC, no page retirement/remap, no serial, no fabric."""
    unsupported = dict.fromkeys(
        [
            "serial",
            "ecc.mode.current",
            "ecc.mode.pending",
            "ecc.errors.uncorrected.volatile.total",
            "ecc.errors.uncorrected.aggregate.total",
            "retired_pages.sbe",
            "retired_pages.dbe",
            "retired_pages.pending",
            "remapped_rows.correctable",
            "remapped_rows.uncorrectable",
            "remapped_rows.pending",
            "remapped_rows.failure",
            "mig.mode.current",
            "mig.mode.pending",
            "power.default_limit",
        ]
    )
    return _with(
        {
            **unsupported,
            "name": "NVIDIA GeForce RTX 4090",
            "compute_cap": "8.9",
            "architecture": "Ada Lovelace",
            "memory.total": 24564,
            "memory.used": 420,
            "memory.free": 24144,
            "pcie.link.gen.gpumax": 4,
            "pcie.link.gen.max": 4,
            "pcie.link.gen.current": 1,  # idle: downtrained, not a fault
            "pstate": "P8",
            "persistence_mode": "Disabled",
        }
    )


def _old_driver() -> dict[str, Any]:
    """Driver 470: no memory v2, no ClocksEventReasons, no _v3 processes, no GpuMax gen."""
    scenario = _with(
        {"name": "Tesla V100-PCIE-16GB", "compute_cap": "7.0", "architecture": "Volta",
         "remapped_rows.correctable": None, "remapped_rows.uncorrectable": None,
         "remapped_rows.pending": None, "remapped_rows.failure": None,
         "pcie.link.gen.gpumax": None, "pcie.link.gen.max": 3, "pcie.link.gen.current": 3},
        driver={"version": "470.256.02", "nvml_version": "11.470.256.02",
                "cuda_driver_version": "11.4"},
    )  # fmt: skip
    scenario["missing_functions"] = [
        "nvmlDeviceGetMemoryInfo_v2",
        "nvmlDeviceGetCurrentClocksEventReasons",
        "nvmlDeviceGetComputeRunningProcesses",
        "nvmlDeviceGetGpuMaxPcieLinkGeneration",
        "nvmlDeviceGetGpuFabricInfo",
    ]
    return scenario


def _hostile() -> dict[str, Any]:
    """Strings from the driver are untrusted too: rich markup, escape sequences (clear the
    screen, retitle the window, blink), an 8-bit CSI, a bidi override."""
    return _with(
        {"name": "[/]\x1b[2J\x1b]0;pwned\x07NVIDIA [bold]H100[/bold] \u202eeci",
         "serial": "[link=https://x]1650\x9b31m", "architecture": "[red]Hopper"},
        driver={"version": "580.82.07", "nvml_version": "13.580.82.07[/]\x1b[5m",
                "cuda_driver_version": "13.0"},
    )  # fmt: skip


# GPU models `dlcheck perf` must find in its datasheet table, as NVML names them and with the
# PCI device id NVML reports. Names and ids from NVIDIA's driver README table "Product Name |
# PCI ID" (open-gpu-kernel-modules 560.31.02, Turing and later) and, for Volta/Pascal, the PCI
# ID Repository (pci.ids 2023-04-10) and DCGM's diag-skus.yaml; older drivers drop "NVIDIA ".
SKU_MODELS = [
    ("NVIDIA H100 80GB HBM3", "0x2330", "9.0"),
    ("NVIDIA H100 PCIe", "0x2331", "9.0"),
    ("NVIDIA H100 NVL", "0x2321", "9.0"),
    ("NVIDIA H200", "0x2335", "9.0"),
    ("NVIDIA H200 NVL", "0x233b", "9.0"),
    ("NVIDIA A100-SXM4-40GB", "0x20b0", "8.0"),
    ("NVIDIA A100-PCIE-40GB", "0x20f1", "8.0"),
    ("NVIDIA A100-SXM4-80GB", "0x20b2", "8.0"),
    ("NVIDIA A100 80GB PCIe", "0x20b5", "8.0"),
    ("NVIDIA L4", "0x27b8", "8.9"),
    ("NVIDIA L40S", "0x26b9", "8.9"),
    ("NVIDIA A10G", "0x2237", "8.6"),
    ("NVIDIA A10", "0x2236", "8.6"),
    ("Tesla T4", "0x1eb8", "7.5"),
    ("Tesla V100-SXM2-16GB", "0x1db1", "7.0"),
    ("Tesla V100-SXM2-32GB", "0x1db5", "7.0"),
    ("Tesla V100-PCIE-16GB", "0x1db4", "7.0"),
    ("Tesla V100-PCIE-32GB", "0x1db6", "7.0"),
    ("NVIDIA RTX 6000 Ada Generation", "0x26b1", "8.9"),
    ("NVIDIA RTX A6000", "0x2230", "8.6"),
    ("NVIDIA GeForce RTX 4090", "0x2684", "8.9"),
    ("NVIDIA GeForce RTX 4080", "0x2704", "8.9"),
    ("NVIDIA GeForce RTX 3090", "0x2204", "8.6"),
    ("NVIDIA GeForce RTX 3080", "0x2206", "8.6"),
    ("NVIDIA GeForce RTX 3080", "0x220a", "8.6"),
    ("NVIDIA GeForce RTX 3060", "0x2503", "8.6"),
    ("NVIDIA GeForce RTX 3060", "0x2487", "8.6"),
    ("NVIDIA GeForce GTX 1080 Ti", "0x1b06", "6.1"),
    ("GeForce GTX 1080 Ti", "0x1b06", "6.1"),
    ("NVIDIA GeForce GTX 1060 6GB", "0x1c03", "6.1"),
    ("GeForce GTX 1060 3GB", "0x1c02", "6.1"),
]


def _sku_zoo() -> dict[str, Any]:
    """One GPU per model in SKU_MODELS, each with its PCI device id."""
    scenario = _many(len(SKU_MODELS))
    for g, (name, _, cc) in zip(scenario["gpus"], SKU_MODELS, strict=True):
        g.update(name=name, compute_cap=cc)
    scenario["pci_device_ids"] = {i: device for i, (_, device, _) in enumerate(SKU_MODELS)}
    return scenario


def _loaded(changes: dict[str, Any], device_id: str = "0x2331") -> dict[str, Any]:
    """The H100 PCIe under load (P0), with `changes`, and its PCI device id."""
    scenario = _with({"pstate": "P0", "power.draw": 310.0, **changes})
    scenario["pci_device_ids"] = {0: device_id}
    return scenario


SCENARIOS = {
    "healthy_single": _h100,
    "multi_gpu": lambda: _many(4, **{"fabric.state": "Completed", "fabric.status": "Success",
                                      "nvlink.links": [{"link": n, "active": True}
                                                       for n in range(18)]}),
    "busy": _busy,
    "two_a100": _two_a100,
    "two_a100_pcie_degraded": lambda: _two_a100(degraded=1),
    "no_library": lambda: _with({}, init_error="NVML_ERROR_LIBRARY_NOT_FOUND"),
    "driver_not_loaded": lambda: _with({}, init_error="NVML_ERROR_DRIVER_NOT_LOADED"),
    "version_mismatch": lambda: _with({}, init_error="NVML_ERROR_LIB_RM_VERSION_MISMATCH"),
    "no_permission": lambda: _with({}, init_error="NVML_ERROR_NO_PERMISSION"),
    "gpu_lost": lambda: {**_many(2), "device_errors": {1: {"*": "NVML_ERROR_GPU_IS_LOST"}}},
    "consumer_not_supported": _consumer,
    "old_driver_function_not_found": _old_driver,
    "old_driver_new_framework": lambda: _with(
        {},
        driver={
            "version": "535.183.01",
            "nvml_version": "12.535.183.01",
            "cuda_driver_version": "12.2",
        },
    ),  # fmt: skip
    "very_old_driver": lambda: _with(
        {},
        driver={
            "version": "470.256.02",
            "nvml_version": "11.470.256.02",
            "cuda_driver_version": "11.4",
        },
    ),  # fmt: skip
    "pascal": lambda: _with(
        {"name": "NVIDIA GeForce GTX 1080 Ti", "compute_cap": "6.1", "architecture": "Pascal"}
    ),
    "row_remap_pending": lambda: _with({"remapped_rows.pending": True}),
    "page_retirement": lambda: _with({"retired_pages.pending": True, "retired_pages.dbe": 70}),
    "ecc_uncorrected": lambda: _with({"ecc.errors.uncorrected.volatile.total": 3}),
    "throttled": lambda: _with(
        {
            "clocks_event_reasons.active": "0x0000000000000060",
            "clocks_event_reasons.decoded": ["sw_thermal_slowdown", "hw_thermal_slowdown"],
            "temperature.gpu": 92,
        }
    ),
    "pcie_degraded": lambda: _with({"pcie.link.gen.current": 3, "pcie.link.width.current": 8}),
    "host_limited": lambda: _with(
        {"pcie.link.gen.max": 4, "pcie.link.gen.current": 4, "pcie.link.gen.hostmax": 4}
    ),  # fmt: skip
    "persistence_off": lambda: _with({"persistence_mode": "Disabled"}),
    "mig": lambda: _with({
        "mig.mode.current": "Enabled", "mig.mode.pending": "Enabled",
        "utilization.gpu": None, "utilization.memory": None,  # not supported with MIG on
        "mig.devices": [
            {"index": 0, "uuid": "MIG-5c3f3e0b-7f7e-5a3e-9c0e-2b1c6a1d0001",
             "memory_total": 40192, "memory_used": 13},
            {"index": 1, "uuid": "MIG-5c3f3e0b-7f7e-5a3e-9c0e-2b1c6a1d0002",
             "memory_total": 40192, "memory_used": 37}]}),
    "hung_driver": lambda: _with({}, hang="nvmlDeviceGetTemperature"),
    "hung_at_init": lambda: _with({}, hang="nvmlInit"),
    "hung_one_gpu": lambda: {**_many(2), "hang": "nvmlDeviceGetName", "hang_index": 1},
    "hostile_strings": _hostile,
    "fabric_manager_down": lambda: _many(
        8, **{"fabric.state": "Not Started", "fabric.status": "NVML error 10"}
    ),
    # --- dlcheck perf: every datasheet model, and the causes it must name -----------------
    "sku_zoo": _sku_zoo,
    "unknown_sku": lambda: {
        **_with({"name": "NVIDIA GeForce RTX 2080 Ti", "compute_cap": "7.5"}),
        "pci_device_ids": {0: "0x1e04"},
    },
    "loaded_healthy": lambda: _loaded({}),
    "power_capped": lambda: _loaded(
        {
            "enforced.power.limit": 200.0,
            "power.draw": 199.4,
            "clocks.current.sm": 1290,
            "clocks_event_reasons.active": "0x0000000000000004",
            "clocks_event_reasons.decoded": ["sw_power_cap"],
        }
    ),
    "pcie_x8_loaded": lambda: _loaded({"pcie.link.width.current": 8}),
    "throttled_loaded": lambda: _loaded(
        {
            "clocks.current.sm": 1110,
            "temperature.gpu": 91,
            "clocks_event_reasons.active": "0x0000000000000060",
            "clocks_event_reasons.decoded": ["sw_thermal_slowdown", "hw_thermal_slowdown"],
        }
    ),
}


def scenario(name: str) -> dict[str, Any]:
    return SCENARIOS[name]()
