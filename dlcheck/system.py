"""Host facts: OS, CPU, RAM, disk, container/VM/WSL, and the kernel side of the NVIDIA driver.

Reads /proc, /sys, /dev and /etc through `Roots` so tests can point them at temp trees.
Never raises for a missing file: a fact it cannot read is None.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NVIDIA_VENDOR = "0x10de"
DISPLAY_CLASS_PREFIX = "0x03"  # PCI class 03: display (VGA 0300, 3D 0302, other 0380)


def is_nvidia_gpu(vendor: str, pci_class: str) -> bool:
    """The one rule for "this PCI function is an NVIDIA GPU", as /sys/bus/pci/devices/*/ spells
    vendor ("0x10de") and class ("0x030200"). The playbooks' GPU fact applies the same rule; a
    test holds them together. Audio, USB and UCSI functions of a GPU card are other classes."""
    return vendor.strip().lower() == NVIDIA_VENDOR and pci_class.strip().lower().startswith(
        DISPLAY_CLASS_PREFIX
    )


@dataclass(frozen=True)
class Roots:
    proc: Path = Path("/proc")
    sys: Path = Path("/sys")
    dev: Path = Path("/dev")
    etc: Path = Path("/etc")
    root: Path = Path("/")  # for /.dockerenv, /run/.containerenv, the library folders


DEFAULT_ROOTS = Roots()

# Folders where distributions and NVIDIA's installers put libnvidia-ml.so.1 (WSL: /usr/lib/wsl/lib).
NVML_LIBRARY_DIRS = (
    "usr/lib/x86_64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "usr/lib64",
    "usr/lib",
    "usr/lib/wsl/lib",
    "usr/local/nvidia/lib64",
)


def collect(roots: Roots | None = None) -> dict[str, Any]:
    roots = roots or DEFAULT_ROOTS
    return {
        "host": {"hostname": socket.gethostname()},
        "system": {
            "os": _os_name(roots),
            "kernel": platform.release(),
            "machine": platform.machine(),
            "python": platform.python_version(),
            "python_executable": sys.executable,
            "cpu": _cpu(roots),
            "memory": _memory(roots),
            "disk": _disk(),
            "virtualization": _virtualization(roots),
        },
        "kernel": kernel_side(roots),
    }


def kernel_side(roots: Roots | None = None) -> dict[str, Any]:
    """What the kernel says about NVIDIA GPUs, independent of NVML."""
    roots = roots or DEFAULT_ROOTS
    modules = _loaded_modules(roots)
    return {
        "nvidia_module_loaded": "nvidia" in modules if modules is not None else None,
        "nouveau_module_loaded": "nouveau" in modules if modules is not None else None,
        "nvidia_module_version": _module_version(roots),
        "nvml_library_version": nvml_library_version(roots),
        "pci_gpus": pci_gpus(roots),
        "device_nodes": _device_nodes(roots),
        "cudnn_on_loader_path": _cudnn_on_loader_path(),
    }


def dataset_cache_dir() -> Path:
    """Where Keras keeps datasets: $KERAS_HOME/datasets, else ~/.keras/datasets."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _os_name(roots: Roots) -> str | None:
    text = _read(roots.etc / "os-release") or ""
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.M)
    return match.group(1) if match else platform.system()


def _cpu(roots: Roots) -> dict[str, Any]:
    text = _read(roots.proc / "cpuinfo") or ""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    physical = {
        (p, c)
        for p, c in re.findall(
            r"^physical id\s*:\s*(\d+)\n(?:.*\n)*?core id\s*:\s*(\d+)", text, re.M
        )
    }
    return {
        "model": model.group(1).strip() if model else platform.processor() or None,
        "logical_cores": os.cpu_count(),
        "physical_cores": len(physical) or None,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


def _memory(roots: Roots) -> dict[str, Any]:
    text = _read(roots.proc / "meminfo") or ""
    values = {k: int(v) // 1024 for k, v in re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)}
    return {"total_mib": values.get("MemTotal"), "available_mib": values.get("MemAvailable")}


def _disk() -> dict[str, Any]:
    home = Path(os.path.expanduser("~"))
    cache = dataset_cache_dir()
    return {
        "home": {"path": str(home), "free_mib": _free_mib(home)},
        "dataset_cache": {"path": str(cache), "free_mib": _free_mib(cache)},
    }


def _free_mib(path: Path) -> int | None:
    # The cache folder may not exist yet: measure the filesystem it would be created on.
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free // (1024 * 1024)
            except OSError:
                return None
    return None


def _virtualization(roots: Roots) -> dict[str, Any]:
    osrelease = (_read(roots.proc / "sys/kernel/osrelease") or platform.release()).lower()
    wsl = "microsoft" in osrelease or "wsl" in osrelease
    container = None
    if (roots.root / ".dockerenv").exists():
        container = "docker"
    elif (roots.root / "run/.containerenv").exists():
        container = "podman"
    else:
        environ = _read(roots.proc / "1/environ") or ""
        match = re.search(r"(?:^|\x00)container=([^\x00]+)", environ)
        if match:
            container = match.group(1)
        else:
            cgroup = _read(roots.proc / "1/cgroup") or ""
            for marker in ("docker", "kubepods", "lxc", "containerd"):
                if marker in cgroup:
                    container = marker
                    break
    vendor = " ".join(
        (_read(roots.sys / f"class/dmi/id/{name}") or "").strip()
        for name in ("sys_vendor", "product_name")
    ).strip()
    cpuinfo = _read(roots.proc / "cpuinfo") or ""
    hypervisor = bool(re.search(r"^flags\s*:.*\bhypervisor\b", cpuinfo, re.M))
    return {
        "container": container,
        "virtual_machine": hypervisor,
        "platform_vendor": vendor or None,
        "wsl": wsl,
    }


def _loaded_modules(roots: Roots) -> set[str] | None:
    text = _read(roots.proc / "modules")
    if text is None:
        return None
    return {line.split(" ", 1)[0] for line in text.splitlines() if line}


def _module_version(roots: Roots) -> str | None:
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.14  Thu Feb 22 ..."
    text = _read(roots.proc / "driver/nvidia/version") or ""
    match = re.search(r"Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else None


def nvml_library_version(roots: Roots | None = None) -> str | None:
    """The user-space driver version, from the file libnvidia-ml.so.1 points to.

    Works even when nvmlInit fails with a version mismatch, which is when it matters.
    """
    roots = roots or DEFAULT_ROOTS
    for folder in NVML_LIBRARY_DIRS:
        link = roots.root / folder / "libnvidia-ml.so.1"
        if link.exists():
            match = re.search(r"libnvidia-ml\.so\.(\d+\.\d+(?:\.\d+)?)$", link.resolve().name)
            if match:
                return match.group(1)
    return None


def pci_gpus(roots: Roots | None = None) -> list[dict[str, Any]]:
    """NVIDIA display-class PCI functions and the kernel driver bound to each (DCGM's denylist)."""
    roots = roots or DEFAULT_ROOTS
    result = []
    devices = roots.sys / "bus/pci/devices"
    try:
        entries = sorted(devices.iterdir())
    except OSError:
        return result
    for entry in entries:
        if not is_nvidia_gpu(_read(entry / "vendor") or "", _read(entry / "class") or ""):
            continue
        driver = entry / "driver"
        bound = os.path.basename(os.readlink(driver)) if driver.is_symlink() else None
        result.append(
            {
                "bus_id": entry.name,
                "device_id": (_read(entry / "device") or "").strip() or None,
                "driver": bound,
            }
        )
    return result


def _device_nodes(roots: Roots) -> dict[str, Any]:
    try:
        names = sorted(p.name for p in roots.dev.iterdir() if p.name.startswith("nvidia"))
    except OSError:
        names = []
    gpu_nodes = [n for n in names if re.fullmatch(r"nvidia\d+", n)]
    usable = [n for n in gpu_nodes if os.access(roots.dev / n, os.R_OK | os.W_OK)]
    return {
        "present": names,
        "gpu_nodes": gpu_nodes,
        "gpu_nodes_usable": usable,
        "nvidiactl": "nvidiactl" in names,
    }


def _cudnn_on_loader_path() -> list[dict[str, str]]:
    """libcudnn copies in LD_LIBRARY_PATH folders: these win over a framework's pip cuDNN."""
    found = []
    for folder in filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":")):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            match = re.fullmatch(r"libcudnn\.so\.(\d+(?:\.\d+)*)", name)
            if match:
                found.append({"path": os.path.join(folder, name), "version": match.group(1)})
    return found
