"""Typed records `dlcheck perf` builds and renders; each has to_dict() for the JSON envelope."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dlcheck.models import CheckResult, Status


@dataclass(frozen=True)
class PerfOptions:
    cpu: bool = True  # run the CPU tests
    gpu: bool = True  # run the GPU tests (when NVML and torch see a GPU)
    devices: tuple[int, ...] | None = None  # NVML indices; None = every GPU
    seconds_per_test: float = 2.5  # time box of one GPU test's timed repeats (11 per GPU)
    cpu_seconds_per_test: float = 2.0
    timeout_s: float | None = None  # GPU child killed after this; None: scaled to the GPUs
    cpu_timeout_s: float = 90.0
    p2p: bool = True
    sample_interval_s: float = 0.25  # NVML telemetry while the GPU child runs
    show_ids: bool = False


@dataclass
class TestResult:
    """One measurement: median of timed repeats, against the datasheet and the expected share."""

    name: str  # matmul_bf16, memory_copy, h2d_pinned, gemm_fp32_numpy, p2p_0_1 ...
    kind: str  # matmul | memory | transfer | p2p | gemm
    unit: str  # TFLOP/s, GFLOP/s, GB/s
    measured: float | None = None  # median
    low: float | None = None  # slowest repeat
    high: float | None = None  # fastest repeat
    repeats: int = 0
    peak: float | None = None  # datasheet (GPU) or computed (CPU) peak, same unit
    expected: float | None = None  # realistic: fraction x peak
    fraction: float | None = None  # the expected share of peak used
    status: Status = Status.INFO
    message: str = ""
    detail: dict[str, Any] = field(default_factory=dict)  # size, dtype, window, correctness

    @property
    def of_peak(self) -> float | None:
        if self.measured is None or not self.peak:
            return None
        return self.measured / self.peak

    @property
    def of_expected(self) -> float | None:
        if self.measured is None or not self.expected:
            return None
        return self.measured / self.expected

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["status"] = self.status.value
        record["of_peak"] = _round(self.of_peak)
        record["of_expected"] = _round(self.of_expected)
        return record


@dataclass
class GpuPerf:
    index: int  # NVML index
    name: str | None
    uuid: str | None
    pci_device_id: str | None  # "0x2330"
    sku: dict[str, Any] | None  # Sku.to_dict() of the matched row, None when unknown
    tests: list[TestResult] = field(default_factory=list)
    causes: list[CheckResult] = field(default_factory=list)  # likely first
    telemetry: dict[str, Any] = field(default_factory=dict)  # NVML under load, summarised
    status: Status = Status.INFO
    message: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "uuid": self.uuid,
            "pci_device_id": self.pci_device_id,
            "sku": self.sku,
            "tests": [t.to_dict() for t in self.tests],
            "causes": [c.to_dict() for c in self.causes],
            "telemetry": self.telemetry,
            "status": self.status.value,
            "message": self.message,
            "error": self.error,
        }


@dataclass
class CpuPerf:
    model: str | None
    cores: int | None  # physical cores this process may use
    threads: int | None  # logical CPUs this process may use
    frequency_mhz: float | None
    frequency_source: str | None  # where the clock came from, and its limits
    vector_isa: str | None  # avx512f | avx2+fma | avx | sse2 | neon ...
    flops_per_cycle_fp32: int | None  # per core, all FMA units busy
    peak_gflops_fp32: float | None
    peak_gflops_fp64: float | None
    peak_basis: str = ""  # one line: how the peak was computed, and what it assumes
    blas: dict[str, Any] = field(default_factory=dict)  # numpy/torch BLAS as they report it
    tests: list[TestResult] = field(default_factory=list)
    causes: list[CheckResult] = field(default_factory=list)
    load: dict[str, Any] = field(default_factory=dict)  # load average, other busy processes
    status: Status = Status.INFO
    message: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        record = {k: v for k, v in asdict(self).items() if k not in ("tests", "causes")}
        record["tests"] = [t.to_dict() for t in self.tests]
        record["causes"] = [c.to_dict() for c in self.causes]
        record["status"] = self.status.value
        return record


@dataclass
class PerfResult:
    cpu: CpuPerf | None
    gpus: list[GpuPerf]
    p2p: list[TestResult]
    software: dict[str, Any]  # torch / CUDA / numpy versions the children saw
    nvml: dict[str, Any]  # {"error": code or None, "detail": ...}
    wall_s: float
    status: Status  # worst of CPU and GPUs (INFO/SKIP count as PASS)
    errors: list[str] = field(default_factory=list)
    requested: dict[str, bool] = field(default_factory=lambda: {"cpu": True, "gpu": True})

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu.to_dict() if self.cpu else None,
            "gpus": [g.to_dict() for g in self.gpus],
            "p2p": [t.to_dict() for t in self.p2p],
            "software": self.software,
            "nvml": self.nvml,
            "wall_s": round(self.wall_s, 2),
            "status": self.status.value,
            "errors": list(self.errors),
            "requested": dict(self.requested),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
