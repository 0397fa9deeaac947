"""What every implementation shares: the run spec, initial weights, phase timing."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from dlcheck.children import report_progress

HIDDEN = 16
VALIDATION = 10000  # the book holds out the first 10000 training reviews
BOOK_EPOCHS = 20
RETRAIN_EPOCHS = 4
BATCH_SIZE = 512
LEARNING_RATE = 1e-3  # Keras RMSprop defaults
RHO = 0.9
EPSILON = 1e-7


@dataclass
class Spec:
    """One child's job, passed as JSON."""

    impl: str
    device: str  # "cpu" or "cuda:0"
    prepared: str  # path of the prepared-data npz
    epochs: int = RETRAIN_EPOCHS
    batch_size: int = BATCH_SIZE
    protocol: str = "quick"  # or "book"
    seed: int = 0
    threads: int = 0  # 0: leave the framework's default
    batch_thread: bool = False  # torch-sparse on the CPU: build batches in a second thread
    num_words: int = 10000
    entry: str | None = None  # "module:function" override (tests inject faults here)

    def to_dict(self):
        return asdict(self)


@dataclass
class Outcome:
    """What a child reports back (JSON)."""

    impl: str
    device: str
    backend: str | None = None
    versions: dict = field(default_factory=dict)
    threads: int | None = None
    placed_on: str | None = None  # where the model's weights really live
    gpu_uuid: str | None = None
    phases: dict = field(default_factory=dict)  # seconds per phase
    epoch_times: list = field(default_factory=list)  # timed retrain epochs
    train_samples: int = 0
    history: dict = field(default_factory=dict)  # per-epoch curves
    test_loss: float | None = None
    test_accuracy: float | None = None
    notes: list = field(default_factory=list)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_document(cls, doc: Any) -> Outcome:
        """A child's result document, checked: the fields the verdicts read must have their
        types (ValueError otherwise); unknown keys are dropped."""
        if not isinstance(doc, dict):
            raise ValueError("the result is not a JSON object")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in doc.items() if k in known}
        for key, kind in _OUTCOME_TYPES.items():
            value = values.get(key)
            if value is not None and not isinstance(value, kind):
                raise ValueError(f"{key} is {type(value).__name__}")
        times = values.get("epoch_times") or []
        if not all(isinstance(t, (int, float)) and not isinstance(t, bool) for t in times):
            raise ValueError("epoch_times holds a non-number")
        return cls(**values)


_OUTCOME_TYPES = {
    "impl": str, "device": str, "backend": str, "placed_on": str, "gpu_uuid": str,
    "phases": dict, "epoch_times": list, "train_samples": int, "history": dict,
    "test_accuracy": (int, float), "test_loss": (int, float), "notes": list, "versions": dict,
    "threads": int,
}  # fmt: skip


def dense_flops_per_sample(num_words: int = 10000) -> int:
    """FLOPs one training sample costs the dense network: the forward pass (a multiply and an
    add per weight) and the weight gradients; the first layer needs no input gradient. About
    0.64 MFLOP, so 16 GFLOP an epoch of 25000 reviews. torch-sparse computes the same function
    from word indices with far fewer: its figure is the dense-equivalent rate."""
    weights = num_words * HIDDEN + HIDDEN * HIDDEN + HIDDEN
    input_grads = HIDDEN * HIDDEN + HIDDEN  # layers 2 and 3 pass gradients back; layer 1 does not
    return 2 * weights + 2 * weights + 2 * input_grads


def initial_weights(num_words: int, seed: int) -> list[np.ndarray]:
    """Keras's Dense defaults (glorot_uniform kernels, zero biases), in Keras's layout.

    Every implementation starts from these same arrays, so runs differ only in
    shuffling and floating-point order.
    """
    rng = np.random.RandomState(seed)
    weights = []
    for fan_in, fan_out in ((num_words, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, 1)):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weights.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
        weights.append(np.zeros(fan_out, dtype=np.float32))
    return weights


class Phases:
    """Wall-clock phases, each edge preceded by a device synchronisation."""

    def __init__(self, sync=lambda: None):
        self.sync = sync
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        report_progress(name)
        self.sync()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
