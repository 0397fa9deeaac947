"""NVML readings taken while the GPU child runs, so a slow result comes with its cause.

One snapshot of the slow-changing facts per GPU before the run (limits, link
maxima, ECC, persistence, PCI device id), then a light sample every interval:
SM clock, power, clocks-event reasons, PCIe link, P-state, temperature,
utilisation and, every few samples, the processes on the GPU. Keys follow
nvidia-smi's --query-gpu names. NVML trouble ends sampling; it never ends the run.
The recorded form (to_dict) is what verdicts.py reads and what tests replay.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from dlcheck import nvml
from dlcheck.text import clean_or_none

_CLOCK_SM, _CLOCK_MEM, _TEMPERATURE_GPU = 1, 2, 0
PROCESS_EVERY = 4  # samples between process listings (they cost more than the rest)


def pci_device_id(handle) -> str | None:
    """'0x2330' from nvmlDeviceGetPciInfo().pciDeviceId (device << 16 | vendor)."""
    try:
        info = nvml.query("nvmlDeviceGetPciInfo", handle)
    except Exception:
        return None
    packed = getattr(info, "pciDeviceId", None)
    if not isinstance(packed, int) or packed <= 0:
        return None
    return f"0x{(packed >> 16) & 0xFFFF:04x}"


class Telemetry:
    def __init__(self, indices: list[int], interval: float = 0.25, clock=time.time):
        self.indices = list(indices)
        self.interval = interval
        self.clock = clock
        self.static: dict[int, dict[str, Any]] = {}
        self.samples: dict[int, list[dict[str, Any]]] = {i: [] for i in self.indices}
        self.processes: dict[int, dict[int, dict[str, Any]]] = {i: {} for i in self.indices}
        self.error: str | None = None
        self._handles: dict[int, Any] = {}
        self._count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="perf-telemetry", daemon=True)

    # --- lifecycle -------------------------------------------------------------------
    def snapshot(self, records: list[dict[str, Any]]) -> None:
        """Keep the static facts from `dlcheck gpu` records (gpu.collect) for our GPUs."""
        for record in records:
            index = record["index"]
            if index not in self.samples:
                continue
            try:
                handle = nvml.query("nvmlDeviceGetHandleByIndex", index)
            except Exception as error:
                self.error = f"gpu {index}: {error}"
                continue
            self._handles[index] = handle
            self.static[index] = {**record, "pci.device_id": pci_device_id(handle)}

    def start(self) -> None:
        if self._handles:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.sample_once():
                return
            self._stop.wait(self.interval)

    # --- one sample --------------------------------------------------------------------
    def sample_once(self) -> bool:
        """Read every GPU once; False (and `error` set) when NVML failed."""
        self._count += 1
        try:
            for index, handle in self._handles.items():
                self.samples[index].append(self._read(handle))
                if self._count % PROCESS_EVERY == 1:
                    self._note_processes(index, handle)
        except Exception as error:  # NVML went away or hung up: keep what we have
            self.error = f"NVML sampling stopped: {type(error).__name__}: {error}"
            return False
        return True

    def _read(self, h) -> dict[str, Any]:
        reasons = _first(
            ("nvmlDeviceGetCurrentClocksEventReasons", h),
            ("nvmlDeviceGetCurrentClocksThrottleReasons", h),
        )
        pstate = _q("nvmlDeviceGetPerformanceState", h)
        util = _q("nvmlDeviceGetUtilizationRates", h)
        power = _q("nvmlDeviceGetPowerUsage", h)
        return {
            "t": self.clock(),
            "clocks.current.sm": _q("nvmlDeviceGetClockInfo", h, _CLOCK_SM),
            "clocks.current.memory": _q("nvmlDeviceGetClockInfo", h, _CLOCK_MEM),
            "power.draw": None if power is None else round(power / 1000.0, 1),
            "clocks_event_reasons.active": reasons,
            "pcie.link.gen.current": _q("nvmlDeviceGetCurrPcieLinkGeneration", h),
            "pcie.link.width.current": _q("nvmlDeviceGetCurrPcieLinkWidth", h),
            "pstate": f"P{pstate}" if isinstance(pstate, int) and 0 <= pstate < 32 else None,
            "temperature.gpu": _q("nvmlDeviceGetTemperature", h, _TEMPERATURE_GPU),
            "utilization.gpu": getattr(util, "gpu", None),
        }

    def _note_processes(self, index: int, h) -> None:
        procs = _first(
            ("nvmlDeviceGetComputeRunningProcesses", h),
            ("nvmlDeviceGetComputeRunningProcesses_v2", h),
        )
        for proc in procs or []:
            used = getattr(proc, "usedGpuMemory", None)
            self.processes[index][proc.pid] = {
                "pid": proc.pid,
                "process_name": _process_name(proc.pid),
                "used_memory": used // (1024 * 1024)
                if isinstance(used, int) and used < 2**63
                else None,
            }

    # --- the record --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "static": {str(i): s for i, s in self.static.items()},
            "samples": {str(i): s for i, s in self.samples.items()},
            "processes": {str(i): list(p.values()) for i, p in self.processes.items()},
            "error": self.error,
        }


def _q(function: str, *args) -> Any:
    """One NVML call; unsupported or refused gives None, a lost GPU raises (ends sampling)."""
    try:
        return nvml.query(function, *args)
    except Exception as error:
        if nvml.error_code(error) in ("gpu_lost", "reset_required"):
            raise
        return None


def _first(*calls) -> Any:
    for name, *args in calls:
        value = _q(name, *args)
        if value is not None:
            return value
    return None


def _process_name(pid: int) -> str | None:
    # NVML gives host PIDs; inside a container /proc may not have them (nvidia-docker#1483).
    try:
        return clean_or_none(Path(f"/proc/{pid}/comm").read_text().strip() or None, 64)
    except OSError:
        return None
