"""Fake framework probes at the child-process boundary: real child processes, canned JSON."""

from __future__ import annotations

import json
import sys
from typing import Any


def command_for(documents: dict[str, Any]):
    """A replacement for dlcheck.frameworks.probe_command printing documents[name].

    A value "HANG" makes that child sleep; "CRASH" makes it die without output;
    "IGNORE_TERM" makes it sleep and ignore SIGTERM (only SIGKILL ends it).
    """

    def probe_command(name: str) -> list[str]:
        doc = documents.get(name, {"installed": False, "error": None})
        if doc == "HANG":
            return [sys.executable, "-c", "import time; time.sleep(600)"]
        if doc == "IGNORE_TERM":
            code = "import signal as s, time; s.signal(s.SIGTERM, s.SIG_IGN); time.sleep(600)"
            return [sys.executable, "-c", code]
        if doc == "CRASH":
            return [
                sys.executable,
                "-c",
                "import sys; sys.stderr.write('Segfault\\n'); sys.exit(139)",
            ]
        return [sys.executable, "-c", f"import sys; sys.stdout.write({json.dumps(doc)!r})"]

    return probe_command


ARCH_CU130 = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_110", "sm_120"]


def torch_gpu(cuda="13.0", arch_list=ARCH_CU130, gpu_count=1, ok=True, **extra) -> dict[str, Any]:
    devices = [
        {"index": i, "name": "GPU", "capability": "9.0",
         "matmul": {"ok": ok, "max_abs_error": 1e-6 if ok else 3.0, "error": None}}
        for i in range(gpu_count)
    ]  # fmt: skip
    doc = {
        "installed": True,
        "version": f"2.14.1+cu{cuda.replace('.', '')}",
        "cuda": cuda,
        "cuda_build": True,
        "cudnn": "9.24.0",
        "cudnn_built": "9.24.0",
        "is_available": gpu_count > 0,
        "gpu_count": gpu_count,
        "arch_list": arch_list,
        "devices": devices,
        "error": None,
    }
    doc.update(extra)
    return doc


def torch_cpu() -> dict[str, Any]:
    return {"installed": True, "version": "2.13.0+cpu", "cuda": None, "cuda_build": False,
            "is_available": False, "gpu_count": 0, "arch_list": [], "devices": [],
            "error": None}  # fmt: skip


def tensorflow_gpu(gpu_count=1, **extra) -> dict[str, Any]:
    doc = {"installed": True, "version": "2.21.0", "cuda": "12.5.1", "cudnn_built": "9",
           "cudnn": None, "cuda_build": True, "arch_list": [], "is_available": gpu_count > 0,
           "gpu_count": gpu_count, "error": None,
           "devices": [{"index": i, "name": "GPU", "capability": "9.0",
                        "matmul": {"ok": True, "max_abs_error": 0.0, "error": None}}
                       for i in range(gpu_count)]}  # fmt: skip
    doc.update(extra)
    return doc


def keras(backend="tensorflow", source="default", error=None) -> dict[str, Any]:
    return {"installed": True, "version": "3.15.1", "backend": backend,
            "backend_source": source, "backend_error": error, "error": None}  # fmt: skip


HEALTHY = {"torch": torch_gpu(), "tensorflow": tensorflow_gpu(), "keras": keras()}
