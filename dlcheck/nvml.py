"""The only module that imports pynvml (from nvidia-ml-py).

Everything else asks through `query()`, so tests replace one thing (the
library object returned by `_import_pynvml`) to fake any GPU or fault.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_library: Any = None  # the pynvml module once nvmlInit succeeded
_missing: set[str] = set()  # functions this driver or binding lacks (FunctionNotFound)


class NvmlUnavailable(Exception):
    """NVML cannot be used at all. `reason` is a stable code for checks to map."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason  # library_missing | driver_not_loaded | version_mismatch |
        self.detail = detail  # no_permission | init_failed


def _import_pynvml():  # the seam tests replace
    import pynvml

    return pynvml


def _classify_init_error(lib, error: Exception) -> str:
    names = {
        "NVML_ERROR_LIBRARY_NOT_FOUND": "library_missing",
        "NVML_ERROR_DRIVER_NOT_LOADED": "driver_not_loaded",
        "NVML_ERROR_LIB_RM_VERSION_MISMATCH": "version_mismatch",
        "NVML_ERROR_NO_PERMISSION": "no_permission",
    }
    value = getattr(error, "value", None)
    for constant, reason in names.items():
        if value is not None and value == getattr(lib, constant, object()):
            return reason
    return "init_failed"


def library():
    """The initialised pynvml module; raises NvmlUnavailable with a reason code."""
    global _library
    with _lock:
        if _library is not None:
            return _library
        try:
            lib = _import_pynvml()
        except ImportError as error:
            raise NvmlUnavailable(
                "library_missing", f"nvidia-ml-py not importable: {error}"
            ) from None
        try:
            lib.nvmlInit()
        except lib.NVMLError as error:
            raise NvmlUnavailable(_classify_init_error(lib, error), str(error)) from None
        _library = lib
        return lib


def reset() -> None:
    """Forget the initialised library (tests, and long-lived processes after a driver reload)."""
    global _library
    with _lock:
        if _library is not None:
            try:
                _library.nvmlShutdown()
            except Exception:  # shutting down a broken library must not mask the real error
                pass
        _library = None
        _missing.clear()


def missing_functions() -> list[str]:
    """NVML functions that were absent (older driver or binding) since the last reset()."""
    return sorted(_missing)


def error_code(error: Exception) -> str:
    """A stable name for an NVMLError: 'gpu_lost', 'no_permission', ... ('nvml_error' otherwise)."""
    lib = _library or _import_pynvml()
    names = {
        "NVML_ERROR_GPU_IS_LOST": "gpu_lost",
        "NVML_ERROR_UNKNOWN": "gpu_lost",  # gpustat treats Unknown per GPU like GpuIsLost
        "NVML_ERROR_NO_PERMISSION": "no_permission",
        "NVML_ERROR_RESET_REQUIRED": "reset_required",
        "NVML_ERROR_OPERATING_SYSTEM": "blocked_by_os",
        "NVML_ERROR_TIMEOUT": "timeout",
    }
    value = getattr(error, "value", None)
    for constant, name in names.items():
        if value is not None and value == getattr(lib, constant, object()):
            return name
    return "nvml_error"


def fabric_info(handle) -> tuple[int, int] | None:
    """(state, status) from nvmlDeviceGetGpuFabricInfo, or None where NVML has no fabric data."""
    lib = library()
    struct = getattr(lib, "c_nvmlGpuFabricInfo_t", None)
    if struct is None:
        return None
    info = struct()
    if query("nvmlDeviceGetGpuFabricInfo", handle, lib.byref(info), default=False) is False:
        return None
    return int(info.state), int(info.status)


def query(function: str, *args, default: Any = None, **kwargs) -> Any:
    """Call pynvml.<function>(*args); NotSupported / FunctionNotFound give `default`.

    Other NVML errors (GPU lost, no permission on one call) propagate as
    pynvml.NVMLError for the caller to turn into a check.
    """
    lib = library()
    call = getattr(lib, function, None)
    if call is None:  # an older nvidia-ml-py without this binding
        _missing.add(function)
        return default
    try:
        return call(*args, **kwargs)
    except lib.NVMLError as error:
        unsupported = (
            getattr(lib, "NVML_ERROR_NOT_SUPPORTED", None),
            getattr(lib, "NVML_ERROR_FUNCTION_NOT_FOUND", None),
        )
        if getattr(error, "value", None) in unsupported:
            if error.value == unsupported[1]:
                _missing.add(function)
            return default
        raise
