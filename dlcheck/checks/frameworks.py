"""Each framework: installed, the right build for this machine, sees the GPUs, computes right.

A framework whose probe did not answer (timeout, crash) could not be checked, and that is a
FAIL: the verdict must not say READY about what nobody looked at.
"""

from __future__ import annotations

from dataclasses import asdict

from dlcheck import compat
from dlcheck.checks import fixes
from dlcheck.facts import Facts
from dlcheck.frameworks import REGISTRY, ProbeResult
from dlcheck.gpu import GpuRecord
from dlcheck.models import CheckResult, Status

PASS, INFO, SKIP, WARN, FAIL = Status.PASS, Status.INFO, Status.SKIP, Status.WARN, Status.FAIL
DLOPEN_MARK = "Cannot dlopen some GPU libraries"  # TensorFlow's own words for missing CUDA libs


def checks(facts: Facts) -> list[CheckResult]:
    if facts.frameworks is None:
        if facts.frameworks_skipped:
            return [CheckResult(
                "frameworks_not_checked", SKIP,
                f"The framework probes were not run: {facts.frameworks_skipped}.",
                "Fix the driver problem above, then rerun dlcheck.",
            )]  # fmt: skip
        return []
    results = []
    gpu_machine = bool(facts.usable_gpus) or facts.has_gpu_hardware
    for name, fw in facts.frameworks.items():
        if not fw.probe.answered:
            results.append(_not_checked(fw, facts))
        elif REGISTRY.get(name) and REGISTRY[name].backend_of:
            results.append(_keras(fw, facts))
        elif not fw.installed:
            results.append(CheckResult(f"{name}_missing", INFO, f"{fw.label} is not installed.",
                                       fixes.install(name, facts, gpu_machine)))  # fmt: skip
        elif fw.error:
            results.append(CheckResult(
                f"{name}_import_failed", FAIL,
                f"{fw.label} is installed but failed to load: {fw.error}.",
                f"{facts.system.python_executable} -c 'import {name}'   # then reinstall: "
                + fixes.install(name, facts, gpu_machine),
                {"error": fw.error, "stderr_tail": fw.probe.stderr_tail},
            ))  # fmt: skip
        elif not gpu_machine:
            results.append(CheckResult(
                f"{name}_cpu", INFO, f"{fw.label} {fw.version} runs on the CPU (no NVIDIA GPU).",
                evidence=_evidence(fw),
            ))  # fmt: skip
        else:
            results += _on_gpu(fw, facts)
    return results


def _not_checked(fw: ProbeResult, facts: Facts) -> CheckResult:
    return CheckResult(
        f"{fw.name}_probe_failed", FAIL,
        f"{fw.label} could not be checked: {fw.error}.",
        f"dlcheck --timeout 600   # if the machine is just slow; to see why it fails: "
        f"{facts.system.python_executable} -c 'import {fw.name}'",
        {"probe": asdict(fw.probe)},
    )  # fmt: skip


def _evidence(fw: ProbeResult) -> dict:
    keys = ("version", "cuda", "cuda_build", "cudnn", "cudnn_built", "is_available", "gpu_count")
    return {k: getattr(fw, k) for k in keys}


def _on_gpu(fw: ProbeResult, facts: Facts) -> list[CheckResult]:
    name, label, evidence = fw.name, fw.label, _evidence(fw)
    if not fw.cuda_build:
        return [CheckResult(
            f"{name}_cpu_build", FAIL,
            f"{label} {fw.version} is a CPU-only build on a machine with an NVIDIA GPU.",
            fixes.install(name, facts, gpu=True), evidence,
        )]  # fmt: skip
    results = _driver_for_cuda(fw, facts, evidence)
    gpus = facts.usable_gpus
    if fw.arch_list:
        for g in gpus:
            cc = g["compute_cap"]
            if cc and not compat.arch_supported(cc, fw.arch_list):
                results.append(_arch_unsupported(fw, g, facts, evidence))
    if not fw.is_available or not fw.gpu_count:
        results.append(_sees_no_gpu(fw, facts, evidence))
        return results
    results += _cudnn(fw, facts, evidence)
    bad = [d for d in fw.devices or [] if not (d.matmul or {}).get("ok")]
    for device in bad:
        results.append(CheckResult(
            f"{name}_gpu_compute_failed", FAIL,
            f"{label} matmul on GPU {device.index} failed or disagreed with the CPU: "
            f"{(device.matmul or {}).get('error') or 'wrong result'}.",
            "Check the arch-list and driver results above; then nvidia-smi -q -d ECC.",
            {**evidence, "device": asdict(device)},
        ))  # fmt: skip
    if not bad:
        results.append(CheckResult(
            f"{name}_gpu", PASS,
            f"{label} {fw.version} (CUDA {fw.cuda}) computes correctly on "
            f"{fw.gpu_count} GPU(s).",
            evidence={**evidence, "devices": [asdict(d) for d in fw.devices or []]},
        ))  # fmt: skip
    return results


def _driver_for_cuda(fw: ProbeResult, facts: Facts, evidence: dict) -> list[CheckResult]:
    driver = facts.gpu.driver.version
    driver_cuda = facts.gpu.driver.cuda_driver_version
    row = compat.min_driver_for_cuda(fw.cuda)
    if not (fw.cuda and driver and row):
        return []
    ev = {**evidence, "driver": driver, "driver_cuda": driver_cuda, "table": row}
    have = compat.version_tuple(driver)
    if have < compat.version_tuple(row["family_min"]):
        return [CheckResult(
            f"driver_too_old_for_{fw.name}", FAIL,
            f"Driver {driver} is too old for {fw.label} built with CUDA {fw.cuda}: it needs "
            f"driver >= {row['family_min']}.",
            f"Upgrade the NVIDIA driver to >= {row['family_min']} (R580 LTSB), or install a "
            f"build this driver runs: {fixes.install(fw.name, facts, gpu=True)}",
            ev,
        )]  # fmt: skip
    if have < compat.version_tuple(row["release_min"]) or (
        driver_cuda and compat.version_tuple(driver_cuda) < compat.version_tuple(fw.cuda)
    ):
        return [CheckResult(
            f"driver_old_for_{fw.name}", WARN,
            f"Driver {driver} (CUDA {driver_cuda}) is older than {fw.label}'s CUDA {fw.cuda}: "
            "it runs through minor-version compatibility; PTX JIT may fail.",
            f"Upgrade the NVIDIA driver to >= {row['release_min']}.",
            ev,
        )]  # fmt: skip
    return []


def _arch_unsupported(fw: ProbeResult, g: GpuRecord, facts: Facts, evidence: dict
                      ) -> CheckResult:  # fmt: skip
    cc = g["compute_cap"] or "?"
    fix = (
        fixes.torch_gpu(facts)
        if fw.name == "torch"
        else f"No current {fw.label} wheel supports compute capability {cc}; use an older "
        f"{fw.label} release built for it."
    )
    return CheckResult(
        f"arch_unsupported_{fw.name}", FAIL,
        f"GPU {g['index']} ({g['name']}, sm_{cc.replace('.', '')}, {g['architecture']}) is not "
        f"in {fw.label}'s arch list: 'no kernel image is available'.",
        fix,
        {**evidence, "compute_cap": cc, "arch_list": fw.arch_list},
    )  # fmt: skip


def _sees_no_gpu(fw: ProbeResult, facts: Facts, evidence: dict) -> CheckResult:
    visible = facts.env.cuda_visible_devices
    ev = {**evidence, "CUDA_VISIBLE_DEVICES": visible, "nvml_gpus": len(facts.usable_gpus)}
    stderr = fw.probe.stderr_tail or ""
    if visible is not None and visible.strip() in ("", "-1", "none", "NoDevFiles"):
        fix = f"CUDA_VISIBLE_DEVICES={visible!r} hides the GPUs: unset CUDA_VISIBLE_DEVICES"
    elif DLOPEN_MARK in stderr:
        lines = [line.strip() for line in stderr.splitlines() if "dlopen" in line.lower()]
        return CheckResult(
            f"{fw.name}_cuda_libraries_missing", FAIL,
            f"{fw.label} {fw.version} is a CUDA build but cannot load the CUDA libraries it "
            f"needs ('{DLOPEN_MARK}'), so it sees no GPU although NVML sees "
            f"{len(facts.usable_gpus)}.",
            fixes.install(fw.name, facts, gpu=True),
            {**ev, "dlopen_messages": lines[-5:]},
        )  # fmt: skip
    elif facts.system.virtualization.container:
        fix = "Start the container with GPU access: docker run --gpus all ... (or --device)"
    else:
        fix = (
            f"{facts.system.python_executable} -c 'import {fw.name}'   # read its warnings; "
            "compare CUDA_VISIBLE_DEVICES with nvidia-smi -L and see the driver checks above"
        )
    return CheckResult(
        f"{fw.name}_no_gpu", FAIL,
        f"{fw.label} sees no GPU although NVML sees {len(facts.usable_gpus)}.",
        fix, ev,
    )  # fmt: skip


def _cudnn(fw: ProbeResult, facts: Facts, evidence: dict) -> list[CheckResult]:
    built, loaded = fw.cudnn_built, fw.cudnn
    shadows = facts.kernel.cudnn_on_loader_path
    shadows_ev = [asdict(s) for s in shadows]
    if built and loaded and compat.version_tuple(built)[:2] != compat.version_tuple(loaded)[:2]:
        where = f" {shadows[0].path} on LD_LIBRARY_PATH shadows it." if shadows else ""
        return [CheckResult(
            f"cudnn_mismatch_{fw.name}", WARN,
            f"{fw.label} was built with cuDNN {built} but loads cuDNN {loaded}.{where}",
            "Remove the system cuDNN folder from LD_LIBRARY_PATH, or pip install the "
            f"nvidia-cudnn wheel matching {built}.",
            {**evidence, "loader_path_cudnn": shadows_ev},
        )]  # fmt: skip
    if built and not loaded and shadows:
        # The framework does not say what it loaded: a system copy of another major is suspect.
        foreign = [s for s in shadows if compat.version_tuple(s.version)[:1]
                   != compat.version_tuple(built)[:1]]  # fmt: skip
        if foreign:
            return [CheckResult(
                f"cudnn_shadowed_{fw.name}", WARN,
                f"{foreign[0].path} on LD_LIBRARY_PATH may shadow the cuDNN {built} "
                f"{fw.label} was built with.",
                "Remove that folder from LD_LIBRARY_PATH (pip's nvidia-cudnn wheel is found "
                "without it).",
                {**evidence, "loader_path_cudnn": shadows_ev},
            )]  # fmt: skip
    return []


def _keras(fw: ProbeResult, facts: Facts) -> CheckResult:
    py = facts.system.python_executable
    if not fw.installed:
        return CheckResult("keras_missing", INFO, "Keras is not installed.",
                           fixes.install("keras", facts, gpu=False))  # fmt: skip
    evidence = {"version": fw.version, "backend": fw.backend,
                "backend_source": fw.backend_source, "backend_error": fw.backend_error,
                "keras_json": fw.extra.get("keras_json")}  # fmt: skip
    if fw.backend_error or fw.error:
        return CheckResult(
            "keras_backend_broken", FAIL,
            f"Keras {fw.version} cannot load its backend '{fw.backend}' (chosen by "
            f"{fw.backend_source}): {fw.backend_error or fw.error}.",
            f"{py} -m pip install {fw.backend}   # or pick an installed one: "
            "export KERAS_BACKEND=torch",
            evidence,
        )  # fmt: skip
    backend = (facts.frameworks or {}).get(fw.backend or "")
    where = ""
    if backend is not None and backend.installed:
        where = " on GPU" if backend.gpu_count else " on CPU"
    return CheckResult(
        "keras_backend", INFO,
        f"Keras {fw.version} uses the {fw.backend} backend{where} (chosen by "
        f"{fw.backend_source}).",
        "export KERAS_BACKEND=torch   # to choose another backend (before importing keras)",
        evidence,
    )  # fmt: skip
