import zipfile
from pathlib import Path

import numpy as np
import pytest


def write_keras_npz(path: Path, n_train=300, n_test=200, seed=0, raw_vocab=20000, drop=()):
    """A small imdb.npz in Keras's layout: object arrays of int lists, integer labels."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for name, n in (("train", n_train), ("test", n_test)):
        x = np.empty(n, dtype=object)
        x[:] = [rng.integers(1, raw_vocab, int(rng.integers(1, 60))).tolist() for _ in range(n)]
        arrays[f"x_{name}"] = x
        arrays[f"y_{name}"] = rng.integers(0, 2, n)
    for name in drop:
        arrays.pop(name)
    np.savez(path, **arrays)
    assert zipfile.is_zipfile(path)
    return path


@pytest.fixture
def small_npz(tmp_path):
    return write_keras_npz(tmp_path / "small.npz")
