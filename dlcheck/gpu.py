"""Per-GPU records from NVML, keyed and unitised as `nvidia-smi --query-gpu` names them.

Units: memory MiB, temperature C, power W, clocks MHz. A value NVML cannot give
(NotSupported, an older driver) is None. A GPU that fails as a whole (lost,
no permission) still gets a record, with `error` set, so the others stay usable. An NVML call
that hangs ends the collection with `nvml.error = "not_responding"` and what was read so far.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pwd
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from dlcheck import compat, nvml
from dlcheck.text import clean

MIB = 1024 * 1024


class GpuProcess(TypedDict):
    pid: int
    process_name: str | None
    used_memory: int | None  # MiB
    type: str  # as nvidia-smi: C compute, G graphics, M MPS, C+G both
    user: str | None
    command: str | None  # the command line, cleaned and cut to 200 characters


class MigDevice(TypedDict):
    index: int
    uuid: str | None
    memory_total: int | None  # MiB
    memory_used: int | None  # MiB


class NvLink(TypedDict):
    link: int
    active: bool


# One GPU, typed once, in nvidia-smi's names (gpustat's habit): FIELDS is its key order.
GpuRecord = TypedDict(
    "GpuRecord",
    {
        "index": int,
        "name": "str | None",
        "uuid": "str | None",
        "serial": "str | None",
        "pci.bus_id": "str | None",
        "compute_cap": "str | None",
        "architecture": "str | None",
        "memory.total": "int | None",
        "memory.used": "int | None",
        "memory.free": "int | None",
        "utilization.gpu": "int | None",
        "utilization.memory": "int | None",
        "utilization.encoder": "int | None",
        "utilization.decoder": "int | None",
        "temperature.gpu": "int | None",
        "temperature.gpu.slowdown": "int | None",
        "fan.speed": "int | None",
        "power.draw": "float | None",
        "enforced.power.limit": "float | None",
        "power.default_limit": "float | None",
        "pstate": "str | None",
        "clocks.current.sm": "int | None",
        "clocks.max.sm": "int | None",
        "clocks.current.memory": "int | None",
        "clocks.max.memory": "int | None",
        "pcie.link.gen.current": "int | None",
        "pcie.link.gen.max": "int | None",
        "pcie.link.gen.gpumax": "int | None",
        "pcie.link.gen.hostmax": "int | None",
        "pcie.link.width.current": "int | None",
        "pcie.link.width.max": "int | None",
        "persistence_mode": "str | None",
        "mig.mode.current": "str | None",
        "mig.mode.pending": "str | None",
        "mig.devices": "list[MigDevice] | None",
        "ecc.mode.current": "str | None",
        "ecc.mode.pending": "str | None",
        "ecc.errors.uncorrected.volatile.total": "int | None",
        "ecc.errors.uncorrected.aggregate.total": "int | None",
        "retired_pages.sbe": "int | None",
        "retired_pages.dbe": "int | None",
        "retired_pages.pending": "bool | None",
        "remapped_rows.correctable": "int | None",
        "remapped_rows.uncorrectable": "int | None",
        "remapped_rows.pending": "bool | None",
        "remapped_rows.failure": "bool | None",
        "clocks_event_reasons.active": "str | None",
        "clocks_event_reasons.decoded": "list[str] | None",
        "fabric.state": "str | None",
        "fabric.status": "str | None",
        "nvlink.links": "list[NvLink] | None",
        "processes": "list[GpuProcess] | None",
        "error": "str | None",
    },
)
FIELDS = tuple(GpuRecord.__annotations__)  # every record has exactly these keys, in order


# nvmlClocksEventReason* bits -> the words nvidia-smi uses for clocks_throttle_reasons.*
CLOCKS_EVENT_REASONS = {
    0x1: "gpu_idle",
    0x2: "applications_clocks_setting",
    0x4: "sw_power_cap",
    0x8: "hw_slowdown",
    0x10: "sync_boost",
    0x20: "sw_thermal_slowdown",
    0x40: "hw_thermal_slowdown",
    0x80: "hw_power_brake_slowdown",
    0x100: "display_clock_setting",
}


@dataclass
class DriverInfo:
    version: str | None = None
    nvml_version: str | None = None
    cuda_driver_version: str | None = None


@dataclass
class NvmlState:
    error: str | None = None  # NvmlUnavailable.reason, device_count_failed, or None
    detail: str | None = None
    missing_functions: list[str] = field(default_factory=list)


@dataclass
class GpuInventory:
    """What NVML says about the driver and every GPU (`dlcheck gpu --json` data)."""

    driver: DriverInfo = field(default_factory=DriverInfo)
    gpus: list[GpuRecord] = field(default_factory=list)
    nvml: NvmlState = field(default_factory=NvmlState)

    @property
    def usable(self) -> list[GpuRecord]:
        return [g for g in self.gpus if not g["error"]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "driver": vars(self.driver),
            "gpus": self.gpus,
            "nvml": vars(self.nvml),
        }


NVLINK_MAX_LINKS = 18  # NVML_NVLINK_MAX_LINKS is 18 through Hopper, 36 in newer bindings
FABRIC_STATES = {0: "Not Supported", 1: "Not Started", 2: "In Progress", 3: "Completed"}

# NVML constants, fixed by the NVML ABI (nvml.h); spelled here so tests need no pynvml.
_TEMPERATURE_GPU = 0
_THRESHOLD_SLOWDOWN = 1
_CLOCK_SM, _CLOCK_MEM = 1, 2
_ECC_UNCORRECTED, _ECC_VOLATILE, _ECC_AGGREGATE = 1, 0, 1
_PAGES_SBE, _PAGES_DBE = 0, 1


class _GpuFailed(Exception):
    def __init__(self, code: str):
        self.code = code


def decode_clocks_event_reasons(mask: int | None) -> list[str] | None:
    if mask is None:
        return None
    return [word for bit, word in CLOCKS_EVENT_REASONS.items() if mask & bit]


MASK_KEY_ENV = "DLCHECK_MASK_KEY"


def mask_id(value: str | None) -> str | None:
    """Hide a UUID or serial behind a short keyed hash: 'GPU-masked-1a2b3c4d'.

    Distinct per GPU and stable across runs and hosts, so reports can be compared without
    sharing the identifier. The key is DLCHECK_MASK_KEY (a site's own secret makes serials,
    which are short, unguessable from the mask), else a fixed one.
    """
    if value is None:
        return None
    key = os.environ.get(MASK_KEY_ENV, "dlcheck-mask-v1").encode()
    digest = hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:8]
    prefix = value.split("-", 1)[0] + "-" if value.startswith(("GPU-", "MIG-")) else ""
    return f"{prefix}masked-{digest}"


def matches(record: GpuRecord, wanted: str) -> bool:
    """Does `wanted` (as nvidia-smi -i takes it: an index, a UUID, a PCI bus id; here also the
    masked UUID a shared report shows) name this GPU?"""
    wanted = wanted.strip().lower()
    uuid = (record["uuid"] or "").lower()
    bus = (record["pci.bus_id"] or "").lower()
    return (
        wanted == str(record["index"])
        or (bool(uuid) and wanted in (uuid, uuid.removeprefix("gpu-"),
                                      (mask_id(record["uuid"]) or "").lower()))
        or (bool(bus) and wanted.split(":")[-2:] == bus.split(":")[-2:] and ":" in wanted)
    )  # fmt: skip


def collect(show_ids: bool = False, select: tuple[str, ...] = ()) -> GpuInventory:
    """The driver and every GPU (or those `select` names, see matches()); never raises for an
    NVML problem (it lands in `.nvml`)."""
    inventory = GpuInventory()
    try:
        nvml.library()
        _fill_driver(inventory.driver)
        count = _safe("nvmlDeviceGetCount")
        if count is None:  # the device count itself failed: the library works, the GPUs do not
            inventory.nvml.error, inventory.nvml.detail = (
                "device_count_failed", "nvmlDeviceGetCount failed")  # fmt: skip
            count = 0
        for index in range(count):
            record = _gpu_record(index)
            if not select or any(matches(record, wanted) for wanted in select):
                inventory.gpus.append(record)
    except nvml.NvmlUnavailable as error:  # at init, or a call that never returned
        inventory.nvml.error, inventory.nvml.detail = error.reason, error.detail
    inventory.nvml.missing_functions = nvml.missing_functions()
    if not show_ids:
        for record in inventory.gpus:
            _mask(record)
    return inventory


def _fill_driver(driver: DriverInfo) -> None:
    driver.version = _text(_safe("nvmlSystemGetDriverVersion"))
    driver.nvml_version = _text(_safe("nvmlSystemGetNVMLVersion"))
    cuda = _first(("nvmlSystemGetCudaDriverVersion",), ("nvmlSystemGetCudaDriverVersion_v2",))
    driver.cuda_driver_version = compat.decode_cuda_version(cuda)


def _gpu_record(index: int) -> GpuRecord:
    record: Any = dict.fromkeys(FIELDS)
    record["index"] = index
    try:
        handle = _get("nvmlDeviceGetHandleByIndex", index)
        if handle is None:
            raise _GpuFailed("gpu_not_found")
        _fill(record, handle)
    except _GpuFailed as failure:
        record["error"] = failure.code
    return record


def _mask(record: GpuRecord) -> None:
    record["uuid"], record["serial"] = mask_id(record["uuid"]), mask_id(record["serial"])
    for device in record["mig.devices"] or []:
        device["uuid"] = mask_id(device["uuid"])


def _fill(r: Any, h) -> None:
    r["name"] = _text(_get("nvmlDeviceGetName", h))
    r["uuid"] = _text(_get("nvmlDeviceGetUUID", h))
    r["serial"] = _text(_get("nvmlDeviceGetSerial", h))
    pci = _get("nvmlDeviceGetPciInfo", h)
    r["pci.bus_id"] = _text(getattr(pci, "busId", None)) if pci is not None else None
    cc = _get("nvmlDeviceGetCudaComputeCapability", h)
    r["compute_cap"] = f"{cc[0]}.{cc[1]}" if cc else None
    r["architecture"] = compat.architecture(r["compute_cap"])

    # v2 reports "used" without the driver's reservation (gpustat #141); v1 on drivers < 510.
    memory = _first(("nvmlDeviceGetMemoryInfo", h, {"version": _memory_v2()}))
    if memory is None:
        memory = _get("nvmlDeviceGetMemoryInfo", h)
    if memory is not None:
        r["memory.total"] = _mib(memory.total)
        r["memory.used"] = _mib(memory.used)
        r["memory.free"] = _mib(memory.free)

    rates = _get("nvmlDeviceGetUtilizationRates", h)  # NotSupported on MIG-enabled GPUs
    r["utilization.gpu"] = getattr(rates, "gpu", None)
    r["utilization.memory"] = getattr(rates, "memory", None)
    r["utilization.encoder"] = _first_value(_get("nvmlDeviceGetEncoderUtilization", h))
    r["utilization.decoder"] = _first_value(_get("nvmlDeviceGetDecoderUtilization", h))
    r["fan.speed"] = _get("nvmlDeviceGetFanSpeed", h)  # NotSupported on passively cooled cards
    r["temperature.gpu"] = _get("nvmlDeviceGetTemperature", h, _TEMPERATURE_GPU)
    r["temperature.gpu.slowdown"] = _get(
        "nvmlDeviceGetTemperatureThreshold", h, _THRESHOLD_SLOWDOWN
    )
    r["power.draw"] = _watts(_get("nvmlDeviceGetPowerUsage", h))
    r["enforced.power.limit"] = _watts(_get("nvmlDeviceGetEnforcedPowerLimit", h))
    r["power.default_limit"] = _watts(_get("nvmlDeviceGetPowerManagementDefaultLimit", h))
    pstate = _get("nvmlDeviceGetPerformanceState", h)
    r["pstate"] = f"P{pstate}" if pstate is not None and 0 <= pstate < 32 else None
    r["clocks.current.sm"] = _get("nvmlDeviceGetClockInfo", h, _CLOCK_SM)
    r["clocks.max.sm"] = _get("nvmlDeviceGetMaxClockInfo", h, _CLOCK_SM)
    r["clocks.current.memory"] = _get("nvmlDeviceGetClockInfo", h, _CLOCK_MEM)
    r["clocks.max.memory"] = _get("nvmlDeviceGetMaxClockInfo", h, _CLOCK_MEM)

    r["pcie.link.gen.current"] = _get("nvmlDeviceGetCurrPcieLinkGeneration", h)
    r["pcie.link.gen.max"] = _get("nvmlDeviceGetMaxPcieLinkGeneration", h)  # device AND host
    r["pcie.link.gen.gpumax"] = _get("nvmlDeviceGetGpuMaxPcieLinkGeneration", h)
    r["pcie.link.gen.hostmax"] = _host_max(r["pcie.link.gen.max"], r["pcie.link.gen.gpumax"])
    r["pcie.link.width.current"] = _get("nvmlDeviceGetCurrPcieLinkWidth", h)
    r["pcie.link.width.max"] = _get("nvmlDeviceGetMaxPcieLinkWidth", h)

    r["persistence_mode"] = _enabled(_get("nvmlDeviceGetPersistenceMode", h))
    mig = _get("nvmlDeviceGetMigMode", h)
    r["mig.mode.current"], r["mig.mode.pending"] = _pair(mig)
    r["mig.devices"] = _mig_devices(h) if r["mig.mode.current"] == "Enabled" else None
    ecc = _get("nvmlDeviceGetEccMode", h)
    r["ecc.mode.current"], r["ecc.mode.pending"] = _pair(ecc)
    if r["ecc.mode.current"] == "Enabled":
        for scope, counter in (("volatile", _ECC_VOLATILE), ("aggregate", _ECC_AGGREGATE)):
            r[f"ecc.errors.uncorrected.{scope}.total"] = _get(
                "nvmlDeviceGetTotalEccErrors", h, _ECC_UNCORRECTED, counter
            )
        sbe = _get("nvmlDeviceGetRetiredPages", h, _PAGES_SBE)
        dbe = _get("nvmlDeviceGetRetiredPages", h, _PAGES_DBE)
        r["retired_pages.sbe"] = len(sbe) if sbe is not None else None
        r["retired_pages.dbe"] = len(dbe) if dbe is not None else None
        pending = _get("nvmlDeviceGetRetiredPagesPendingStatus", h)
        r["retired_pages.pending"] = bool(pending) if pending is not None else None
    rows = _get("nvmlDeviceGetRemappedRows", h)  # Ampere+; NotSupported before
    if rows is not None:
        corr, unc, is_pending, failure = rows
        r["remapped_rows.correctable"], r["remapped_rows.uncorrectable"] = corr, unc
        r["remapped_rows.pending"], r["remapped_rows.failure"] = bool(is_pending), bool(failure)

    # ClocksThrottleReasons is deprecated in favour of ClocksEventReasons (removed in CUDA 14).
    reasons = _first(
        ("nvmlDeviceGetCurrentClocksEventReasons", h),
        ("nvmlDeviceGetCurrentClocksThrottleReasons", h),
    )
    r["clocks_event_reasons.active"] = f"0x{reasons:016x}" if reasons is not None else None
    r["clocks_event_reasons.decoded"] = decode_clocks_event_reasons(reasons)

    fabric = _guard(nvml.fabric_info, h)
    if fabric is not None and fabric[0] != 0:
        r["fabric.state"] = FABRIC_STATES.get(fabric[0], str(fabric[0]))
        r["fabric.status"] = "Success" if fabric[1] == 0 else f"NVML error {fabric[1]}"
    r["nvlink.links"] = _nvlinks(h)
    r["processes"] = _processes(h)


# NVML's process lists and nvidia-smi's letter for each.
PROCESS_LISTS = (
    ("C", ("nvmlDeviceGetComputeRunningProcesses", "nvmlDeviceGetComputeRunningProcesses_v2")),
    ("G", ("nvmlDeviceGetGraphicsRunningProcesses", "nvmlDeviceGetGraphicsRunningProcesses_v2")),
    ("M", ("nvmlDeviceGetMPSComputeRunningProcesses",
           "nvmlDeviceGetMPSComputeRunningProcesses_v2")),
)  # fmt: skip


def _processes(h) -> list[GpuProcess] | None:
    """Compute, graphics and MPS processes (a process in two lists is 'C+G', as nvidia-smi)."""
    found: dict[int, GpuProcess] = {}
    answered = False
    for letter, functions in PROCESS_LISTS:
        procs = _first(*((name, h) for name in functions))
        if procs is None:
            continue
        answered = True
        for proc in procs:
            used = getattr(proc, "usedGpuMemory", None)
            memory = _mib(used) if isinstance(used, int) and used < 2**63 else None
            known = found.get(proc.pid)
            if known is not None:
                known["type"] = "+".join(sorted({*known["type"].split("+"), letter}))
                known["used_memory"] = known["used_memory"] or memory
                continue
            found[proc.pid] = {"pid": proc.pid, "process_name": _process_name(proc.pid),
                               "used_memory": memory, "type": letter,
                               "user": _process_user(proc.pid),
                               "command": _process_command(proc.pid)}  # fmt: skip
    return [found[pid] for pid in sorted(found)] if answered else None


def _process_name(pid: int) -> str | None:
    # NVML returns host PIDs; inside a container /proc may not have them (nvidia-docker#1483).
    try:
        return clean(Path(f"/proc/{pid}/comm").read_text(errors="replace").strip(), 64) or None
    except OSError:
        return None


def _process_user(pid: int) -> str | None:
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    try:
        return clean(pwd.getpwuid(uid).pw_name, 32)
    except KeyError:
        return str(uid)


def _process_command(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return clean(raw.replace(b"\0", b" ").decode(errors="replace").strip(), 200) or None


def _mig_devices(h) -> list[MigDevice]:
    slots = _get("nvmlDeviceGetMaxMigDeviceCount", h) or 0
    devices: list[MigDevice] = []
    for slot in range(slots):
        handle = _get("nvmlDeviceGetMigDeviceHandleByIndex", h, slot)
        if handle is None:  # an empty slot
            continue
        memory = _get("nvmlDeviceGetMemoryInfo", handle)
        devices.append({
            "index": slot,
            "uuid": _text(_get("nvmlDeviceGetUUID", handle)),
            "memory_total": _mib(memory.total) if memory is not None else None,
            "memory_used": _mib(memory.used) if memory is not None else None,
        })  # fmt: skip
    return devices


def _nvlinks(h) -> list[NvLink] | None:
    """The state of each NVLink, until NVML says there are no more (NotSupported on PCIe-only
    cards at link 0, InvalidArgument past the last link)."""
    links: list[NvLink] = []
    for link in range(NVLINK_MAX_LINKS):
        state = _get("nvmlDeviceGetNvLinkState", h, link)
        if state is None:
            break
        links.append({"link": link, "active": bool(state)})
    return links or None


def _memory_v2():
    return getattr(nvml.library(), "nvmlMemory_v2", None)


def _get(function: str, *args) -> Any:
    """One NVML call: None when unsupported or refused; a lost GPU aborts its record; a hung
    call (NvmlNotResponding) aborts the whole collection."""
    try:
        return nvml.query(function, *args)
    except nvml.NvmlUnavailable:
        raise
    except Exception as error:  # pynvml.NVMLError, without importing pynvml here
        code = nvml.error_code(error)
        if code in ("gpu_lost", "reset_required"):
            raise _GpuFailed(code) from None
        return None


def _guard(function, *args) -> Any:
    try:
        return function(*args)
    except nvml.NvmlUnavailable:
        raise
    except Exception as error:
        code = nvml.error_code(error)
        if code in ("gpu_lost", "reset_required"):
            raise _GpuFailed(code) from None
        return None


def _first(*calls) -> Any:
    """The first call (name, *args[, kwargs-dict]) that gives a value: newer API, then older."""
    for name, *args in calls:
        kwargs = args.pop() if args and isinstance(args[-1], dict) else {}
        if kwargs and any(v is None for v in kwargs.values()):
            continue
        try:
            value = nvml.query(name, *args, **kwargs)
        except nvml.NvmlUnavailable:
            raise
        except Exception as error:
            if nvml.error_code(error) in ("gpu_lost", "reset_required"):
                raise _GpuFailed(nvml.error_code(error)) from None
            value = None
        if value is not None:
            return value
    return None


def _safe(function: str, *args) -> Any:
    try:
        return nvml.query(function, *args)
    except nvml.NvmlUnavailable:
        raise
    except Exception:
        return None


def _text(value) -> str | None:
    if value is None:
        return None
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return clean(text, 256)


def _first_value(pair) -> int | None:
    """(utilization %, sampling period us) from the encoder/decoder calls -> the %."""
    return None if pair is None else int(pair[0])


def _mib(value) -> int | None:
    return None if value is None else int(value) // MIB


def _watts(milliwatts) -> float | None:
    return None if milliwatts is None else round(milliwatts / 1000.0, 2)


def _enabled(flag) -> str | None:
    return None if flag is None else ("Enabled" if flag else "Disabled")


def _pair(values) -> tuple[str | None, str | None]:
    if not values:
        return None, None
    return _enabled(values[0]), _enabled(values[1])


def _host_max(system_max: int | None, gpu_max: int | None) -> int | None:
    """nvmlDeviceGetMaxPcieLinkGeneration is min(device, host): below the GPU's max, the host
    is the limit; at the GPU's max the host's own limit is unknown (>= it), so None."""
    if system_max is None or gpu_max is None:
        return None
    return system_max if system_max < gpu_max else None
