"""Verdict rules on measured rows (no children needed)."""

import pytest

from dlcheck.bench import verdicts
from dlcheck.bench.protocol import Outcome
from dlcheck.bench.runner import RunRow


def _row(impl, device, times, accuracy=0.88, placed="cpu", nvml=None):
    outcome = Outcome(impl=impl, device=device, epoch_times=times, train_samples=25000,
                      test_accuracy=accuracy, placed_on=placed)  # fmt: skip
    return RunRow(impl, device, outcome, None, 1.0, None, nvml)


def apply(rows, synthetic, book_config):
    """The judged rows as the JSON shows them, and the speedups."""
    judged, speedups = verdicts.judge(rows, synthetic, book_config)
    rows[:] = [row.to_dict() for row in judged]
    return speedups


GPU_SEEN = {"available": True, "index": 0, "max_utilization_gpu": 35,
            "max_memory_used_mib": 900, "baseline_memory_used_mib": 400}  # fmt: skip


def test_speedup_and_keras_warns_but_never_fails():
    rows = [
        _row("keras", "cpu", [1.0, 1.2, 1.1]),
        _row("keras", "cuda:0", [1.5, 1.6], placed="/device:GPU:0", nvml=GPU_SEEN),
        _row("torch", "cpu", [0.4, 0.5]),
        _row("torch", "cuda:0", [0.01, 0.02, 0.012], placed="cuda:0", nvml=GPU_SEEN),
    ]
    speedups = apply(rows, synthetic=False, book_config=True)
    assert rows[0]["median_epoch_s"] == 1.1 and rows[0]["samples_per_s"] == 25000 / 1.1
    assert round(speedups["keras"], 3) == round(1.1 / 1.55, 3)
    assert round(speedups["torch"], 1) == round(0.45 / 0.012, 1)
    assert rows[1]["verdict"] == "WARN"
    assert "not a broken GPU" in rows[1]["verdicts"]["performance"]["message"]
    assert rows[3]["verdict"] == "PASS"


def test_accuracy_bands():
    real = [_row("torch", "cpu", [1.0], accuracy=0.85)]
    apply(real, synthetic=False, book_config=True)
    assert real[0]["verdicts"]["correctness"]["status"] == "FAIL"
    ok = [_row("torch", "cpu", [1.0], accuracy=0.875)]
    apply(ok, synthetic=False, book_config=True)
    assert ok[0]["verdict"] == "PASS"
    other = [_row("torch", "cpu", [1.0], accuracy=0.75)]  # no band outside the book's config
    apply(other, synthetic=False, book_config=False)
    assert other[0]["verdict"] == "PASS"
    small = [_row("torch", "cpu", [1.0], accuracy=0.5)]  # e.g. --limit 600: nothing to learn
    apply(small, synthetic=True, book_config=False)
    assert small[0]["verdict"] == "WARN"


def test_gpu_run_must_really_use_the_gpu():
    idle = dict(GPU_SEEN, max_utilization_gpu=0, max_memory_used_mib=400)
    rows = [
        _row("torch", "cuda:0", [0.1], placed="cpu", nvml=GPU_SEEN),
        _row("torch", "cuda:0", [0.1], placed="cuda:0", nvml=idle),
        _row("torch", "cuda:0", [0.1], placed="cuda:0", nvml={"available": False, "reason": "x"}),
    ]
    apply(rows, synthetic=True, book_config=True)
    assert [r["verdicts"]["device_used"]["status"] for r in rows] == ["FAIL", "FAIL", "WARN"]


def test_native_gpu_slower_than_cpu_is_a_warning():
    rows = [_row("torch", "cpu", [0.1]),
            _row("torch", "cuda:0", [0.2], placed="cuda:0", nvml=GPU_SEEN)]  # fmt: skip
    apply(rows, synthetic=True, book_config=True)
    assert rows[1]["verdict"] == "WARN"
    assert "expected >= 2x" in rows[1]["verdicts"]["performance"]["message"]


def test_default_threads_leave_busy_cores_alone(monkeypatch):
    from dlcheck.bench import runner

    monkeypatch.setattr(runner, "cpu_threads", lambda: 8)
    assert runner.default_threads(None) == 8
    assert runner.default_threads(0.2) == 8
    assert runner.default_threads(2.6) == 5
    assert runner.default_threads(30.0) == 1


def test_batch_thread_fits_the_thread_budget_every_implementation_gets():
    from dlcheck.bench import runner

    assert runner.batch_thread(2) and runner.batch_thread(8)
    assert not runner.batch_thread(1)  # a busy machine or --threads 1: one thread for all


def test_model_rate_is_dense_flops_over_the_median_epoch_and_set_against_perf():
    from dlcheck.bench.protocol import dense_flops_per_sample
    from dlcheck.commands.bench import _against_perf

    rows = [_row("torch", "cpu", [1.0]), _row("torch", "cuda:0", [0.02], placed="cuda:0",
                                               nvml=GPU_SEEN)]  # fmt: skip
    judged, _ = verdicts.judge(rows, synthetic=True, book_config=True)
    assert dense_flops_per_sample() == 641632  # 16.04 GFLOP an epoch of 25000
    assert judged[1].summary.gflops == pytest.approx(25000 / 0.02 * 641632 / 1e9)
    perf = [{"index": 0, "matmul": {"test": "matmul_bf16", "tflops": 700.0}}]
    (note,) = _against_perf(judged, perf)
    assert "802 GFLOP/s dense-equivalent, 0.11% of the 700,000 GFLOP/s" in note
