"""Children: a small real run of each implementation, and faults that become FAIL rows."""

import pytest

from dlcheck.bench import data, runner, verdicts
from dlcheck.bench.protocol import Spec


@pytest.fixture(scope="module")
def tiny():
    return data.synthetic(n_train=400, n_test=300, seed=2)


def _spec(impl, **extra):
    options = dict(impl=impl, device="cpu", prepared="", epochs=2, batch_size=64, threads=1)
    options.update(extra)
    return Spec(**options)


def test_each_implementation_runs_end_to_end_on_the_cpu(tiny):
    rows = runner.run_all(tiny, [_spec(i) for i in ("keras", "torch", "torch-sparse")], 300)
    for row in rows:
        assert row.error is None, row.log_tail
        out = row.outcome
        assert len(out.epoch_times) == 2 and all(t > 0 for t in out.epoch_times)
        assert out.train_samples == 400
        assert 0.0 <= out.test_accuracy <= 1.0
        assert "cpu" in out.placed_on.lower()
        losses = out.history["retrain"]["loss"]
        assert losses[1] < losses[0]  # it trains
        for phase in ("vectorise", "build", "warmup", "evaluate"):
            assert phase in out.phases
    keras, torch, sparse = (row.outcome for row in rows)
    assert keras.backend in ("tensorflow", "torch", "jax")
    # Same initial weights and math: dense and sparse torch differ only in summation order.
    assert abs(torch.test_accuracy - sparse.test_accuracy) <= 0.02
    judged, speedups = verdicts.judge(rows, synthetic=True, book_config=False)
    assert speedups == {"keras": None, "torch": None, "torch-sparse": None}
    assert all(r.verdicts["device_used"].status.value == "PASS" for r in judged)


def test_torch_sparse_with_its_batch_thread_matches_without(tiny):
    """The second thread builds the same batches: same losses and accuracy as building in turn."""
    plain, threaded = runner.run_all(
        tiny, [_spec("torch-sparse"), _spec("torch-sparse", threads=2, batch_thread=True)], 300
    )
    assert plain.error is None and threaded.error is None, threaded.log_tail
    plain, threaded = plain.outcome, threaded.outcome
    assert threaded.threads == 2 and plain.threads == 1
    assert any("second thread" in note for note in threaded.notes)
    assert threaded.history["retrain"]["loss"] == pytest.approx(
        plain.history["retrain"]["loss"], abs=1e-6
    )
    assert threaded.test_accuracy == plain.test_accuracy


@pytest.mark.parametrize(
    "entry, timeout, expected",
    [
        ("tests.bench.faulty:crash", 60, "killed by SIGKILL (out of memory?)"),
        ("tests.bench.faulty:hang", 3, "did not finish within the time limit (3 s)"),
        ("tests.bench.faulty:fail", 60, "RuntimeError: CUDA error: out of memory (simulated)"),
    ],
)
def test_a_failing_child_is_a_failed_row_not_a_failed_run(tiny, entry, timeout, expected):
    # After a crash the next child still runs (a hang's timeout is too short for one).
    follow = [] if "hang" in entry else [_spec("torch-sparse", epochs=1)]
    rows = runner.run_all(tiny, [_spec("torch", entry=entry), *follow], timeout)
    assert expected in rows[0].error
    judged, _ = verdicts.judge(rows, synthetic=True, book_config=False)
    assert judged[0].verdict.value == "FAIL" and judged[0].summary.median_epoch_s is None
    for row in rows[1:]:
        assert row.error is None and row.outcome.test_accuracy is not None
