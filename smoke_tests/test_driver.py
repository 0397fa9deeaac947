"""The NVIDIA kernel driver is loaded and NVML (user space) matches it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu


def kernel_module_version() -> str | None:
    """'580.95.05' from /proc/driver/nvidia/version, None when the module is not loaded."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return None
    match = re.search(r"Kernel Module(?: for [\w-]+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    return match.group(1) if match else None


def test_nvidia_kernel_module_is_loaded():
    assert Path("/sys/module/nvidia").is_dir(), (
        "nvidia kernel module not loaded (lsmod | grep nvidia)"
    )
    assert kernel_module_version(), "/proc/driver/nvidia/version is missing or unreadable"


def test_nvml_library_matches_the_kernel_module():
    from dlcheck import nvml

    try:
        library_version = nvml.query("nvmlSystemGetDriverVersion")
    except nvml.NvmlUnavailable as error:
        pytest.fail(f"NVML unusable ({error.reason}): {error.detail}", pytrace=False)
    if isinstance(library_version, bytes):
        library_version = library_version.decode()
    assert library_version == kernel_module_version(), (
        "user-space driver (NVML) and kernel module differ: reboot, or reinstall one driver branch"
    )


def test_nvml_sees_every_nvidia_pci_device(gpu_count):
    from smoke_tests.conftest import nvidia_pci_devices

    # dlcheck's rule: display-class functions only (not a card's audio, USB or NVSwitch).
    assert gpu_count == len(nvidia_pci_devices()) > 0
