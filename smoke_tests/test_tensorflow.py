"""TensorFlow and Keras: see every GPU and compute correctly on each."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def tf(require_framework):
    tf = require_framework("tensorflow")
    for gpu in tf.config.list_physical_devices("GPU"):
        # Without this TF takes nearly all GPU memory and the next framework in this process OOMs.
        tf.config.experimental.set_memory_growth(gpu, True)
    return tf


def test_cpu_matmul_matches_numpy(tf):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 128)).astype("float32")
    b = rng.standard_normal((128, 64)).astype("float32")
    with tf.device("/CPU:0"):
        got = tf.linalg.matmul(a, b).numpy()
    np.testing.assert_allclose(got, a @ b, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
def test_tensorflow_sees_every_gpu(tf, gpu_count):
    gpus = tf.config.list_physical_devices("GPU")
    built = tf.sysconfig.get_build_info()
    assert len(gpus) == gpu_count, (
        f"TF {tf.__version__} (CUDA {built.get('cuda_version')}, "
        f"cuDNN {built.get('cudnn_version')}) "
        f"sees {len(gpus)} of {gpu_count} GPUs; install tensorflow[and-cuda]"
    )


def gpu_names(tf):
    return [f"/GPU:{i}" for i in range(len(tf.config.list_physical_devices("GPU")))]


@pytest.mark.gpu
def test_matmul_on_each_gpu_matches_cpu(tf):
    tf.config.experimental.enable_tensor_float_32_execution(False)
    rng = np.random.default_rng(0)
    a = rng.standard_normal((1024, 512)).astype("float32")
    b = rng.standard_normal((512, 256)).astype("float32")
    for name in gpu_names(tf):
        with tf.device(name):
            got = tf.linalg.matmul(a, b)
        assert "GPU" in got.device, f"matmul ran on {got.device}, not {name}"
        np.testing.assert_allclose(got.numpy(), a @ b, rtol=1e-3, atol=1e-3, err_msg=name)


@pytest.mark.gpu
def test_cudnn_convolution_on_each_gpu_matches_cpu(tf):
    rng = np.random.default_rng(0)
    images = rng.standard_normal((8, 32, 32, 3)).astype("float32")
    kernel = rng.standard_normal((3, 3, 3, 16)).astype("float32")
    with tf.device("/CPU:0"):
        expected = tf.nn.conv2d(images, kernel, strides=1, padding="SAME").numpy()
    for name in gpu_names(tf):
        with tf.device(name):
            got = tf.nn.conv2d(images, kernel, strides=1, padding="SAME")
        assert "GPU" in got.device
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-3, atol=1e-3, err_msg=name)


@pytest.mark.gpu
def test_keras_mixed_precision_step_on_gpu(tf):
    import keras

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras.Sequential(
            [keras.Input((64,)), keras.layers.Dense(64, activation="relu"), keras.layers.Dense(1)]
        )
        model.compile(optimizer="sgd", loss="mse")
        assert model.layers[0].compute_dtype == "float16"
        rng = np.random.default_rng(0)
        x = rng.standard_normal((256, 64)).astype("float32")
        y = rng.standard_normal((256, 1)).astype("float32")
        with tf.device("/GPU:0"):
            history = model.fit(x, y, epochs=3, batch_size=64, verbose=0).history["loss"]
        assert np.all(np.isfinite(history)) and history[-1] < history[0], history
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_keras_imports_with_a_backend(require_framework):
    keras = require_framework("keras")
    assert int(keras.__version__.split(".")[0]) >= 3, f"Keras {keras.__version__}; want Keras 3"
    assert keras.backend.backend() in ("tensorflow", "torch", "jax")
