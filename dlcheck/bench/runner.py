"""Run each (implementation, device) pair in its own child process, one after another.

Children run sequentially so they never compete for the same cores; a crash,
OOM kill or hang in one becomes that row's error, not the end of the run. CPU
children see no GPU (CUDA_VISIBLE_DEVICES=""); GPU children are watched by an
NVML sampling thread here in the parent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from dlcheck.bench.protocol import Spec

PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding `dlcheck/`


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


def batch_thread(threads_asked: int) -> bool:
    """Whether torch-sparse may build batches in a second thread: 2+ cores, unless --threads 1.

    Unlike OpenMP workers, that thread does not spin: on a core another process
    keeps busy it measured no slower than building in turn (65-67 ms against
    64-70 ms an epoch), and on an idle one it nearly halves the epoch.
    """
    return cpu_threads() >= 2 and threads_asked != 1


def child_env(device: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # the CPU run cannot touch a GPU, even by accident
    else:
        env.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # so cuda:N matches NVML's index N
    return env


def run_child(spec: Spec, workdir: Path, timeout: float) -> dict:
    """One child; always returns a row (with `error` set when the child did not finish)."""
    tag = f"{spec.impl}-{spec.device}".replace(":", "")
    spec_path, result_path, log_path = (workdir / f"{tag}.{ext}" for ext in ("spec", "json", "log"))
    spec_path.write_text(json.dumps(spec.to_dict()))
    result_path.unlink(missing_ok=True)
    sampler = GpuSampler() if spec.device != "cpu" else None
    started = time.perf_counter()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "dlcheck.bench.child", str(spec_path), str(result_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env(spec.device),
            start_new_session=True,  # its own process group, so a hang is killed whole
        )
        if sampler:
            sampler.start()
        try:
            returncode = process.wait(timeout=timeout)
            problem = None
        except subprocess.TimeoutExpired:
            _kill_group(process)
            returncode = process.wait()
            problem = f"timed out after {timeout:g} s (hung or far too slow); killed"
        finally:
            if sampler:
                sampler.stop()
    wall = time.perf_counter() - started
    row = {"impl": spec.impl, "device": spec.device}
    if problem is None and result_path.is_file():
        try:
            row = json.loads(result_path.read_text())
        except ValueError:
            problem = "child wrote an unreadable result"
    elif problem is None:
        problem = _describe_exit(returncode)
    if problem:
        row["error"] = f"{problem}{_last_line(log_path)}"
    row["wall_s"] = wall
    row["log_tail"] = _tail(log_path) if row.get("error") else None
    if sampler:
        row["nvml"] = sampler.summary(row.get("gpu_uuid"), spec.device)
    return row


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        name = signal.Signals(-returncode).name
        hint = " (killed: out of memory?)" if -returncode == signal.SIGKILL else ""
        return f"crashed with {name}{hint}"
    return f"exited with code {returncode} without a result"


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _last_line(path: Path) -> str:
    text = [line for line in _tail(path, 30).splitlines() if line.strip()]
    return f": {text[-1].strip()[:200]}" if text else ""


def run_all(dataset, specs: list[Spec], timeout: float, progress=None) -> list[dict]:
    """Prepare the shared data once, then run every spec in turn."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="dlcheck-bench-") as tmp:
        workdir = Path(tmp)
        prepared = workdir / "prepared.npz"
        dataset.save(prepared)
        for number, spec in enumerate(specs, 1):
            spec.prepared = str(prepared)
            if progress:
                progress(number, len(specs), spec)
            rows.append(run_child(spec, workdir, timeout))
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
