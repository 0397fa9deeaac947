"""Readiness checks: collected facts in, CheckResult(status, code, message, fix, evidence) out.

Pure functions of the facts (no NVML, no subprocess, no printing), so every fault can be
tested by handing in the facts a broken machine would produce.
"""

from __future__ import annotations

import os
from typing import Any

from dlcheck import compat
from dlcheck.models import CheckResult, ExitCode, Status

PASS, INFO, SKIP, WARN, FAIL = Status.PASS, Status.INFO, Status.SKIP, Status.WARN, Status.FAIL

# The benchmark holds 25000 x 10000 float32 per split (train, test): ~1 GB each.
BENCH_RAM_MIB = 2 * 25000 * 10000 * 4 // (1024 * 1024)
DATASET_DISK_WARN_MIB = 1024  # IMDB archive + extracted text + the .npz cache, with headroom
DATASET_DISK_FAIL_MIB = 256
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
SLOWDOWN_REASONS = ("hw_slowdown", "hw_thermal_slowdown", "sw_thermal_slowdown",
                    "hw_power_brake_slowdown")  # fmt: skip
HOLD_DRIVER = (
    "sudo apt-mark hold $(dpkg-query -W -f='${binary:Package}\\n' '*nvidia*' | tr '\\n' ' ')"
)
FRAMEWORK_NAMES = {"torch": "PyTorch", "tensorflow": "TensorFlow", "keras": "Keras", "jax": "JAX"}


def has_gpu_hardware(facts: dict[str, Any]) -> bool:
    """Any sign of an NVIDIA GPU: a PCI function, the kernel module, or a device node."""
    kernel = facts["kernel"]
    return bool(
        kernel["pci_gpus"]
        or kernel["nvidia_module_loaded"]
        or kernel["device_nodes"]["nvidiactl"]
        or facts["gpu"]["gpus"]
    )


def usable_gpus(facts: dict[str, Any]) -> list[dict[str, Any]]:
    return [g for g in facts["gpu"]["gpus"] if not g.get("error")]


def run_all(facts: dict[str, Any]) -> list[CheckResult]:
    results: list[CheckResult] = []
    results += driver_checks(facts)
    for record in facts["gpu"]["gpus"]:
        results += gpu_health_checks(record)
    if facts.get("frameworks") is not None:
        results += framework_checks(facts)
    results += system_checks(facts)
    return results


def verdict(results: list[CheckResult], facts: dict[str, Any], cpu_ok: bool, strict: bool):
    """(verdict, exit code): a FAIL is not_ready; no usable GPU is cpu_only (0 with --cpu-ok)."""
    worst = Status.worst(r.status for r in results)
    if worst is FAIL or (strict and worst is WARN):
        return "not_ready", ExitCode.NOT_READY
    if not usable_gpus(facts):
        return "cpu_only", ExitCode.READY if cpu_ok else ExitCode.CPU_ONLY
    return "ready", ExitCode.READY


# --- driver, NVML, kernel -------------------------------------------------------------


def driver_checks(facts: dict[str, Any]) -> list[CheckResult]:
    kernel, nvml_state, driver = facts["kernel"], facts["gpu"]["nvml"], facts["gpu"]["driver"]
    virt = facts["system"]["virtualization"]
    evidence = {
        "nvml_error": nvml_state["error"],
        "nvml_detail": nvml_state["detail"],
        "nvidia_module_loaded": kernel["nvidia_module_loaded"],
        "nvidia_module_version": kernel["nvidia_module_version"],
        "nvml_library_version": kernel["nvml_library_version"],
        "pci_gpus": kernel["pci_gpus"],
        "device_nodes": kernel["device_nodes"]["present"],
        "container": virt["container"],
        "wsl": virt["wsl"],
    }
    results = []
    nouveau_gpus = [g["bus_id"] for g in kernel["pci_gpus"] if g["driver"] == "nouveau"]
    if nouveau_gpus or (kernel["nouveau_module_loaded"] and not kernel["nvidia_module_loaded"]):
        results.append(
            CheckResult(
                "nouveau_bound",
                FAIL,
                "The open-source nouveau driver holds the GPU"
                + (f" ({', '.join(nouveau_gpus)})" if nouveau_gpus else "")
                + "; CUDA needs the NVIDIA driver.",
                "printf 'blacklist nouveau\\noptions nouveau modeset=0\\n' | sudo tee "
                "/etc/modprobe.d/blacklist-nouveau.conf && sudo update-initramfs -u && sudo reboot",
                evidence,
            )
        )

    error = nvml_state["error"]
    if error is None:
        results.append(
            CheckResult(
                "nvml_ok",
                PASS,
                f"NVIDIA driver {driver['version']} (CUDA {driver['cuda_driver_version']}) "
                f"sees {len(facts['gpu']['gpus'])} GPU(s).",
                evidence={**evidence, **driver},
            )
        )
        results += _after_init_checks(facts, evidence)
    elif error == "library_missing" and not has_gpu_hardware(facts):
        hint = (
            "Inside a container: start it with GPU access (docker run --gpus all ...)."
            if virt["container"]
            else "Use a machine or cloud instance with an NVIDIA GPU, then run the playbooks."
        )
        results.append(
            CheckResult(
                "no_nvidia_gpu",
                INFO,
                "No NVIDIA GPU here (no NVIDIA PCI device, driver or NVML): CPU-only machine.",
                hint,
                evidence,
            )
        )
    elif error == "library_missing":
        results.append(
            CheckResult(
                "nvml_library_missing",
                FAIL,
                "An NVIDIA GPU is present but the NVIDIA driver's user-space library "
                "(libnvidia-ml.so.1) is not installed or not on the loader path.",
                "sudo apt-get install nvidia-driver   # Debian (non-free); Ubuntu: "
                "sudo ubuntu-drivers install; WSL: add /usr/lib/wsl/lib to LD_LIBRARY_PATH",
                evidence,
            )
        )
    elif error == "driver_not_loaded":
        fix = (
            "see nouveau_bound first"
            if nouveau_gpus
            else "sudo modprobe nvidia   # fails after a kernel update? rebuild the module: "
            "sudo dkms autoinstall && sudo reboot"
        )
        results.append(
            CheckResult(
                "driver_not_loaded",
                FAIL,
                "The NVIDIA kernel module is not loaded, so NVML cannot reach the GPU.",
                fix,
                evidence,
            )
        )
    elif error == "version_mismatch":
        results.append(_mismatch(kernel, evidence))
    elif error == "no_permission":
        results.append(
            CheckResult(
                "nvml_no_permission",
                FAIL,
                "NVML was refused access to the GPU device nodes (/dev/nvidia*).",
                "ls -l /dev/nvidia*   # need rw for this user: sudo usermod -aG video $USER; "
                "in a container: docker run --gpus all ...",
                evidence,
            )
        )
    else:
        results.append(
            CheckResult(
                "nvml_init_failed",
                FAIL,
                f"NVML failed to start: {nvml_state['detail']}.",
                "sudo dmesg | grep -iE 'nvidia|nvrm' | tail   # the kernel log names the cause",
                evidence,
            )
        )
    return results


def _mismatch(kernel: dict[str, Any], evidence: dict[str, Any]) -> CheckResult:
    module, library = kernel["nvidia_module_version"], kernel["nvml_library_version"]
    versions = f" (kernel module {module or '?'}, library {library or '?'})"
    return CheckResult(
        "driver_library_mismatch",
        FAIL,
        "Driver/library version mismatch" + versions + ": the driver packages were upgraded "
        "but the old kernel module is still loaded.",
        "sudo reboot   # or, with no GPU process running: sudo rmmod nvidia_uvm "
        "nvidia_drm nvidia_modeset nvidia && sudo modprobe nvidia; "
        f"then stop unattended upgrades: {HOLD_DRIVER}",
        evidence,
    )


def _after_init_checks(facts: dict[str, Any], evidence: dict[str, Any]) -> list[CheckResult]:
    kernel, driver, gpus = facts["kernel"], facts["gpu"]["driver"], facts["gpu"]["gpus"]
    nvml_state = facts["gpu"]["nvml"]
    results = []
    module = kernel["nvidia_module_version"]
    if module and driver["version"] and module != driver["version"]:
        results.append(_mismatch({**kernel, "nvml_library_version": driver["version"]}, evidence))
    lost = [g for g in gpus if g.get("error")]
    for record in lost:
        results.append(
            CheckResult(
                "gpu_lost",
                FAIL,
                f"GPU {record['index']} does not answer ({record['error']}) while "
                f"{len(gpus) - len(lost)} other(s) work.",
                "sudo dmesg | grep -i xid   # then: sudo nvidia-smi -r -i "
                f"{record['index']} (reset) or reboot; repeated Xid 79 = hardware, call support",
                {"index": record["index"], "error": record["error"]},
            )
        )
    nodes = kernel["device_nodes"]
    if gpus and len(nodes["gpu_nodes_usable"]) < len(gpus) and nodes["present"]:
        results.append(
            CheckResult(
                "device_nodes_mismatch",
                WARN,
                f"NVML reports {len(gpus)} GPU(s) but {len(nodes['gpu_nodes_usable'])} "
                "/dev/nvidiaN node(s) are readable and writable by this user.",
                "ls -l /dev/nvidia*   # cgroups or permissions block some GPUs",
                nodes,
            )
        )
    if nvml_state["missing_functions"]:
        results.append(
            CheckResult(
                "nvml_functions_missing",
                INFO,
                "This driver lacks some NVML functions; older calls were used and those "
                "fields read N/A.",
                "Upgrade the NVIDIA driver to a current branch (R580 LTSB) for full data.",
                {"missing_functions": nvml_state["missing_functions"]},
            )
        )
    return results


# --- per-GPU health --------------------------------------------------------------------


def gpu_health_checks(g: dict[str, Any]) -> list[CheckResult]:
    if g.get("error"):
        return []
    i = g["index"]
    tag = f"GPU {i}"
    limits = compat.data()["dcgm_limits"]
    results = []
    reset = f"sudo nvidia-smi -r -i {i}   # or reboot; stop GPU processes first"

    def add(code, status, message, fix=None, **evidence):
        results.append(
            CheckResult(code, status, f"{tag}: {message}", fix, {"index": i, **evidence})
        )

    if g["retired_pages.pending"]:
        add("page_retirement_pending", FAIL, "a page retirement is pending.", reset)
    retired = (g["retired_pages.sbe"] or 0) + (g["retired_pages.dbe"] or 0)
    if retired >= limits["max_retired_pages"]:
        add(
            "retired_pages_exceeded",
            FAIL,
            f"{retired} retired pages (DCGM limit {limits['max_retired_pages']}).",
            "Ask the vendor for an RMA: the memory is wearing out.",
            sbe=g["retired_pages.sbe"],
            dbe=g["retired_pages.dbe"],
        )
    if g["remapped_rows.pending"]:
        add("row_remap_pending", FAIL, "a memory row remap is pending.", reset)
    if g["remapped_rows.failure"]:
        add("row_remap_failure", FAIL, "a row remap failed.", "Ask the vendor for an RMA.")
    if (g["remapped_rows.uncorrectable"] or 0) >= limits["max_row_remap_uncorrectable"]:
        add(
            "row_remap_exceeded",
            FAIL,
            f"{g['remapped_rows.uncorrectable']} uncorrectable row remaps.",
            "Ask the vendor for an RMA.",
        )
    volatile = g["ecc.errors.uncorrected.volatile.total"]
    aggregate = g["ecc.errors.uncorrected.aggregate.total"]
    if volatile:
        add("ecc_uncorrected", FAIL, f"{volatile} uncorrectable ECC errors since boot.", reset,
            volatile=volatile, aggregate=aggregate)  # fmt: skip
    elif aggregate:
        add("ecc_uncorrected_history", WARN, f"{aggregate} uncorrectable ECC errors in its "
            "lifetime (none since boot).", "nvidia-smi -q -d ECC,PAGE_RETIREMENT,ROW_REMAPPER",
            aggregate=aggregate)  # fmt: skip
    active = [r for r in (g["clocks_event_reasons.decoded"] or []) if r in SLOWDOWN_REASONS]
    if active:
        add(
            "gpu_throttled",
            WARN,
            "clocks slowed down: " + ", ".join(active) + ".",
            "Check cooling and power cabling; nvidia-smi -q -d PERFORMANCE,TEMPERATURE,POWER",
            reasons=g["clocks_event_reasons.decoded"],
            temperature=g["temperature.gpu"],
            slowdown_at=g["temperature.gpu.slowdown"],
        )
    _pcie(g, add)
    if g["persistence_mode"] == "Disabled":
        add(
            "persistence_mode_off",
            WARN,
            "persistence mode is off (each CUDA start re-initialises the GPU).",
            "sudo systemctl enable --now nvidia-persistenced   # or: sudo nvidia-smi -pm 1",
        )
    if g["mig.mode.current"] == "Enabled":
        add(
            "mig_enabled",
            INFO,
            "MIG is enabled: frameworks see MIG slices, not the whole GPU.",
            f"sudo nvidia-smi -i {i} -mig 0   # to use the whole GPU (needs a GPU reset)",
        )
    if g["fabric.state"] is not None and (
        g["fabric.state"] != "Completed" or g["fabric.status"] != "Success"
    ):
        add(
            "fabric_manager_not_ready",
            FAIL,
            f"NVSwitch fabric is '{g['fabric.state']}' ({g['fabric.status']}): CUDA will fail "
            "with 'system not yet initialized' (error 802).",
            "sudo apt-get install nvidia-fabricmanager-$(nvidia-smi --query-gpu=driver_version "
            "--format=csv,noheader | head -1 | cut -d. -f1) && sudo systemctl enable --now "
            "nvidia-fabricmanager",
            fabric_state=g["fabric.state"],
            fabric_status=g["fabric.status"],
        )
    return results


def _pcie(g: dict[str, Any], add) -> None:
    cur_gen, max_gen = g["pcie.link.gen.current"], g["pcie.link.gen.max"]
    cur_w, max_w = g["pcie.link.width.current"], g["pcie.link.width.max"]
    link = {"gen_current": cur_gen, "gen_max": max_gen, "gen_gpumax": g["pcie.link.gen.gpumax"],
            "width_current": cur_w, "width_max": max_w, "pstate": g["pstate"]}  # fmt: skip
    below = (cur_gen is not None and max_gen is not None and cur_gen < max_gen) or (
        cur_w is not None and max_w is not None and cur_w < max_w
    )
    if below and g["pstate"] == "P0":  # DCGM judges the link only in P0: idle GPUs downtrain
        add(
            "pcie_link_degraded",
            WARN,
            f"PCIe link at gen {cur_gen} x{cur_w} under load; device and host support "
            f"gen {max_gen} x{max_w}.",
            "Reseat the card or move it to a full-width slot; check BIOS PCIe settings.",
            **link,
        )
    if g["pcie.link.gen.hostmax"] is not None:
        add(
            "pcie_host_limited",
            INFO,
            f"the slot limits PCIe to gen {g['pcie.link.gen.hostmax']} "
            f"(GPU supports gen {g['pcie.link.gen.gpumax']}).",
            "A slot wired to the CPU with the GPU's generation gives full host-device bandwidth.",
            **link,
        )


# --- frameworks ------------------------------------------------------------------------


def framework_checks(facts: dict[str, Any]) -> list[CheckResult]:
    results = []
    gpus = usable_gpus(facts)
    gpu_machine = bool(gpus) or has_gpu_hardware(facts)
    driver = facts["gpu"]["driver"]["version"]
    for name, fw in facts["frameworks"].items():
        label = FRAMEWORK_NAMES.get(name, name)
        if name == "keras":
            results += _keras(fw, facts["frameworks"])
            continue
        status = fw["probe"]["status"]
        if status in ("timeout", "crashed"):
            results.append(
                CheckResult(
                    f"{name}_probe_failed",
                    WARN,
                    f"{label} probe failed: {fw['error']}.",
                    f"{_python()} -c 'import {name}'   # run it to see the error; "
                    "raise --timeout if the machine is just slow",
                    {"probe": fw["probe"]},
                )
            )
            continue
        if not fw["installed"]:
            results.append(
                CheckResult(
                    f"{name}_missing",
                    INFO,
                    f"{label} is not installed.",
                    _install(name, gpu_machine),
                    {},
                )  # fmt: skip
            )
            continue
        if fw["error"]:
            results.append(
                CheckResult(
                    f"{name}_import_failed",
                    FAIL,
                    f"{label} is installed but failed to load: {fw['error']}.",
                    f"{_python()} -c 'import {name}'   # then reinstall: {_install(name, True)}",
                    {"error": fw["error"], "stderr_tail": fw["probe"]["stderr_tail"]},
                )
            )
            continue
        evidence = {k: fw.get(k) for k in ("version", "cuda", "cuda_build", "cudnn",
                                          "cudnn_built", "is_available", "gpu_count")}  # fmt: skip
        if not gpu_machine:
            results.append(
                CheckResult(
                    f"{name}_cpu",
                    INFO,
                    f"{label} {fw['version']} runs on the CPU (no NVIDIA GPU).",
                    evidence=evidence,
                )  # fmt: skip
            )
            continue
        results += _framework_on_gpu(name, label, fw, gpus, driver, facts, evidence)
    return results


def _framework_on_gpu(name, label, fw, gpus, driver, facts, evidence) -> list[CheckResult]:
    if not fw.get("cuda_build"):
        return [
            CheckResult(
                f"{name}_cpu_build",
                FAIL,
                f"{label} {fw['version']} is a CPU-only build on a machine with an NVIDIA GPU.",
                _install(name, True),
                evidence,
            )
        ]
    results = []
    cuda = fw.get("cuda")
    driver_cuda = facts["gpu"]["driver"]["cuda_driver_version"]
    row = compat.min_driver_for_cuda(cuda)
    if cuda and driver and row:
        ev = {**evidence, "driver": driver, "driver_cuda": driver_cuda, "table": row}
        have = compat.version_tuple(driver)
        if have < compat.version_tuple(row["family_min"]):
            results.append(
                CheckResult(
                    f"driver_too_old_for_{name}",
                    FAIL,
                    f"Driver {driver} is too old for {label} built with CUDA {cuda}: it needs "
                    f"driver >= {row['family_min']}.",
                    f"Upgrade the NVIDIA driver to >= {row['family_min']} (R580 LTSB), or "
                    f"install a {label} build for CUDA {driver_cuda or 'your driver'}.",
                    ev,
                )
            )
        elif have < compat.version_tuple(row["release_min"]) or (
            driver_cuda and compat.version_tuple(driver_cuda) < compat.version_tuple(cuda)
        ):
            results.append(
                CheckResult(
                    f"driver_old_for_{name}",
                    WARN,
                    f"Driver {driver} (CUDA {driver_cuda}) is older than {label}'s CUDA {cuda}: "
                    "it runs through minor-version compatibility; PTX JIT may fail.",
                    f"Upgrade the NVIDIA driver to >= {row['release_min']}.",
                    ev,
                )
            )
    if fw.get("arch_list"):
        for g in gpus:
            cc = g["compute_cap"]
            if cc and not compat.arch_supported(cc, fw["arch_list"]):
                wheels = compat.torch_wheels_for(cc, driver) if name == "torch" else []
                fix = wheels[0]["install"] if wheels else (
                    f"No current {label} wheel supports compute capability {cc}; use an older "
                    f"{label} release built for it.")  # fmt: skip
                results.append(
                    CheckResult(
                        f"arch_unsupported_{name}",
                        FAIL,
                        f"GPU {g['index']} ({g['name']}, sm_{cc.replace('.', '')}, "
                        f"{g['architecture']}) is not in {label}'s arch list: "
                        "'no kernel image is available'.",
                        fix,
                        {**evidence, "compute_cap": cc, "arch_list": fw["arch_list"]},
                    )
                )
    if not fw.get("is_available") or not fw.get("gpu_count"):
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        fix = (
            f"CUDA_VISIBLE_DEVICES={visible!r} hides the GPUs: unset CUDA_VISIBLE_DEVICES"
            if visible is not None and visible.strip() in ("", "-1", "none", "NoDevFiles")
            else "In a container, start it with --gpus all; otherwise compare CUDA_VISIBLE_DEVICES "
            "with nvidia-smi -L and see the driver checks above."
        )
        results.append(
            CheckResult(
                f"{name}_no_gpu",
                FAIL,
                f"{label} sees no GPU although NVML sees {len(gpus)}.",
                fix,
                {**evidence, "CUDA_VISIBLE_DEVICES": visible, "nvml_gpus": len(gpus)},
            )
        )
        return results
    built, loaded = fw.get("cudnn_built"), fw.get("cudnn")
    shadows = facts["kernel"]["cudnn_on_loader_path"]
    if built and loaded and compat.version_tuple(built)[:2] != compat.version_tuple(loaded)[:2]:
        where = f" {shadows[0]['path']} on LD_LIBRARY_PATH shadows it." if shadows else ""
        results.append(
            CheckResult(
                f"cudnn_mismatch_{name}",
                WARN,
                f"{label} was built with cuDNN {built} but loads cuDNN {loaded}.{where}",
                "Remove the system cuDNN folder from LD_LIBRARY_PATH, or pip install the "
                f"nvidia-cudnn wheel matching {built}.",
                {**evidence, "loader_path_cudnn": shadows},
            )
        )
    elif built and not loaded and shadows:
        # The framework does not say what it loaded: a system copy of another major is suspect.
        foreign = [s for s in shadows if compat.version_tuple(s["version"])[:1]
                   != compat.version_tuple(built)[:1]]  # fmt: skip
        if foreign:
            results.append(
                CheckResult(
                    f"cudnn_shadowed_{name}",
                    WARN,
                    f"{foreign[0]['path']} on LD_LIBRARY_PATH may shadow the cuDNN {built} "
                    f"{label} was built with.",
                    "Remove that folder from LD_LIBRARY_PATH (pip's nvidia-cudnn wheel is found "
                    "without it).",
                    {**evidence, "loader_path_cudnn": shadows},
                )
            )
    bad = [d for d in fw.get("devices") or [] if not (d.get("matmul") or {}).get("ok")]
    for device in bad:
        results.append(
            CheckResult(
                f"{name}_gpu_compute_failed",
                FAIL,
                f"{label} matmul on GPU {device['index']} failed or disagreed with the CPU: "
                f"{(device.get('matmul') or {}).get('error') or 'wrong result'}.",
                "Check the arch-list and driver results above; then nvidia-smi -q -d ECC.",
                {**evidence, "device": device},
            )
        )
    if not bad:
        results.append(
            CheckResult(
                f"{name}_gpu",
                PASS,
                f"{label} {fw['version']} (CUDA {cuda}) computes correctly on "
                f"{fw['gpu_count']} GPU(s).",
                evidence={**evidence, "devices": fw.get("devices")},
            )
        )
    return results


def _keras(fw: dict[str, Any], all_fw: dict[str, Any]) -> list[CheckResult]:
    if fw["probe"]["status"] in ("timeout", "crashed"):
        return [CheckResult("keras_probe_failed", WARN, f"Keras probe failed: {fw['error']}.",
                            f"{_python()} -c 'import keras'", {"probe": fw["probe"]})]  # fmt: skip
    if not fw["installed"]:
        return [CheckResult("keras_missing", INFO, "Keras is not installed.",
                            f"{_python()} -m pip install 'keras>=3'", {})]  # fmt: skip
    keys = ("version", "backend", "backend_source", "backend_error", "keras_json")
    evidence = {k: fw.get(k) for k in keys}
    if fw.get("backend_error") or fw.get("error"):
        return [
            CheckResult(
                "keras_backend_broken",
                FAIL,
                f"Keras {fw['version']} cannot load its backend '{fw['backend']}' (chosen by "
                f"{fw['backend_source']}): {fw.get('backend_error') or fw.get('error')}.",
                f"{_python()} -m pip install {fw['backend']}   # or pick an installed one: "
                "export KERAS_BACKEND=torch",
                evidence,
            )
        ]
    backend_fw = all_fw.get(fw["backend"], {})
    gpu_note = ""
    if backend_fw.get("installed"):
        gpu_note = " on GPU" if backend_fw.get("gpu_count") else " on CPU"
    return [
        CheckResult(
            "keras_backend",
            INFO,
            f"Keras {fw['version']} uses the {fw['backend']} backend{gpu_note} (chosen by "
            f"{fw['backend_source']}).",
            "export KERAS_BACKEND=torch   # to choose another backend (before importing keras)",
            evidence,
        )
    ]


def _install(name: str, gpu: bool) -> str:
    py = _python()
    if name == "torch":
        return (
            f"{py} -m pip install --force-reinstall torch   # PyPI's Linux wheel is a CUDA build"
            if gpu
            else f"{py} -m pip install torch --index-url https://download.pytorch.org/whl/cpu"
        )
    if name == "tensorflow":
        return (
            f"{py} -m pip uninstall -y tensorflow-cpu; "
            + compat.data()["tensorflow_tested"]["install_cuda"].replace("pip", f"{py} -m pip", 1)
            if gpu
            else f"{py} -m pip install tensorflow-cpu"
        )
    if name == "jax":
        return f"{py} -m pip install 'jax[cuda12]'" if gpu else f"{py} -m pip install jax"
    return f"{py} -m pip install {name}"


def _python() -> str:
    import sys

    return sys.executable or "python3"


# --- system ----------------------------------------------------------------------------


def system_checks(facts: dict[str, Any]) -> list[CheckResult]:
    system = facts["system"]
    results = []
    cache = system["disk"]["dataset_cache"]
    free = cache["free_mib"]
    if free is not None:
        status = (
            FAIL if free < DATASET_DISK_FAIL_MIB else WARN if free < DATASET_DISK_WARN_MIB else PASS
        )
        results.append(
            CheckResult(
                "disk_dataset_cache",
                status,
                f"{free} MiB free for the dataset cache ({cache['path']}).",
                None
                if status is PASS
                else f"Free space there, or point KERAS_HOME at a bigger disk "
                f"(needs >= {DATASET_DISK_WARN_MIB} MiB).",
                cache,
            )
        )
    memory = system["memory"]
    total, available = memory["total_mib"], memory["available_mib"]
    if total is not None:
        if total < BENCH_RAM_MIB:
            status, msg = FAIL, f"{total} MiB RAM in total; the benchmark needs ~{BENCH_RAM_MIB}."
        elif available is not None and available < BENCH_RAM_MIB:
            status, msg = (
                WARN,
                f"{available} MiB RAM available; the benchmark needs ~{BENCH_RAM_MIB}.",
            )
        else:
            status, msg = PASS, f"{available} MiB RAM available of {total} MiB."
        fix = None if status is PASS else "Close memory-hungry programs, or use a larger machine."
        results.append(CheckResult("ram_for_benchmark", status, msg, fix,
                                   {**memory, "needed_mib": BENCH_RAM_MIB}))  # fmt: skip
    perf = {v: os.environ[v] for v in PERF_ENV_VARS if v in os.environ}
    for variable, value in perf.items():
        results.append(
            CheckResult(
                "performance_env_var",
                WARN,
                f"{variable}={value} slows CUDA down or changes its behaviour.",
                f"unset {variable}",
                {variable: value},
            )
        )
    virt = system["virtualization"]
    if virt["wsl"]:
        results.append(
            CheckResult(
                "wsl",
                INFO,
                "Running under WSL: the Windows NVIDIA driver serves CUDA.",
                "Keep /usr/lib/wsl/lib on LD_LIBRARY_PATH; never install a Linux "
                "driver inside WSL.",
                virt,
            )  # fmt: skip
        )
    return results
