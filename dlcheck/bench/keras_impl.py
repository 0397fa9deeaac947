"""The book's code on Keras 3, with whichever backend Keras resolves (KERAS_BACKEND).

This is what a user's everyday Keras code gets: NumPy inputs, `fit` and
`evaluate`, default jit settings. Deliberately not optimised.
"""

from __future__ import annotations

import os
import time

from dlcheck.bench import protocol, vectorise
from dlcheck.bench.data import Dataset
from dlcheck.bench.protocol import Outcome, Phases, Spec
from dlcheck.children import report_progress


def _configure_threads(threads: int) -> None:
    # TF reads these at start-up; set before keras imports the backend.
    if threads:
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def build(num_words: int, weights=None):
    """Listing 4.4 (2nd ed.): Sequential Dense 16 relu / 16 relu / 1 sigmoid, rmsprop, BCE."""
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input(shape=(num_words,)),
            layers.Dense(16, activation="relu"),
            layers.Dense(16, activation="relu"),
            layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.RMSprop(learning_rate=protocol.LEARNING_RATE),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    if weights is not None:
        model.set_weights(weights)
    return model


def forward(weights, x):
    """Sigmoid outputs for dense rows x (numpy); used to compare implementations."""
    model = build(x.shape[1], weights)
    return model.predict(x, verbose=0).reshape(-1)


def _sync_function(backend: str):
    """Block until queued device work is done, for honest timer edges."""
    if backend == "tensorflow":
        import tensorflow as tf

        sync = getattr(getattr(tf.test, "experimental", None), "sync_devices", None)
        return sync or (lambda: None)
    if backend == "torch":
        import torch

        return torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    return lambda: None  # jax: fit/evaluate return host values, which already block


def _device_of(model) -> str:
    value = getattr(model.weights[0], "value", model.weights[0])
    device = getattr(value, "device", None)
    if callable(device):  # jax arrays: .devices() set, .device property in newer versions
        device = device()
    if device is None and hasattr(value, "devices"):
        device = next(iter(value.devices()))
    return str(device)


def _snapshot(model) -> list:
    """Weights and optimizer state (iterations, RMSprop velocities, learning rate)."""
    model.optimizer.build(model.trainable_variables)
    return [v.numpy().copy() for v in model.optimizer.variables]


def _reset(model, weights, optimizer_state) -> None:
    model.set_weights(weights)
    for variable, value in zip(model.optimizer.variables, optimizer_state, strict=True):
        variable.assign(value)


class _EpochClock:
    """Keras callback: synchronised wall time of each epoch."""

    def __new__(cls, sync, label, total):
        import keras

        class Clock(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.times = []

            def on_epoch_begin(self, epoch, logs=None):
                sync()
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                sync()
                self.times.append(time.perf_counter() - self.started)
                report_progress(f"{label} epoch {epoch + 1}/{total}")

        return Clock()


def run(spec: Spec) -> dict:
    _configure_threads(spec.threads)
    # Vectorise before the framework starts: with TensorFlow loaded, filling the
    # 1 GB arrays took 5-8x longer here (its threads compete for the cores).
    vectorise_phase = Phases()
    train, test = Dataset.load_prepared(spec.prepared)
    with vectorise_phase("vectorise"):
        x_train = vectorise.multi_hot(train, spec.num_words)
        x_test = vectorise.multi_hot(test, spec.num_words)
        y_train, y_test = train.labels, test.labels
    import keras

    backend = keras.backend.backend()
    out = Outcome(impl="keras", device=spec.device, backend=backend)
    out.versions = {"keras": keras.__version__}
    if backend == "tensorflow":
        import tensorflow as tf

        out.versions["tensorflow"] = tf.__version__
        if spec.threads:
            try:  # also set through TF_NUM_INTRAOP_THREADS; this fails once TF has started
                tf.config.threading.set_intra_op_parallelism_threads(spec.threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:
                pass
        out.threads = tf.config.threading.get_intra_op_parallelism_threads() or spec.threads
        gpus = tf.config.list_logical_devices("GPU")
        if spec.device.startswith("cuda") and not gpus:
            raise RuntimeError(
                f"TensorFlow {tf.__version__} sees no GPU (a CPU-only build, or CUDA libraries "
                "missing: pip install 'tensorflow[and-cuda]')"
            )
    elif backend == "torch":
        import torch

        out.versions["torch"] = torch.__version__
        if spec.threads:
            torch.set_num_threads(spec.threads)
        out.threads = torch.get_num_threads()
    elif backend == "jax":
        import jax

        out.versions["jax"] = jax.__version__
    keras.utils.set_random_seed(spec.seed)
    sync = _sync_function(backend)
    phases = Phases(sync)

    out.phases.update(vectorise_phase.seconds)
    out.phases["to_device"] = None  # Keras copies each batch from host memory inside fit
    weights = protocol.initial_weights(spec.num_words, spec.seed)
    with phases("build"):
        model = build(spec.num_words, weights)
        optimizer_state = _snapshot(model)
    out.placed_on = _device_of(model)
    bs = spec.batch_size
    with phases("warmup"):  # traces/compiles the train step; then weights are reset
        model.fit(x_train, y_train, epochs=1, batch_size=bs, verbose=0)
    _reset(model, weights, optimizer_state)

    if spec.protocol == "book":
        v = protocol.VALIDATION
        clock = _EpochClock(sync, "book", protocol.BOOK_EPOCHS)
        history = model.fit(
            x_train[v:],
            y_train[v:],
            epochs=protocol.BOOK_EPOCHS,
            batch_size=bs,
            validation_data=(x_train[:v], y_train[:v]),
            callbacks=[clock],
            verbose=0,
        ).history
        out.history["book"] = {
            "loss": history["loss"],
            "accuracy": history["accuracy"],
            "val_loss": history["val_loss"],
            "val_accuracy": history["val_accuracy"],
            "epoch_s": clock.times,
        }
        _reset(model, weights, optimizer_state)

    clock = _EpochClock(sync, "timed", spec.epochs)
    with phases("fit_total"):  # the epochs plus fit's own set-up, for comparison
        history = model.fit(
            x_train, y_train, epochs=spec.epochs, batch_size=bs, callbacks=[clock], verbose=0
        ).history
    out.epoch_times = clock.times
    out.history["retrain"] = {"loss": history["loss"], "accuracy": history["accuracy"]}
    out.train_samples = len(y_train)
    with phases("evaluate"):
        # The book calls evaluate() with Keras's default batch of 32; the batch
        # size does not change the result, only the time, so use the training one.
        out.test_loss, out.test_accuracy = (
            float(v) for v in model.evaluate(x_test, y_test, batch_size=bs, verbose=0)
        )
    out.phases.update(phases.seconds)
    out.notes.append("evaluate() at the training batch size (the book uses the default 32)")
    return out.to_dict()
