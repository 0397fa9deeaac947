"""Verdicts and causes: on recorded runs (tests/perf/samples) and on live telemetry read
through the fake NVML (tests/fakes/nvml.py scenarios)."""

import json
from pathlib import Path

import pytest

from dlcheck import gpu
from dlcheck.models import Status
from dlcheck.perf import verdicts
from dlcheck.perf.telemetry import Telemetry

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml

SAMPLES = Path(__file__).parent / "samples"


def replay(name):
    run = json.loads((SAMPLES / f"{name}.json").read_text())
    return verdicts.judge_gpu(
        run["index"], run["identity"], run["tests"], run["telemetry"], set(run["own_pids"])
    )


def statuses(result):
    return {t.name: t.status for t in result.tests}


def test_judge_bands():
    assert verdicts.judge(75, 100) == Status.PASS
    assert verdicts.judge(74.9, 100) == Status.WARN
    assert verdicts.judge(50, 100) == Status.WARN
    assert verdicts.judge(49.9, 100) == Status.FAIL
    assert verdicts.judge(10, 100, warn_only=True) == Status.WARN
    assert verdicts.judge(10, None) == Status.INFO
    assert verdicts.judge(None, 100) == Status.FAIL


def test_healthy_card_passes_with_no_warning_cause():
    g = replay("healthy_h100_sxm")
    assert g.status == Status.PASS
    assert set(statuses(g).values()) == {Status.PASS}
    assert g.sku["key"] == "h100-sxm"
    assert [c for c in g.causes if c.status == Status.WARN] == []
    assert g.message.startswith("as fast as its datasheet says: bf16 731 TFLOP/s")
    assert g.telemetry["loaded_samples"] > 40 and g.telemetry["pcie_width_under_load"] == 16


def test_throttled_card_names_thermal_slowdown():
    g = replay("throttled_rtx4090")
    assert g.status == Status.FAIL
    assert statuses(g)["matmul_bf16"] == Status.FAIL
    assert statuses(g)["memory_copy"] == Status.PASS  # memory-bound work barely throttles
    first = g.causes[0]
    assert (first.code, first.status) == ("thermal_slowdown", Status.WARN)
    assert "89 C" in first.message and "airflow" in first.fix
    assert "likely cause: thermal slowdown" in g.message
    assert g.telemetry["reasons"]["sw_thermal_slowdown"] > 0.5


def test_x8_link_names_the_link_and_only_transfers_suffer():
    g = replay("x8_link_a100_pcie")
    assert g.status == Status.FAIL
    bad = {name for name, status in statuses(g).items() if status in (Status.WARN, Status.FAIL)}
    assert bad == {"h2d_pinned", "d2h_pinned", "h2d_pageable", "d2h_pageable"}
    assert statuses(g)["h2d_pageable"] == Status.WARN  # pageable copies never FAIL
    assert statuses(g)["matmul_fp8"] == Status.SKIP  # A100: no FP8 tensor cores
    first = g.causes[0]
    assert first.code == "pcie_width_reduced" and first.status == Status.WARN
    assert "x8" in first.message and "x16" in first.message and "reseat" in first.fix


def test_power_capped_card_names_the_limit_with_a_pasteable_fix():
    g = replay("power_capped_l40s")
    assert g.status == Status.WARN
    first = g.causes[0]
    assert first.code == "power_limit_lowered"
    assert first.fix == "sudo nvidia-smi -i 0 -pl 350"
    assert first.evidence["enforced.power.limit"] == 200.0
    # Persistence mode off is reported, but as INFO: it does not explain slow math.
    persistence = next(c for c in g.causes if c.code == "persistence_off")
    assert persistence.status == Status.INFO


def test_wrong_results_fail_even_when_fast():
    run = json.loads((SAMPLES / "healthy_h100_sxm.json").read_text())
    bf16 = next(t for t in run["tests"] if t["name"] == "matmul_bf16")
    bf16["detail"].update(correct=False, relative_error=0.8)
    g = verdicts.judge_gpu(0, run["identity"], run["tests"], run["telemetry"], {4242})
    assert statuses(g)["matmul_bf16"] == Status.FAIL and g.status == Status.FAIL
    assert "wrong results" in next(t.message for t in g.tests if t.name == "matmul_bf16")


def test_another_process_on_the_gpu_is_named():
    run = json.loads((SAMPLES / "throttled_rtx4090.json").read_text())
    run["telemetry"]["processes"]["0"].append(
        {"pid": 777, "process_name": "miner", "used_memory": 9000}
    )
    g = verdicts.judge_gpu(0, run["identity"], run["tests"], run["telemetry"], {4242})
    other = next(c for c in g.causes if c.code == "other_process")
    assert other.status == Status.WARN and "777 (miner)" in other.message
    assert "4242" not in other.message  # our own child is not "another process"


def test_unknown_gpu_reports_raw_numbers():
    run = json.loads((SAMPLES / "healthy_h100_sxm.json").read_text())
    run["telemetry"]["static"]["0"].update({"name": "NVIDIA B9000", "pci.device_id": "0xffff"})
    g = verdicts.judge_gpu(0, {}, run["tests"], run["telemetry"], {4242})
    assert g.sku is None and g.status == Status.INFO
    assert {t.status for t in g.tests} <= {Status.INFO, Status.SKIP}
    assert "add it to dlcheck/perf/skus.json" in g.message


# --- live telemetry through the fake NVML ------------------------------------------------


def sampled(fake_nvml, scenario, count=4):
    """Telemetry for GPU 0 of a fake scenario: snapshot + `count` samples at t = 10, 11, ..."""
    fake_nvml(scenario)
    ticks = iter(range(10, 10 + count))
    tel = Telemetry([0], clock=lambda: float(next(ticks)))
    tel.snapshot(gpu.collect(show_ids=True).gpus)
    for _ in range(count):
        assert tel.sample_once()
    return tel.to_dict()


def raw(name, kind, unit, measured):
    return {"name": name, "kind": kind, "unit": unit, "median": measured, "low": measured,
            "high": measured, "repeats": 5, "error": None,
            "detail": {"started": 9.5, "ended": 20.0}}  # fmt: skip


SLOW_MATH = [raw("matmul_bf16", "matmul", "TFLOP/s", 300.0)]  # H100 PCIe expects ~530
SLOW_COPY = [raw("h2d_pinned", "transfer", "GB/s", 24.0)]  # gen5 x16 expects ~50


@pytest.mark.parametrize(
    "scenario, tests, cause",
    [
        ("power_capped", SLOW_MATH, "power_limit_lowered"),
        ("throttled_loaded", SLOW_MATH, "thermal_slowdown"),
        ("pcie_x8_loaded", SLOW_COPY, "pcie_width_reduced"),
    ],
)
def test_fake_scenarios_name_the_cause(fake_nvml, scenario, tests, cause):
    record = sampled(fake_nvml, scenario)
    static = record["static"]["0"]
    assert static["pci.device_id"] == "0x2331"
    g = verdicts.judge_gpu(0, {}, tests, record, own_pids=set())
    assert g.sku["key"] == "h100-pcie"
    assert g.status in (Status.WARN, Status.FAIL)
    assert g.causes[0].code == cause and g.causes[0].status == Status.WARN
    assert g.causes[0].fix


def test_fake_healthy_card_under_load_has_no_cause(fake_nvml):
    record = sampled(fake_nvml, "loaded_healthy")
    fast = [raw("matmul_bf16", "matmul", "TFLOP/s", 560.0)]
    g = verdicts.judge_gpu(0, {}, fast, record, own_pids=set())
    assert g.status == Status.PASS and g.causes == []
    assert g.telemetry["loaded_samples"] == 4
    assert g.telemetry["pcie_gen_under_load"] == 5 and g.telemetry["pcie_width_under_load"] == 16


def test_sampling_stops_cleanly_when_the_gpu_is_lost(fake_nvml):
    fake = fake_nvml("healthy_single")
    tel = Telemetry([0], clock=lambda: 1.0)
    tel.snapshot(gpu.collect(show_ids=True).gpus)
    assert tel.sample_once()
    fake.scenario["device_errors"] = {0: {"*": "NVML_ERROR_GPU_IS_LOST"}}
    assert not tel.sample_once()
    assert "NVML sampling stopped" in tel.error
    assert len(tel.to_dict()["samples"]["0"]) == 1  # what was read before stays


# --- the CPU -----------------------------------------------------------------------------


def cpu_record(**changes):
    from dlcheck.perf.records import CpuPerf

    base = dict(model="AMD EPYC", cores=2, threads=2, frequency_mhz=2596.0,
                frequency_source="cpu MHz", vector_isa="avx512f", flops_per_cycle_fp32=32,
                peak_gflops_fp32=166.1, peak_gflops_fp64=83.1)  # fmt: skip
    return CpuPerf(**{**base, **changes})


CHILD = {
    "tests": [
        {"name": "gemm_fp32_numpy", "kind": "gemm", "unit": "GFLOP/s", "median": 58.0,
         "low": 40.0, "high": 70.0, "repeats": 9, "detail": {"n": 2048}},
        {"name": "gemm_fp64_numpy", "kind": "gemm", "unit": "GFLOP/s", "median": 101.0,
         "low": 90.0, "high": 104.0, "repeats": 9, "detail": {"n": 2048}},
        {"name": "memory_copy_numpy", "kind": "memory", "unit": "GB/s", "median": 27.0,
         "low": 20.0, "high": 28.0, "repeats": 50, "detail": {}},
    ],
    "software": {"numpy": "2.4.6", "numpy_blas": "scipy-openblas 0.3.31", "torch": None},
}  # fmt: skip


def test_cpu_busy_machine_warns_and_says_why():
    load = {"others_share": 0.62, "steal_share": 0.08, "loadavg_1m": 2.4912, "thread_env": {}}
    cpu = verdicts.judge_cpu(cpu_record(), CHILD, load)
    tests = {t.name: t for t in cpu.tests}
    assert tests["gemm_fp32_numpy"].status == Status.WARN  # 58/166 = 35%: never FAIL on a CPU
    assert tests["gemm_fp64_numpy"].status == Status.PASS
    assert "above it" in tests["gemm_fp64_numpy"].message  # 101 > 83: the clock read is low
    assert tests["memory_copy_numpy"].status == Status.INFO
    assert [c.code for c in cpu.causes] == ["cpu_busy", "cpu_steal"]
    assert all(c.status == Status.WARN for c in cpu.causes)
    assert "62%" in cpu.causes[0].message and "2.49" in cpu.causes[0].message
    assert cpu.status == Status.WARN and "35% of the computed 166" in cpu.message


def test_cpu_configuration_causes():
    load = {
        "others_share": 0.0,
        "steal_share": 0.0,
        "loadavg_1m": 0.1,
        "governor": "powersave",
        "quota_cpus": 1.0,
        "thread_env": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "8"},
    }
    child = {**CHILD, "software": {**CHILD["software"], "numpy_blas": "blas 3.11"}}
    cpu = verdicts.judge_cpu(cpu_record(), child, load)
    codes = {c.code: c for c in cpu.causes}
    assert set(codes) == {"cpu_quota", "cpu_governor", "cpu_threads", "reference_blas"}
    assert codes["cpu_threads"].evidence["thread_env"] == {"OMP_NUM_THREADS": "1"}
    assert codes["cpu_governor"].fix == "sudo cpupower frequency-set -g performance"


def test_cpu_child_error_is_reported_not_raised():
    cpu = verdicts.judge_cpu(cpu_record(), {"error": "MemoryError: "}, {})
    assert cpu.status == Status.WARN and cpu.error == "MemoryError: " and cpu.tests == []
