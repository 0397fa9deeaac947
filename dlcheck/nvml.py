"""The only module that imports pynvml (from nvidia-ml-py), and the only way to call it.

Every call goes through `query()`, which runs it on one NVML worker thread under a deadline:
after an Xid or with a wedged GPU, an NVML call can block forever (nvidia-smi, gpustat and
nvitop hang with it). Here the caller gets `NvmlNotResponding` after `timeout()` seconds instead,
every later call fails at once, and the CLI still answers (and Ctrl-C still works: the main
thread never sits inside NVML). Tests replace one thing, `_import_pynvml`, to fake any GPU or
fault.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any

DEFAULT_TIMEOUT_S = 10.0
TIMEOUT_ENV = "DLCHECK_NVML_TIMEOUT"

_lock = threading.Lock()
_library: Any = None  # the pynvml module once nvmlInit succeeded
_missing: set[str] = set()  # functions this driver or binding lacks (FunctionNotFound)
_worker: _Worker | None = None
_stuck: str | None = None  # the call that never returned; NVML is unusable from then on
_timeout_s: float | None = None


class NvmlUnavailable(Exception):
    """NVML cannot be used at all. `reason` is a stable code for checks to map."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason  # library_missing | driver_not_loaded | version_mismatch |
        self.detail = detail  # no_permission | init_failed | not_responding


class NvmlNotResponding(NvmlUnavailable):
    """An NVML call did not return within the deadline (a hung driver or GPU)."""

    def __init__(self, function: str, seconds: float):
        super().__init__(
            "not_responding", f"{function} did not return within {seconds:g} s"
        )
        self.function = function


def set_timeout(seconds: float | None) -> None:
    """The deadline for each NVML call (the --nvml-timeout option); None: the default."""
    global _timeout_s
    _timeout_s = seconds


def timeout() -> float:
    if _timeout_s is not None:
        return _timeout_s
    try:
        value = float(os.environ.get(TIMEOUT_ENV, ""))
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if 0 < value < 1e6 else DEFAULT_TIMEOUT_S


class _Worker:
    """One daemon thread that makes every NVML call, in order. Daemon, so a call stuck in the
    driver cannot keep the process from exiting."""

    def __init__(self):
        self.calls: queue.SimpleQueue = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="dlcheck-nvml", daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            function, args, kwargs, box, done = self.calls.get()
            try:
                box.append((True, function(*args, **kwargs)))
            except BaseException as error:  # handed to the caller's thread
                box.append((False, error))
            done.set()

    def call(self, name: str, function, *args, **kwargs):
        global _stuck
        if threading.current_thread() is self.thread:  # already on the worker
            return function(*args, **kwargs)
        box: list = []
        done = threading.Event()
        self.calls.put((function, args, kwargs, box, done))
        limit = timeout()
        if not _wait(done, limit):
            with _lock:
                _stuck = _stuck or name
            raise NvmlNotResponding(name, limit)
        ok, value = box[0]
        if ok:
            return value
        raise value


def _wait(done: threading.Event, seconds: float) -> bool:
    """done.wait(seconds), in slices: a Ctrl-C that the kernel hands to the thread stuck in the
    driver sets Python's flag but wakes nobody; the main thread must look at least every 0.1 s
    (battery case gpu-nvml-hung-SIGINT once exited 10 s after the signal)."""
    deadline = time.monotonic() + seconds
    while not done.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
        if time.monotonic() >= deadline:
            return False
    return True


def _run(name: str, function, *args, **kwargs):
    global _worker
    if _stuck is not None:
        raise NvmlNotResponding(_stuck, timeout())
    with _lock:
        if _worker is None:
            _worker = _Worker()
        worker = _worker
    return worker.call(name, function, *args, **kwargs)


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
    if _library is not None:
        return _library
    try:
        lib = _import_pynvml()
    except ImportError as error:
        raise NvmlUnavailable("library_missing", f"nvidia-ml-py not importable: {error}") from None
    try:
        _run("nvmlInit", lib.nvmlInit)
    except lib.NVMLError as error:
        raise NvmlUnavailable(_classify_init_error(lib, error), str(error)) from None
    _library = lib
    return lib


def reset() -> None:
    """Forget the initialised library (tests, and long-lived processes after a driver reload).
    A stuck worker is abandoned: a new one serves the next call."""
    global _library, _worker, _stuck
    library, stuck = _library, _stuck
    _library, _stuck = None, None
    _missing.clear()
    if stuck is not None:
        _worker = None
    elif library is not None:
        try:
            _run("nvmlShutdown", library.nvmlShutdown)
        except Exception:  # shutting down a broken library must not mask the real error
            _worker = None


def missing_functions() -> list[str]:
    """NVML functions that were absent (older driver or binding) since the last reset()."""
    return sorted(_missing)


def error_code(error: Exception) -> str:
    """A stable name for an NVMLError: 'gpu_lost', 'no_permission', ... ('nvml_error' otherwise)."""
    if isinstance(error, NvmlNotResponding):
        return "not_responding"
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
    """Call pynvml.<function>(*args) under the deadline; NotSupported / FunctionNotFound give
    `default`.

    Other NVML errors (GPU lost, no permission on one call) propagate as pynvml.NVMLError for
    the caller to turn into a check; a call past the deadline raises NvmlNotResponding.
    """
    lib = library()
    call = getattr(lib, function, None)
    if call is None:  # an older nvidia-ml-py without this binding
        _missing.add(function)
        return default
    try:
        return _run(function, call, *args, **kwargs)
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


def stuck() -> bool:
    """Whether an NVML call is hung (the process should not wait for NVML at exit)."""
    return _stuck is not None
