"""`dlcheck perf` for real: the CPU path on this machine (every CI machine has a CPU; run once,
and every CPU assertion reads that run), the GPU path where torch cannot use the GPU NVML
reports (fake NVML, real child), usage errors, a hung driver, Ctrl-C, and the GPU path on
a real GPU (marked gpu)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlcheck import schema
from dlcheck.models import Status
from dlcheck.perf import runner
from dlcheck.perf.records import PerfOptions
from tests.fakes.cli import invoke

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory):
    plot = tmp_path_factory.mktemp("plot") / "perf.png"
    started = time.perf_counter()
    ran = invoke(["perf", "--cpu-only", "--json", "--plot", str(plot)])
    return ran, json.loads(ran.stdout), time.perf_counter() - started, plot


def test_cpu_run_is_quick_valid_and_exits_by_its_verdict(cpu_run):
    ran, body, wall, _ = cpu_run
    assert wall < 30, f"`dlcheck perf --cpu-only` took {wall:.1f} s; the issue allows 30"
    schema.validate("perf", body)
    assert body["command"] == "perf" and body["status"] in ("PASS", "WARN")
    assert ran.code == 0  # the CPU baseline only WARNs; --cpu-only asked for no GPU
    assert body["data"]["requested"] == {"cpu": True, "gpu": False}
    assert body["data"]["gpus"] == [] and body["data"]["nvml"]["error"] is None  # NVML untouched
    assert "perf: [1/1] GEMM and memory bandwidth on the CPU" in ran.stderr  # progress: stderr


def test_cpu_gemm_against_the_computed_peak(cpu_run):
    cpu = cpu_run[1]["data"]["cpu"]
    assert cpu["error"] is None and cpu["peak_gflops_fp32"] > 0 and cpu["cores"] >= 1
    assert cpu["peak_gflops_fp64"] == pytest.approx(cpu["peak_gflops_fp32"] / 2, abs=0.1)
    tests = {t["name"]: t for t in cpu["tests"]}
    assert {"gemm_fp32_numpy", "gemm_fp64_numpy", "memory_copy_numpy"} <= set(tests)
    gemm = tests["gemm_fp32_numpy"]
    assert gemm["measured"] > 1.0 and gemm["repeats"] >= 3
    assert gemm["low"] <= gemm["measured"] <= gemm["high"]
    assert gemm["peak"] == cpu["peak_gflops_fp32"]
    assert gemm["of_peak"] == pytest.approx(gemm["measured"] / gemm["peak"], rel=1e-3)
    assert gemm["status"] in ("PASS", "WARN")  # the CPU baseline never FAILs
    assert tests["memory_copy_numpy"]["measured"] > 0.5  # GB/s: any machine copies faster
    assert cpu["frequency_source"] and cpu["peak_basis"].startswith(f"{cpu['cores']} cores")


def test_cpu_torch_when_installed(cpu_run):
    pytest.importorskip("torch")
    data = cpu_run[1]["data"]
    tests = {t["name"]: t for t in data["cpu"]["tests"]}
    assert tests["gemm_fp32_torch"]["measured"] > 1.0
    assert tests["memory_triad_torch"]["measured"] > 0.5
    assert data["software"]["torch"]


def test_cpu_run_plot_and_human_view(cpu_run):
    pytest.importorskip("matplotlib")
    plot = cpu_run[3]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    import io

    from dlcheck.render import Output
    from dlcheck.render import perf as view

    out = io.StringIO()
    view.render(cpu_run[1]["data"], Output(out, plain=True, width=160))
    text = out.getvalue()
    assert "gemm_fp32_numpy" in text and "computed peak" in text
    assert "GPU  not tested (--cpu-only)" in text


def test_gpu_that_torch_cannot_use_fails_with_a_fix(fake_nvml, monkeypatch):
    # NVML (faked) reports an H100; the real child finds no CUDA in this CPU-only torch.
    pytest.importorskip("torch")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake_nvml("loaded_healthy")
    ran = invoke(["perf", "--gpu-only", "--json"])
    body = json.loads(ran.stdout)
    schema.validate("perf", body)
    (g,) = body["data"]["gpus"]
    assert ran.code == 1 and body["status"] == "FAIL" and g["status"] == "FAIL"
    assert g["sku"]["key"] == "h100-pcie" and g["tests"] == []
    assert "torch.cuda.is_available() is False" in g["error"] and "dlcheck check" in g["error"]


def test_no_gpu_exits_3_and_unknown_devices_are_named(fake_nvml):
    fake_nvml("no_library")
    ran = invoke(["perf", "--gpu-only"])
    assert ran.code == 3 and "GPU  none tested (NVML: library_missing" in ran.stdout
    fake_nvml("healthy_single")
    ran = invoke(["perf", "--gpu-only", "--devices", "5", "--json"])
    body = json.loads(ran.stdout)
    assert ran.code == 3 and body["errors"] == ["no GPU with NVML index 5 (NVML sees: 0-0)"]


def test_mig_and_hidden_gpus_are_skipped_with_the_reason(fake_nvml, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    fake_nvml("mig")
    body = json.loads(invoke(["perf", "--gpu-only", "--json"]).stdout)
    (g,) = body["data"]["gpus"]
    assert g["status"] == "SKIP" and "MIG is enabled" in g["message"] and "-mig 0" in g["message"]
    fake_nvml("multi_gpu")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    ran = invoke(["perf", "--gpu-only", "--json"])
    body = json.loads(ran.stdout)
    assert ran.code == 3 and [g["status"] for g in body["data"]["gpus"]] == ["SKIP"] * 4
    assert "CUDA_VISIBLE_DEVICES=''" in body["data"]["gpus"][0]["message"]


def test_hung_driver_is_a_fail_with_the_fix_and_no_child(fake_nvml):
    fake_nvml("hung_driver")
    started = time.perf_counter()
    ran = invoke(["perf", "--gpu-only", "--json", "--nvml-timeout", "0.5"])
    body = json.loads(ran.stdout)
    assert ran.code == 1 and body["status"] == "FAIL"
    assert body["errors"][0].startswith("nvml_not_responding: the NVIDIA driver does not respond")
    assert "nvidia-smi -r" in body["errors"][0]
    assert time.perf_counter() - started < 10  # no GPU child was started on a hung driver


@pytest.mark.parametrize(
    "args, words",
    [
        (["--cpu-only", "--gpu-only"], "exclude each other"),
        (["--devices", "0,x"], "give GPU indices"),
        (["--cpu-only", "--devices", "0"], "makes no sense with --cpu-only"),
        (["--seconds", "nan"], "not a finite number"),
        (["--seconds", "0"], "0.2<=x<=120"),
        (["--plot", "perf.txt"], "give a .png file name"),
        (["--plot", "/proc/perf.png"], "cannot write there"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args, words):
    ran = invoke(["perf", *args])
    assert ran.code == 2 and words in ran.stderr and "Traceback" not in ran.stderr
    assert ran.stdout == ""


def test_ctrl_c_stops_the_child_and_leaves_no_scratch(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.run_dlcheck", "real", "perf", "--cpu-only"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not list(tmp_path.glob("dlcheck-perf-*")) and time.monotonic() < deadline:
        time.sleep(0.1)  # wait until the child runs (its scratch folder exists)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert b"interrupted" in err and b"Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # the scratch folder is gone
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout == ""  # and no child still runs with a file in it


def test_a_child_that_hangs_is_killed_at_its_deadline(monkeypatch):
    monkeypatch.setattr(runner, "CHILD_ARGV", [sys.executable, "-c", "import time; time.sleep(60)"])
    started = time.perf_counter()
    result, problem, pid = runner.run_child({"mode": "cpu"}, timeout=2, cpu_only=True)
    assert time.perf_counter() - started < 15
    assert result == {} and "did not finish within the time limit" in problem
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


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
        assert all(t.status != Status.FAIL for t in measured), [t.message for t in measured]
        assert g.telemetry["loaded_samples"] > 0


def test_closed_stdout_is_quiet_and_keeps_the_exit_code():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.run_dlcheck", "no_library", "perf", "--gpu-only"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    process.stdout.close()  # the reader left before anything was written (`| head -0`)
    err = process.stderr.read()
    assert process.wait(timeout=30) == 3 and err == b""
