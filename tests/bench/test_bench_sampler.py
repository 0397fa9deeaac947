"""The NVML sampler that confirms a GPU run, with NVML faked at its one seam."""

import time
import types

import pytest

from dlcheck import nvml
from dlcheck.bench import runner


class FakeNVMLError(Exception):
    def __init__(self, value=999):
        self.value = value


def fake_pynvml(busy_index: int):
    calls = {"n": 0}

    def utilization(handle):
        calls["n"] += 1
        return types.SimpleNamespace(gpu=70 if handle == busy_index else 0, memory=5)

    def memory(handle):
        used = 500 + (1500 if handle == busy_index and calls["n"] > 2 else 0)
        return types.SimpleNamespace(used=used * 1024 * 1024, total=80000 * 1024 * 1024)

    return types.SimpleNamespace(
        NVMLError=FakeNVMLError,
        NVML_ERROR_NOT_SUPPORTED=3,
        NVML_ERROR_FUNCTION_NOT_FOUND=13,
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlDeviceGetCount=lambda: 2,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetUUID=lambda h: f"GPU-0000000{h}-aaaa-bbbb-cccc-dddddddddddd",
        nvmlDeviceGetUtilizationRates=utilization,
        nvmlDeviceGetMemoryInfo=memory,
    )


@pytest.fixture
def fake_nvml(monkeypatch):
    def install(module):
        nvml.reset()
        monkeypatch.setattr(nvml, "_import_pynvml", lambda: module)

    yield install
    nvml.reset()


def test_sampler_reports_the_gpu_the_child_used(fake_nvml):
    fake_nvml(fake_pynvml(busy_index=1))
    sampler = runner.GpuSampler(interval=0.02)
    sampler.start()
    time.sleep(0.2)
    sampler.stop()
    # torch reports the UUID without NVML's "GPU-" prefix
    summary = sampler.summary("00000001-aaaa-bbbb-cccc-dddddddddddd", "cuda:0")
    assert summary["available"] and summary["index"] == 1
    assert summary["samples"] >= 3
    assert summary["max_utilization_gpu"] == 70
    assert summary["baseline_memory_used_mib"] == 500 and summary["max_memory_used_mib"] == 2000
    idle = sampler.summary("00000000-aaaa-bbbb-cccc-dddddddddddd", "cuda:0")
    assert idle["index"] == 0 and idle["max_utilization_gpu"] == 0


def test_sampler_without_nvml_says_why(fake_nvml):
    def broken_init():
        raise FakeNVMLError(9)

    module = fake_pynvml(busy_index=0)
    module.nvmlInit = broken_init
    module.NVML_ERROR_DRIVER_NOT_LOADED = 9
    fake_nvml(module)
    sampler = runner.GpuSampler()
    sampler.start()
    sampler.stop()
    summary = sampler.summary(None, "cuda:0")
    assert summary == {"available": False, "reason": "driver_not_loaded: 9"}
