"""Host facts: OS, CPU, RAM, disk, container/VM/WSL, the environment variables the checks read,
and the kernel side of the NVIDIA driver.

Reads /proc, /sys, /dev and /etc through `Roots`, and the environment through a mapping, so
tests can point them at temp trees and made-up variables. Never raises for a missing file: a
fact it cannot read is None.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dlcheck.text import clean

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


@dataclass(frozen=True)
class Cpu:
    model: str | None
    logical_cores: int | None
    physical_cores: int | None
    usable_cores: int | None


@dataclass(frozen=True)
class Memory:
    total_mib: int | None
    available_mib: int | None


@dataclass(frozen=True)
class Folder:
    """A folder dlcheck needs to write to (the dataset cache) or measures (home)."""

    path: str
    free_mib: int | None
    writable: bool | None = None  # None: not tested
    problem: str | None = None  # why it cannot be used, one line


@dataclass(frozen=True)
class Disk:
    home: Folder
    dataset_cache: Folder


@dataclass(frozen=True)
class Virtualization:
    container: str | None
    virtual_machine: bool
    platform_vendor: str | None
    wsl: bool


@dataclass(frozen=True)
class SystemFacts:
    os: str | None
    kernel: str
    machine: str
    python: str
    python_executable: str
    cpu: Cpu
    memory: Memory
    disk: Disk
    virtualization: Virtualization


@dataclass(frozen=True)
class PciGpu:
    bus_id: str
    device_id: str | None
    driver: str | None  # the kernel driver bound to it (nvidia, nouveau, vfio-pci) or None


@dataclass(frozen=True)
class DeviceNodes:
    present: list[str]
    gpu_nodes: list[str]
    gpu_nodes_usable: list[str]
    nvidiactl: bool


@dataclass(frozen=True)
class LibraryCopy:
    path: str
    version: str


@dataclass(frozen=True)
class KernelFacts:
    """What the kernel says about NVIDIA GPUs, independent of NVML."""

    nvidia_module_loaded: bool | None
    nouveau_module_loaded: bool | None
    nvidia_module_version: str | None
    nvml_library_version: str | None
    pci_gpus: list[PciGpu]
    device_nodes: DeviceNodes
    cudnn_on_loader_path: list[LibraryCopy]


@dataclass(frozen=True)
class Environment:
    """The environment variables the checks judge, read once here so checks stay pure."""

    cuda_visible_devices: str | None
    performance_vars: dict[str, str] = field(default_factory=dict)


# DCGM's software plugin warns on these (NVIDIA/DCGM nvvs/src/Software.cpp).
PERF_ENV_VARS = (
    "NSIGHT_CUDA_DEBUGGER",
    "CUDA_INJECTION32_PATH",
    "CUDA_INJECTION64_PATH",
    "CUDA_AUTO_BOOST",
    "CUDA_ENABLE_COREDUMP_ON_EXCEPTION",
    "CUDA_COREDUMP_FILE",
    "CUDA_DEVICE_WAITS_ON_EXCEPTION",
    "CUDA_PROFILE",
    "COMPUTE_PROFILE",
    "OPENCL_PROFILE",
    "CUDA_LAUNCH_BLOCKING",
)


def collect(roots: Roots | None = None, environ: Mapping[str, str] | None = None) -> SystemFacts:
    roots = roots or DEFAULT_ROOTS
    environ = os.environ if environ is None else environ
    return SystemFacts(
        os=_os_name(roots),
        kernel=platform.release(),
        machine=platform.machine(),
        python=platform.python_version(),
        python_executable=sys.executable or "python3",
        cpu=_cpu(roots),
        memory=_memory(roots),
        disk=_disk(environ),
        virtualization=_virtualization(roots),
    )


def environment(environ: Mapping[str, str] | None = None) -> Environment:
    environ = os.environ if environ is None else environ
    return Environment(
        cuda_visible_devices=environ.get("CUDA_VISIBLE_DEVICES"),
        performance_vars={v: clean(environ[v], 200) for v in PERF_ENV_VARS if v in environ},
    )


def hostname() -> str:
    return clean(socket.gethostname(), 255) or "unknown"


def kernel_side(roots: Roots | None = None, environ: Mapping[str, str] | None = None
                ) -> KernelFacts:  # fmt: skip
    roots = roots or DEFAULT_ROOTS
    environ = os.environ if environ is None else environ
    modules = _loaded_modules(roots)
    return KernelFacts(
        nvidia_module_loaded="nvidia" in modules if modules is not None else None,
        nouveau_module_loaded="nouveau" in modules if modules is not None else None,
        nvidia_module_version=_module_version(roots),
        nvml_library_version=nvml_library_version(roots),
        pci_gpus=pci_gpus(roots),
        device_nodes=_device_nodes(roots),
        cudnn_on_loader_path=_cudnn_on_loader_path(environ),
    )


def dataset_cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where Keras keeps datasets: $KERAS_HOME/datasets, else ~/.keras/datasets."""
    environ = os.environ if environ is None else environ
    home = environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def folder_problem(path: Path) -> str | None:
    """Why files cannot be created in `path` (or the folder that would hold it), or None.

    Walks up to the nearest existing ancestor: a missing cache folder is fine if it can be
    created; a file where a folder should be, a read-only mount or no permission is not.
    """
    for candidate in (path, *path.parents):
        if not os.path.lexists(candidate):
            continue
        if not candidate.is_dir():
            return clean(f"{candidate} is a file, not a folder")
        if not os.access(candidate, os.W_OK | os.X_OK):
            return clean(f"{candidate} is not writable by this user")
        try:
            probe = tempfile.NamedTemporaryFile(dir=candidate, prefix=".dlcheck-probe-")
        except OSError as error:
            return clean(f"cannot write in {candidate}: {error.strerror or error}")
        probe.close()
        return None
    return f"no existing folder above {path}"


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _os_name(roots: Roots) -> str | None:
    text = _read(roots.etc / "os-release") or ""
    match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', text, re.M)
    return match.group(1) if match else platform.system()


def _cpu(roots: Roots) -> Cpu:
    text = _read(roots.proc / "cpuinfo") or ""
    model = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    physical = {
        (p, c)
        for p, c in re.findall(
            r"^physical id\s*:\s*(\d+)\n(?:.*\n)*?core id\s*:\s*(\d+)", text, re.M
        )
    }
    return Cpu(
        model=clean(model.group(1).strip()) if model else platform.processor() or None,
        logical_cores=os.cpu_count(),
        physical_cores=len(physical) or None,
        usable_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    )


def _memory(roots: Roots) -> Memory:
    text = _read(roots.proc / "meminfo") or ""
    values = {k: int(v) // 1024 for k, v in re.findall(r"^(\w+):\s+(\d+) kB", text, re.M)}
    return Memory(total_mib=values.get("MemTotal"), available_mib=values.get("MemAvailable"))


def _disk(environ: Mapping[str, str]) -> Disk:
    home = Path(os.path.expanduser("~"))
    cache = dataset_cache_dir(environ)
    problem = folder_problem(cache)
    return Disk(
        home=Folder(clean(home), _free_mib(home)),
        dataset_cache=Folder(clean(cache), _free_mib(cache), problem is None, problem),
    )


def _free_mib(path: Path) -> int | None:
    # The cache folder may not exist yet: measure the filesystem it would be created on.
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                return shutil.disk_usage(candidate).free // (1024 * 1024)
            except OSError:
                return None
    return None


def _virtualization(roots: Roots) -> Virtualization:
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
    return Virtualization(
        container=clean(container, 64) if container else None,
        virtual_machine=hypervisor,
        platform_vendor=clean(vendor, 128) or None,
        wsl=wsl,
    )


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


def pci_gpus(roots: Roots | None = None) -> list[PciGpu]:
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
            PciGpu(
                bus_id=clean(entry.name, 64),
                device_id=clean((_read(entry / "device") or "").strip(), 16) or None,
                driver=clean(bound, 64) if bound else None,
            )
        )
    return result


def _device_nodes(roots: Roots) -> DeviceNodes:
    try:
        names = sorted(p.name for p in roots.dev.iterdir() if p.name.startswith("nvidia"))
    except OSError:
        names = []
    gpu_nodes = [n for n in names if re.fullmatch(r"nvidia\d+", n)]
    usable = [n for n in gpu_nodes if os.access(roots.dev / n, os.R_OK | os.W_OK)]
    return DeviceNodes(
        present=[clean(n, 64) for n in names],
        gpu_nodes=gpu_nodes,
        gpu_nodes_usable=usable,
        nvidiactl="nvidiactl" in names,
    )


def _cudnn_on_loader_path(environ: Mapping[str, str]) -> list[LibraryCopy]:
    """libcudnn copies in LD_LIBRARY_PATH folders: these win over a framework's pip cuDNN."""
    found = []
    for folder in filter(None, environ.get("LD_LIBRARY_PATH", "").split(":")):
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            match = re.fullmatch(r"libcudnn\.so\.(\d+(?:\.\d+)*)", name)
            if match:
                found.append(LibraryCopy(clean(os.path.join(folder, name)), match.group(1)))
    return found
