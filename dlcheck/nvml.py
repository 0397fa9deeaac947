"""The only module that imports pynvml (from nvidia-ml-py).

Everything else asks through `query()`, so tests replace one thing (the
library object returned by `_import_pynvml`) to fake any GPU or fault.
"""

from __future__ import annotations

import threading
from typing import Any

_lock = threading.Lock()
_library: Any = None  # the pynvml module once nvmlInit succeeded


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


def query(function: str, *args, default: Any = None) -> Any:
    """Call pynvml.<function>(*args); NotSupported / FunctionNotFound give `default`.

    Other NVML errors (GPU lost, no permission on one call) propagate as
    pynvml.NVMLError for the caller to turn into a check.
    """
    lib = library()
    call = getattr(lib, function, None)
    if call is None:  # an older nvidia-ml-py without this binding
        return default
    try:
        return call(*args)
    except lib.NVMLError as error:
        unsupported = (
            getattr(lib, "NVML_ERROR_NOT_SUPPORTED", None),
            getattr(lib, "NVML_ERROR_FUNCTION_NOT_FOUND", None),
        )
        if getattr(error, "value", None) in unsupported:
            return default
        raise
