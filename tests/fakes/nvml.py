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
        value = self.scenario["gpus"][handle.index][key]
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
        return self._field("nvmlDeviceGetUUID", h, "uuid")

    def nvmlDeviceGetSerial(self, h):
        return self._field("nvmlDeviceGetSerial", h, "serial")

    def nvmlDeviceGetPciInfo(self, h):
        return SimpleNamespace(busId=self._field("nvmlDeviceGetPciInfo", h, "pci.bus_id"))

    def nvmlDeviceGetCudaComputeCapability(self, h):
        cc = self._field("nvmlDeviceGetCudaComputeCapability", h, "compute_cap")
        return tuple(int(x) for x in cc.split("."))

    # --- memory, thermals, power, clocks ---------------------------------------------
    def nvmlDeviceGetMemoryInfo(self, h, version=None):
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

    def _procs(self, function, h):
        procs = self._field(function, h, "processes")
        return [SimpleNamespace(pid=p["pid"], usedGpuMemory=p["used_memory"] * MIB) for p in procs]

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return self._procs("nvmlDeviceGetComputeRunningProcesses", h)

    def nvmlDeviceGetComputeRunningProcesses_v2(self, h):
        return self._procs("nvmlDeviceGetComputeRunningProcesses_v2", h)


# --- named scenarios -------------------------------------------------------------------


def load_fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text())
    data.pop("_note", None)
    return data


def _h100() -> dict[str, Any]:
    return load_fixture("gpu_h100_pcie.json")


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


SCENARIOS = {
    "healthy_single": _h100,
    "multi_gpu": lambda: _many(4, **{"fabric.state": "Completed", "fabric.status": "Success"}),
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
    "mig": lambda: _with({"mig.mode.current": "Enabled", "mig.mode.pending": "Enabled"}),
    "hung_driver": lambda: _with({}, hang="nvmlDeviceGetTemperature"),
    "hung_at_init": lambda: _with({}, hang="nvmlInit"),
    "hung_one_gpu": lambda: {**_many(2), "hang": "nvmlDeviceGetName", "hang_index": 1},
    "hostile_strings": _hostile,
    "fabric_manager_down": lambda: _many(
        8, **{"fabric.state": "Not Started", "fabric.status": "NVML error 10"}
    ),
}


def scenario(name: str) -> dict[str, Any]:
    return SCENARIOS[name]()
