"""The driver: kernel module, NVML, device nodes, nouveau, version mismatches, a hung driver."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dlcheck.facts import Facts
from dlcheck.models import CheckResult, Status
from dlcheck.system import KernelFacts

PASS, INFO, WARN, FAIL = Status.PASS, Status.INFO, Status.WARN, Status.FAIL
HOLD_DRIVER = (
    "sudo apt-mark hold $(dpkg-query -W -f='${binary:Package}\\n' '*nvidia*' | tr '\\n' ' ')"
)
XID_LOG = "sudo journalctl -k -b | grep -iE 'xid|nvrm' | tail   # or: sudo dmesg | grep -i xid"
HUNG_DRIVER_FIX = (
    f"{XID_LOG}; then, with no GPU process running: sudo nvidia-smi -r (GPU reset), "
    "else sudo reboot"
)


def checks(facts: Facts) -> list[CheckResult]:
    kernel, state, driver = facts.kernel, facts.gpu.nvml, facts.gpu.driver
    virt = facts.system.virtualization
    evidence = {
        "nvml_error": state.error,
        "nvml_detail": state.detail,
        "nvidia_module_loaded": kernel.nvidia_module_loaded,
        "nvidia_module_version": kernel.nvidia_module_version,
        "nvml_library_version": kernel.nvml_library_version,
        "pci_gpus": [asdict(g) for g in kernel.pci_gpus],
        "device_nodes": kernel.device_nodes.present,
        "container": virt.container,
        "wsl": virt.wsl,
    }
    results = []
    nouveau_gpus = [g.bus_id for g in kernel.pci_gpus if g.driver == "nouveau"]
    if nouveau_gpus or (kernel.nouveau_module_loaded and not kernel.nvidia_module_loaded):
        where = f" ({', '.join(nouveau_gpus)})" if nouveau_gpus else ""
        results.append(CheckResult(
            "nouveau_bound", FAIL,
            f"The open-source nouveau driver holds the GPU{where}; CUDA needs the NVIDIA driver.",
            "printf 'blacklist nouveau\\noptions nouveau modeset=0\\n' | sudo tee "
            "/etc/modprobe.d/blacklist-nouveau.conf && sudo update-initramfs -u && sudo reboot",
            evidence,
        ))  # fmt: skip

    error = state.error
    if error is None:
        results.append(CheckResult(
            "nvml_ok", PASS,
            f"NVIDIA driver {driver.version} (CUDA {driver.cuda_driver_version}) "
            f"sees {len(facts.gpu.gpus)} GPU(s).",
            evidence={**evidence, **asdict(driver)},
        ))  # fmt: skip
        results += _after_init(facts, evidence)
    elif error == "not_responding":
        results.append(CheckResult(
            "nvml_not_responding", FAIL,
            f"The NVIDIA driver does not respond: {state.detail} (a hung GPU or driver, "
            "often after an Xid error).",
            HUNG_DRIVER_FIX,
            evidence,
        ))  # fmt: skip
    elif error == "library_missing" and not facts.has_gpu_hardware:
        hint = (
            "Inside a container: start it with GPU access (docker run --gpus all ...)."
            if virt.container
            else "Use a machine or cloud instance with an NVIDIA GPU, then run the playbooks."
        )
        results.append(CheckResult(
            "no_nvidia_gpu", INFO,
            "No NVIDIA GPU here (no NVIDIA PCI device, driver or NVML): CPU-only machine.",
            hint, evidence,
        ))  # fmt: skip
    elif error == "library_missing":
        results.append(CheckResult(
            "nvml_library_missing", FAIL,
            "An NVIDIA GPU is present but the NVIDIA driver's user-space library "
            "(libnvidia-ml.so.1) is not installed or not on the loader path.",
            "sudo apt-get install nvidia-driver   # Debian (non-free); Ubuntu: "
            "sudo ubuntu-drivers install; WSL: add /usr/lib/wsl/lib to LD_LIBRARY_PATH",
            evidence,
        ))  # fmt: skip
    elif error == "driver_not_loaded":
        fix = (
            "see nouveau_bound first"
            if nouveau_gpus
            else "sudo modprobe nvidia   # fails after a kernel update? rebuild the module: "
            "sudo dkms autoinstall && sudo reboot"
        )
        results.append(CheckResult(
            "driver_not_loaded", FAIL,
            "The NVIDIA kernel module is not loaded, so NVML cannot reach the GPU.",
            fix, evidence,
        ))  # fmt: skip
    elif error == "version_mismatch":
        results.append(_mismatch(kernel.nvidia_module_version, kernel.nvml_library_version,
                                 evidence))  # fmt: skip
    elif error == "no_permission":
        results.append(CheckResult(
            "nvml_no_permission", FAIL,
            "NVML was refused access to the GPU device nodes (/dev/nvidia*).",
            "ls -l /dev/nvidia*   # need rw for this user: sudo usermod -aG video $USER; "
            "in a container: docker run --gpus all ...",
            evidence,
        ))  # fmt: skip
    else:
        results.append(CheckResult(
            "nvml_init_failed", FAIL,
            f"NVML failed to start: {state.detail}.",
            "sudo dmesg | grep -iE 'nvidia|nvrm' | tail   # the kernel log names the cause",
            evidence,
        ))  # fmt: skip
    return results


def _mismatch(module: str | None, library: str | None, evidence: dict[str, Any]) -> CheckResult:
    versions = f" (kernel module {module or '?'}, library {library or '?'})"
    return CheckResult(
        "driver_library_mismatch", FAIL,
        "Driver/library version mismatch" + versions + ": the driver packages were upgraded "
        "but the old kernel module is still loaded.",
        "sudo reboot   # or, with no GPU process running: sudo rmmod nvidia_uvm "
        "nvidia_drm nvidia_modeset nvidia && sudo modprobe nvidia; "
        f"then stop unattended upgrades: {HOLD_DRIVER}",
        evidence,
    )  # fmt: skip


def _after_init(facts: Facts, evidence: dict[str, Any]) -> list[CheckResult]:
    kernel: KernelFacts = facts.kernel
    driver, gpus, state = facts.gpu.driver, facts.gpu.gpus, facts.gpu.nvml
    results = []
    module = kernel.nvidia_module_version
    if module and driver.version and module != driver.version:
        results.append(_mismatch(module, driver.version, evidence))
    lost = [g for g in gpus if g["error"]]
    for record in lost:
        results.append(CheckResult(
            "gpu_lost", FAIL,
            f"GPU {record['index']} does not answer ({record['error']}) while "
            f"{len(gpus) - len(lost)} other(s) work.",
            f"{XID_LOG}; then: sudo nvidia-smi -r -i {record['index']} (reset) or reboot; "
            "repeated Xid 79 = hardware, call support",
            {"index": record["index"], "error": record["error"]},
        ))  # fmt: skip
    nodes = kernel.device_nodes
    if gpus and len(nodes.gpu_nodes_usable) < len(gpus) and nodes.present:
        results.append(CheckResult(
            "device_nodes_mismatch", WARN,
            f"NVML reports {len(gpus)} GPU(s) but {len(nodes.gpu_nodes_usable)} "
            "/dev/nvidiaN node(s) are readable and writable by this user.",
            "ls -l /dev/nvidia*   # cgroups or permissions block some GPUs",
            asdict(nodes),
        ))  # fmt: skip
    if state.missing_functions:
        results.append(CheckResult(
            "nvml_functions_missing", INFO,
            "This driver lacks some NVML functions; older calls were used and those "
            "fields read N/A.",
            "Upgrade the NVIDIA driver to a current branch (R580 LTSB) for full data.",
            {"missing_functions": state.missing_functions},
        ))  # fmt: skip
    return results
