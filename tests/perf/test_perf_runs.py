"""Real runs: the CPU path on this machine (every CI machine has a CPU), the GPU path
where torch cannot use the GPU NVML reports (fake NVML, real child), and the GPU path
on a real GPU (marked gpu)."""

import os
import time

import pytest

from dlcheck.models import Status
from dlcheck.perf import runner
from dlcheck.perf.records import PerfOptions

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml


@pytest.fixture(scope="module")
def cpu_run():
    started = time.perf_counter()
    result = runner.run(PerfOptions(gpu=False))
    return result, time.perf_counter() - started


def test_cpu_path_measures_against_the_computed_peak(cpu_run):
    result, wall = cpu_run
    cpu = result.cpu
    assert wall < 30, f"the CPU path took {wall:.1f} s; the issue allows 30"
    assert cpu.error is None and cpu.peak_gflops_fp32 > 0 and cpu.cores >= 1
    tests = {t.name: t for t in cpu.tests}
    assert {"gemm_fp32_numpy", "gemm_fp64_numpy", "memory_copy_numpy"} <= set(tests)
    gemm = tests["gemm_fp32_numpy"]
    assert gemm.measured > 1.0 and gemm.repeats >= 3 and gemm.low <= gemm.measured <= gemm.high
    assert gemm.peak == cpu.peak_gflops_fp32 and gemm.of_peak == gemm.measured / gemm.peak
    assert gemm.status in (Status.PASS, Status.WARN)  # the CPU baseline never FAILs
    assert tests["memory_copy_numpy"].measured > 0.5  # GB/s: any machine copies faster
    assert cpu.status in (Status.PASS, Status.WARN)
    assert result.status in (Status.PASS, Status.WARN) and result.gpus == []


def test_cpu_path_torch_when_installed(cpu_run):
    pytest.importorskip("torch")
    tests = {t.name: t for t in cpu_run[0].cpu.tests}
    assert tests["gemm_fp32_torch"].measured > 1.0
    assert tests["memory_triad_torch"].measured > 0.5
    assert cpu_run[0].software["torch"]


def test_gpu_nvml_sees_but_torch_cannot_use_is_a_fail_with_a_fix(fake_nvml):
    # NVML (faked) reports an H100; the real child finds no CUDA in this CPU-only torch.
    pytest.importorskip("torch")
    fake_nvml("loaded_healthy")
    result = runner.run(PerfOptions(cpu=False, timeout_s=120))
    (g,) = result.gpus
    assert g.status == Status.FAIL and result.status == Status.FAIL
    assert g.sku["key"] == "h100-pcie" and g.tests == []
    assert "torch.cuda.is_available() is False" in g.error
    assert "dlcheck check" in g.error  # where the fix is explained


def test_unknown_device_index_is_named_and_tests_nothing(fake_nvml):
    fake_nvml("healthy_single")
    result = runner.run(PerfOptions(cpu=False, devices=(5,)))
    assert result.gpus == [] and result.status == Status.PASS
    assert result.errors == ["no GPU with NVML index 5 (NVML sees: 0-0)"]


def test_a_child_that_hangs_is_killed_and_reported(monkeypatch, tmp_path):
    # The child entry replaced by a sleeper: the time limit must kill its whole group.
    marker = tmp_path / "child.pid"
    fake_env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    monkeypatch.setattr(runner, "child_env", lambda cpu_only: fake_env)
    (tmp_path / "dlcheck").mkdir()
    (tmp_path / "dlcheck" / "__init__.py").write_text("")
    (tmp_path / "dlcheck" / "perf").mkdir()
    (tmp_path / "dlcheck" / "perf" / "__init__.py").write_text("")
    (tmp_path / "dlcheck" / "perf" / "child.py").write_text(
        f"import os, time\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    result, problem, pid = runner.run_child({"mode": "cpu"}, timeout=2, cpu_only=True)
    assert time.perf_counter() - started < 15
    assert result == {} and "timed out after 2 s" in problem
    with pytest.raises(ProcessLookupError):
        os.kill(int(marker.read_text()), 0)


@pytest.mark.gpu
def test_real_gpus_match_their_datasheet_row():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    result = runner.run(PerfOptions(cpu=False))
    assert result.gpus
    for g in result.gpus:
        assert g.error is None, g.error
        assert g.sku is not None, f"{g.name} ({g.pci_device_id}) has no datasheet row"
        measured = [t for t in g.tests if t.measured is not None]
        assert any(t.name == "matmul_fp32" for t in measured)
        assert all(t.detail.get("correct", True) for t in measured)
        assert g.telemetry["loaded_samples"] > 0
