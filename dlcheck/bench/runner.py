"""Run each (implementation, device) pair in its own child process, one after another.

Children run sequentially so they never compete for the same cores; a crash,
OOM kill or hang in one becomes that row's error, not the end of the run. CPU
children see no GPU (CUDA_VISIBLE_DEVICES=""); GPU children are watched by an
NVML sampling thread here in the parent. Each row is created once, as a RunRow.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlcheck import children
from dlcheck.bench.protocol import Outcome, Spec
from dlcheck.text import clean


@dataclass(frozen=True)
class RunRow:
    """What running one (implementation, device) child gave. `outcome` is None when the child
    did not finish with a result; `error` then says why (one line)."""

    impl: str
    device: str
    outcome: Outcome | None
    error: str | None
    wall_s: float
    log_tail: str | None  # the child's last output lines, when it failed
    nvml: dict[str, Any] | None  # GPU rows: what the sampler saw


def cpu_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def default_threads(load_average: float | None) -> int:
    """The cores not already busy: oversubscribed OpenMP threads made torch epochs 4x slower.

    cores minus the 1-minute load average (rounded), at least 1.
    """
    cores = cpu_threads()
    if load_average is None:
        return cores
    return max(1, min(cores, cores - round(load_average)))


def batch_thread(budget: int) -> bool:
    """Whether torch-sparse builds its batches in a second thread: when the thread budget every
    implementation gets is 2 or more, so it never uses more threads than keras and torch may.

    Its steps and its batch building each run on one core (the ops are too small to split:
    more OpenMP threads than free cores made epochs several times slower), so it uses
    min(budget, 2) threads; the table shows each row's threads.
    """
    return budget >= 2


def child_env(device: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU run cannot touch a GPU, even by accident
    else:
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # so cuda:N matches NVML's index N
    return env


def run_child(spec: Spec, workdir: Path, timeout: float,
              on_tick: Callable[[children.Child], None] | None = None) -> RunRow:  # fmt: skip
    """One child; always returns a row (with `error` set when the child did not finish)."""
    tag = f"{spec.impl}-{spec.device}".replace(":", "")
    spec_path = workdir / f"{tag}.spec"
    spec_path.write_text(json.dumps(spec.to_dict()))
    sampler = GpuSampler() if spec.device != "cpu" else None
    if sampler:
        sampler.start()
    started: list[children.Child] = []
    try:
        ended = children.run(
            [sys.executable, "-m", "dlcheck.bench.child", str(spec_path)],
            workdir=workdir, name=tag, timeout=timeout, env=child_env(spec.device),
            result_file=True, merge_stderr=True, on_start=started.append,
            on_tick=(lambda: on_tick(started[0])) if on_tick else None,
        )  # fmt: skip
    finally:
        if sampler:
            sampler.stop()
    outcome, error = None, None
    said = ended.document.get("error") if isinstance(ended.document, dict) else None
    if said:  # the child's own words: an exception in the implementation
        error = clean(said, 300)
    elif not ended.ok:
        error = ended.error
    else:
        try:
            outcome = Outcome.from_document(ended.document)
        except (TypeError, ValueError) as problem:
            error = f"the child's result is malformed: {problem}"
    nvml = sampler.summary(outcome.gpu_uuid if outcome else None, spec.device) if sampler else None
    tail = "\n".join((ended.stderr_tail or "").splitlines()[-15:]) if error else None
    return RunRow(spec.impl, spec.device, outcome, error, ended.seconds, tail, nvml)


def run_all(dataset, specs: list[Spec], timeout: float, progress=None) -> list[RunRow]:
    """Prepare the shared data once, then run every spec in turn. `progress` (optional) gets
    start(number, total, spec), tick(child) while it runs, and done(row)."""
    rows = []
    with children.scratch("bench") as workdir:
        prepared = workdir / "prepared.npz"
        dataset.save(prepared)
        for number, spec in enumerate(specs, 1):
            spec.prepared = str(prepared)
            if progress:
                progress.start(number, len(specs), spec)
            row = run_child(spec, workdir, timeout, progress.tick if progress else None)
            if progress:
                progress.done(row)
            rows.append(row)
    return rows


# ---------------------------------------------------------------- NVML


class GpuSampler:
    """Samples every GPU's utilisation and memory while a GPU child runs.

    Any NVML failure just ends sampling; the verdict then says NVML could not
    confirm the run (it never breaks the benchmark).
    """

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.samples: dict[int, list[tuple[int, int]]] = {}  # index -> [(util %, used MiB)]
        self.uuids: dict[int, str] = {}
        self.baseline: dict[int, int] = {}
        self.unavailable: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        from dlcheck import nvml

        try:
            lib = nvml.library()
            for index in range(nvml.query("nvmlDeviceGetCount", default=0)):
                handle = nvml.query("nvmlDeviceGetHandleByIndex", index)
                uuid = nvml.query("nvmlDeviceGetUUID", handle, default="")
                self.uuids[index] = uuid.decode() if isinstance(uuid, bytes) else str(uuid)
                self.baseline[index] = self._read(handle)[1]
                self.samples[index] = []
        except (nvml.NvmlUnavailable, Exception) as error:  # noqa: B014 - NVMLError subclasses
            self.unavailable = str(error)
            return
        self._lib = lib
        self._thread.start()

    def _read(self, handle) -> tuple[int, int]:
        from dlcheck import nvml

        util = nvml.query("nvmlDeviceGetUtilizationRates", handle)
        memory = nvml.query("nvmlDeviceGetMemoryInfo", handle)
        return (
            int(getattr(util, "gpu", 0) or 0),
            int((getattr(memory, "used", 0) or 0) // (1024 * 1024)),
        )

    def _loop(self):
        from dlcheck import nvml

        while not self._stop.wait(self.interval):
            try:
                for index in self.samples:
                    handle = nvml.query("nvmlDeviceGetHandleByIndex", index)
                    self.samples[index].append(self._read(handle))
            except Exception as error:  # NVML went away mid-run: keep what we have
                self.unavailable = str(error)
                return

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def summary(self, uuid: str | None, device: str) -> dict:
        """Peak utilisation and memory growth on the GPU the child used."""
        if self.unavailable and not any(self.samples.values()):
            return {"available": False, "reason": self.unavailable}
        index = self._index_for(uuid, device)
        if index is None:
            return {"available": False, "reason": f"no NVML GPU matches {device} ({uuid})"}
        samples = self.samples.get(index, [])
        return {
            "available": True,
            "index": index,
            "uuid": self.uuids.get(index),
            "samples": len(samples),
            "max_utilization_gpu": max((u for u, _ in samples), default=None),
            "max_memory_used_mib": max((m for _, m in samples), default=None),
            "baseline_memory_used_mib": self.baseline.get(index),
        }

    def _index_for(self, uuid: str | None, device: str) -> int | None:
        def plain(text):
            return (text or "").lower().removeprefix("gpu-")

        if uuid:
            for index, known in self.uuids.items():
                if plain(known) == plain(uuid):
                    return index
        # No uuid from the child: cuda:N under CUDA_DEVICE_ORDER=PCI_BUS_ID is NVML index N,
        # unless CUDA_VISIBLE_DEVICES renumbers; then its Nth entry names the NVML index.
        ordinal = int(device.split(":")[1]) if ":" in device else 0
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if visible:
            entries = [e.strip() for e in visible.split(",") if e.strip()]
            if ordinal < len(entries) and entries[ordinal].isdigit():
                ordinal = int(entries[ordinal])
        return ordinal if ordinal in self.samples else None
