"""Temp /proc, /sys, /dev, /etc trees for dlcheck.system.Roots."""

from __future__ import annotations

import os
from pathlib import Path

from dlcheck.system import Roots

NVRM = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  {}  Thu Jan 1 00:00:00 UTC 2026\n"


def make_roots(
    base: Path,
    *,
    pci: list[tuple[str, str | None]] = (),
    modules: list[str] = (),
    module_version: str | None = None,
    nvml_library: str | None = None,
    nodes: list[str] = (),
    osrelease: str = "6.1.0-28-amd64",
    container_env: str | None = None,
) -> Roots:
    """pci: [(bus_id, bound driver or None)] NVIDIA display functions; nodes: /dev names."""
    proc, sys_, dev, etc, root = (base / n for n in ("proc", "sys", "dev", "etc", "root"))
    for folder in (proc / "driver/nvidia", proc / "sys/kernel", proc / "1", dev, etc, root):
        folder.mkdir(parents=True, exist_ok=True)
    (proc / "modules").write_text("".join(f"{m} 4096 0 - Live 0x0\n" for m in modules))
    (proc / "meminfo").write_text("MemTotal:       16384000 kB\nMemAvailable:   12000000 kB\n")
    (proc / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu\n")
    (proc / "sys/kernel/osrelease").write_text(osrelease + "\n")
    (proc / "1/environ").write_text(f"container={container_env}\0" if container_env else "")
    if module_version:
        (proc / "driver/nvidia/version").write_text(NVRM.format(module_version))
    (etc / "os-release").write_text('PRETTY_NAME="Test Linux 1"\n')
    drivers = sys_ / "bus/pci/drivers"
    for bus_id, driver in pci:
        device = sys_ / "bus/pci/devices" / bus_id
        device.mkdir(parents=True)
        (device / "vendor").write_text("0x10de\n")
        (device / "class").write_text("0x030200\n")
        (device / "device").write_text("0x2331\n")
        if driver:
            (drivers / driver).mkdir(parents=True, exist_ok=True)
            os.symlink(drivers / driver, device / "driver")
    for name in nodes:
        (dev / name).write_text("")
    if nvml_library:
        libdir = root / "usr/lib/x86_64-linux-gnu"
        libdir.mkdir(parents=True)
        real = libdir / f"libnvidia-ml.so.{nvml_library}"
        real.write_text("")
        os.symlink(real.name, libdir / "libnvidia-ml.so.1")
    return Roots(proc=proc, sys=sys_, dev=dev, etc=etc, root=root)


def gpu_host(base: Path, version: str = "580.82.07", gpus: int = 1, **overrides) -> Roots:
    """A host with working NVIDIA kernel side for `gpus` GPUs."""
    settings = {
        "pci": [(f"0000:{0x18 + i * 0x20:02x}:00.0", "nvidia") for i in range(gpus)],
        "modules": ["nvidia", "nvidia_uvm"],
        "module_version": version,
        "nvml_library": version,
        "nodes": ["nvidiactl", "nvidia-uvm"] + [f"nvidia{i}" for i in range(gpus)],
    }
    settings.update(overrides)
    return make_roots(base, **settings)
