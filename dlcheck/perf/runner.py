"""`run(options) -> PerfResult`: measure in child processes, judge here. Never prints.

The CPU child runs first (CUDA hidden from it), then one GPU child for all chosen
GPUs while this process samples NVML. The parent never imports numpy's BLAS
workloads or torch: a crash, hang or OOM kill in a child becomes that section's
error, not the end of the run.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dlcheck import children
from dlcheck.models import Status, envelope_status
from dlcheck.perf import cpu as cpu_facts
from dlcheck.perf import verdicts
from dlcheck.perf.records import CpuPerf, GpuPerf, PerfOptions, PerfResult, TestResult
from dlcheck.perf.telemetry import Telemetry
from dlcheck.text import clean

CHILD_ARGV = [sys.executable, "-m", "dlcheck.perf.child"]  # + SPEC.json
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def run(options: PerfOptions, progress=None) -> PerfResult:
    """Measure and judge. `progress`: a progress.RowProgress (say/start/tick/done) or None."""
    progress = progress or _Quiet()
    started = time.perf_counter()
    errors: list[str] = []
    software: dict[str, Any] = {}
    cpu = None
    sections = int(options.cpu) + int(options.gpu)
    if options.cpu:
        cpu = measure_cpu(options, software, progress, (1, sections))
    gpus: list[GpuPerf] = []
    p2p: list[TestResult] = []
    nvml_state: dict[str, Any] = {"error": None, "detail": None}
    if options.gpu:
        gpus, p2p, nvml_state = measure_gpus(options, software, errors, progress, sections)
    statuses = [g.status for g in gpus] + [t.status for t in p2p]
    if cpu is not None:
        statuses.append(cpu.status)
    if nvml_state.get("error") == "not_responding":
        statuses.append(Status.FAIL)
    return PerfResult(
        cpu=cpu,
        gpus=gpus,
        p2p=p2p,
        software=software,
        nvml=nvml_state,
        wall_s=time.perf_counter() - started,
        status=envelope_status(statuses),
        errors=errors,
        requested={"cpu": options.cpu, "gpu": options.gpu},
    )


class _Quiet:
    """A progress object that shows nothing (library use)."""

    def say(self, message):
        pass

    def start(self, number, total, spec):
        pass

    def tick(self, child):
        pass

    def done(self, row):
        pass


# ------------------------------------------------------------------ CPU


def measure_cpu(options: PerfOptions, software: dict[str, Any], progress, step) -> CpuPerf:
    facts = cpu_facts.collect()
    peak = cpu_facts.peak(facts)
    record = CpuPerf(
        model=clean(facts.model, 120) if facts.model else None,
        cores=facts.cores,
        threads=facts.threads,
        frequency_mhz=facts.frequency_mhz,
        frequency_source=facts.frequency_source,
        vector_isa=peak.vector_isa,
        flops_per_cycle_fp32=peak.flops_per_cycle_fp32,
        peak_gflops_fp32=peak.gflops_fp32,
        peak_gflops_fp64=peak.gflops_fp64,
        peak_basis=peak.basis,
    )
    spec = {"mode": "cpu", "seconds_per_test": options.cpu_seconds_per_test,
            "threads": facts.threads}  # fmt: skip
    progress.start(*step, SimpleNamespace(impl="GEMM and memory bandwidth", device="the CPU"))
    before = _cpu_times()
    result, problem, _ = run_child(spec, options.cpu_timeout_s, progress, cpu_only=True)
    load = _load_during(before, _cpu_times())
    load.update(
        quota_cpus=facts.quota_cpus,
        governor=facts.governor,
        thread_env={k: os.environ.get(k) for k in THREAD_ENV if os.environ.get(k)},
    )
    if problem:
        result = {"error": problem}
    software.update({k: v for k, v in (result.get("software") or {}).items() if v is not None})
    return verdicts.judge_cpu(record, result, load)


def _cpu_times() -> dict[str, float]:
    """Aggregate /proc/stat jiffies, children's CPU seconds, and the 1-minute load average."""
    times = {"total": 0.0, "idle": 0.0, "steal": 0.0}
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        values = [float(v) for v in fields]
        hz = os.sysconf("SC_CLK_TCK")
        times["total"] = sum(values[:8]) / hz  # user..steal; guest is inside user
        times["idle"] = (values[3] + values[4]) / hz  # idle + iowait
        times["steal"] = values[7] / hz if len(values) > 7 else 0.0
    except (OSError, ValueError, IndexError):
        pass
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    times["children"] = usage.ru_utime + usage.ru_stime
    try:
        times["loadavg_1m"] = os.getloadavg()[0]
    except OSError:
        times["loadavg_1m"] = None
    return times


def _load_during(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Share of all CPU time that other processes used, and the hypervisor stole."""
    total = after["total"] - before["total"]
    if total <= 0:
        return {"others_share": None, "steal_share": None, "loadavg_1m": after["loadavg_1m"]}
    busy = total - (after["idle"] - before["idle"]) - (after["steal"] - before["steal"])
    ours = after["children"] - before["children"]
    return {
        "others_share": round(max(busy - ours, 0.0) / total, 3),
        "steal_share": round((after["steal"] - before["steal"]) / total, 3),
        "loadavg_1m": after["loadavg_1m"],
        "child_cpu_s": round(ours, 2),
    }


# ------------------------------------------------------------------ GPUs


def measure_gpus(options: PerfOptions, software: dict[str, Any], errors: list[str], progress,
                 sections: int):  # fmt: skip
    from dlcheck import gpu as gpu_records
    from dlcheck.gpu import mask_id

    inventory = gpu_records.collect(show_ids=True)
    nvml_state = {"error": inventory.nvml.error, "detail": inventory.nvml.detail}
    if inventory.nvml.error == "not_responding":  # CUDA would hang in the same driver
        errors.append(f"nvml_not_responding: {hung_driver(inventory.nvml.detail)}")
        return [], [], nvml_state
    data = {"gpus": inventory.gpus}
    known = {g["index"] for g in data["gpus"]}
    for index in sorted(set(options.devices or ()) - known):
        seen = f"0-{max(known)}" if known else "none"
        errors.append(f"no GPU with NVML index {index} (NVML sees: {seen})")
    usable = [g for g in data["gpus"] if not g["error"]]
    lost = [GpuPerf(index=g["index"], name=g["name"], uuid=None, pci_device_id=None, sku=None,
                    status=Status.FAIL, error=f"NVML: {g['error']}", message=f"NVML: {g['error']}")
            for g in data["gpus"] if g["error"]]  # fmt: skip
    if options.devices is not None:
        usable = [g for g in usable if g["index"] in options.devices]
        lost = [g for g in lost if g.index in options.devices]
    usable, skipped = _measurable(usable)
    if not usable:
        return sorted(lost + skipped, key=lambda g: g.index), [], nvml_state
    indices = [g["index"] for g in usable]
    telemetry = Telemetry(indices, options.sample_interval_s)
    telemetry.snapshot(usable)
    what = "matmul, memory, host copies" + (", peer copies" if len(indices) > 1 and options.p2p
                                            else "")  # fmt: skip
    progress.say(f"GPU {', '.join(map(str, indices))}: {what}, about "
                 f"{_estimate_s(options, len(indices)):.0f} s")  # fmt: skip
    gpu_list = ", ".join(map(str, indices))
    progress.start(sections, sections, SimpleNamespace(impl=what, device=f"GPU {gpu_list}"))
    spec = {"mode": "gpu", "seconds_per_test": options.seconds_per_test, "p2p": options.p2p,
            "uuids": [g["uuid"] for g in usable if g["uuid"]] or None}  # fmt: skip
    timeout = options.timeout_s or 3 * _estimate_s(options, len(indices)) + 60
    try:
        result, problem, pid = run_child(spec, timeout, progress, on_start=telemetry.start)
    finally:
        telemetry.stop()
    if telemetry.error:
        errors.append(telemetry.error)
        if "not_responding" in telemetry.error or "NvmlNotResponding" in telemetry.error:
            nvml_state = {"error": "not_responding", "detail": telemetry.error}
    if problem:
        result = {"error": problem, "devices": [], "p2p": []}
    software.update({k: v for k, v in (result.get("software") or {}).items() if v is not None})
    record = telemetry.to_dict()
    by_uuid = {_plain(d.get("uuid")): d for d in result.get("devices") or []}
    gpus, ordinal_sku = [], {}
    for g in usable:
        device = by_uuid.get(_plain(g["uuid"])) or _by_ordinal(result, g["index"])
        if device is None:
            why = result.get("error") or "the GPU child did not report this GPU"
            gpus.append(_unmeasured(g, why, record))
            continue
        judged = verdicts.judge_gpu(g["index"], device, device["tests"], record, {pid} - {None})
        ordinal_sku[device["ordinal"]] = verdicts.skus.lookup(judged.pci_device_id, judged.name)
        gpus.append(judged)
    p2p = [verdicts.p2p_test(raw, ordinal_sku) for raw in result.get("p2p") or []]
    for pair in p2p:  # name pairs by NVML index, as the rest of the report does
        pair.name = _nvml_pair_name(pair, result, usable)
    if not options.show_ids:
        for g in gpus:
            g.uuid = mask_id(g.uuid)
    return sorted(gpus + lost + skipped, key=lambda g: g.index), p2p, nvml_state


def _measurable(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[GpuPerf]]:
    """The GPUs the child can measure, and a SKIP record for each it cannot: a GPU split into
    MIG slices (torch sees the slices), or one CUDA_VISIBLE_DEVICES hides from CUDA."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    entries = None if visible is None else [v.strip() for v in visible.split(",") if v.strip()]
    keep, skipped = [], []
    for g in records:
        why = None
        if g.get("mig.mode.current") == "Enabled":
            why = (
                "MIG is enabled: the GPU is split into slices, which dlcheck perf does not "
                f"measure (sudo nvidia-smi -i {g['index']} -mig 0 to measure the whole GPU)"
            )
        elif entries is not None and not any(_names(entry, g) for entry in entries):
            why = (f"hidden from CUDA by CUDA_VISIBLE_DEVICES={visible!r}; unset it, or pick "
                   "GPUs with --devices")  # fmt: skip
        if why is None:
            keep.append(g)
            continue
        skipped.append(GpuPerf(index=g["index"], name=g["name"], uuid=None, pci_device_id=None,
                               sku=None, status=Status.SKIP, message=why))  # fmt: skip
    return keep, skipped


def _names(entry: str, g: dict[str, Any]) -> bool:
    """Whether a CUDA_VISIBLE_DEVICES entry (an index, or a UUID or its prefix) names `g`."""
    if entry.isdigit():
        return int(entry) == g["index"]
    return bool(g.get("uuid")) and _plain(g["uuid"]).startswith(_plain(entry))


def _estimate_s(options: PerfOptions, count: int) -> float:
    """Expected GPU child time: start-up, 11 timed tests per GPU, 1 s per peer pair."""
    per_gpu = 11 * options.seconds_per_test + 8  # + warm-ups and allocation
    pairs = count * (count - 1) // 2 if options.p2p else 0
    return 10 + count * per_gpu + pairs * min(options.seconds_per_test, 1.0)


def _unmeasured(g: dict[str, Any], why: str, record: dict[str, Any]) -> GpuPerf:
    fix = ""
    if "is_available() is False" in why:
        fix = (" (this torch cannot use the GPU: a CPU-only build, or a driver too old for "
               "its CUDA; `dlcheck check` names the fix)")  # fmt: skip
    elif "No module named 'torch'" in why:
        fix = " (install PyTorch with CUDA: pip install torch)"
    result = verdicts.judge_gpu(g["index"], {"name": g["name"]}, [], record, set())
    result.status, result.error = Status.FAIL, f"not measured: {why}{fix}"
    result.message = result.error
    return result


def _plain(uuid: str | None) -> str:
    return (uuid or "").lower().removeprefix("gpu-")


def _by_ordinal(result: dict[str, Any], index: int) -> dict[str, Any] | None:
    """No UUID from torch: under CUDA_DEVICE_ORDER=PCI_BUS_ID, ordinal N is NVML index N
    unless CUDA_VISIBLE_DEVICES renumbers (then its Nth entry names the NVML index)."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
    visible = [v.strip() for v in listed if v.strip()]
    for device in result.get("devices") or []:
        ordinal = device["ordinal"]
        mapped = int(visible[ordinal]) if ordinal < len(visible) and visible[ordinal].isdigit() \
            else ordinal  # fmt: skip
        if mapped == index and not device.get("uuid"):
            return device
    return None


def _nvml_pair_name(pair: TestResult, result: dict[str, Any], usable: list[dict]) -> str:
    uuid_to_index = {_plain(g["uuid"]): g["index"] for g in usable}
    ordinal_to_index = {d["ordinal"]: uuid_to_index.get(_plain(d.get("uuid")), d["ordinal"])
                        for d in result.get("devices") or []}  # fmt: skip
    src = ordinal_to_index.get(pair.detail.get("src"), pair.detail.get("src"))
    dst = ordinal_to_index.get(pair.detail.get("dst"), pair.detail.get("dst"))
    pair.detail.update(src_index=src, dst_index=dst)
    return f"p2p_{src}_{dst}"


def hung_driver(detail: str | None) -> str:
    from dlcheck.checks.driver import HUNG_DRIVER_FIX

    return f"the NVIDIA driver does not respond ({detail}). Fix: {HUNG_DRIVER_FIX}"


# ------------------------------------------------------------------ children


def child_env(cpu_only: bool) -> dict[str, str]:
    env = dict(os.environ)
    if cpu_only:
        env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU child must not initialise a GPU
    else:
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # cuda:N == NVML index N
    return env


def run_child(
    spec: dict[str, Any], timeout: float, progress=None, cpu_only: bool = False, on_start=None
) -> tuple[dict[str, Any], str | None, int | None]:
    """(result, problem, pid) of one child run through dlcheck.children: its own process
    group, killed at the deadline or on Ctrl-C/SIGTERM, its scratch folder removed."""
    progress = progress or _Quiet()
    running: list[children.Child] = []

    def started(child: children.Child) -> None:
        running.append(child)
        if on_start:
            on_start()

    def tick() -> None:
        if running:
            progress.tick(running[0])

    with children.scratch("perf") as workdir:
        spec_path = workdir / "spec.json"
        spec_path.write_text(json.dumps(spec))
        ended = children.run(
            [*CHILD_ARGV, str(spec_path)],
            workdir=workdir,
            name=spec["mode"],
            timeout=timeout,
            env=child_env(cpu_only),
            result_file=True,
            on_tick=tick,
            on_start=started,
        )
    problem = None
    if ended.document is None or not isinstance(ended.document, dict):
        problem = f"the measuring child {ended.error or 'wrote no result'}"
    progress.done(SimpleNamespace(error=problem))
    return (ended.document if problem is None else {}), problem, running[0].pid if running else None
