"""The IMDB loader: Keras's semantics, hashing, caching, errors; synthetic data; vectorising."""

import http.server
import threading
import time

import numpy as np
import pytest

from dlcheck.bench import data, vectorise
from tests.bench.conftest import write_keras_npz


def test_hash_mismatch_is_a_clear_error(small_npz):
    with pytest.raises(data.DataError, match="sha256 .* does not match"):
        data.load_real(small_npz)  # the small file is not Keras's imdb.npz


def test_truncated_file_is_a_clear_error(small_npz):
    raw = small_npz.read_bytes()
    small_npz.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.DataError, match="unreadable or truncated"):
        data.load_real(small_npz, sha256=data.sha256_of(small_npz))


def test_missing_arrays_are_named(tmp_path):
    path = write_keras_npz(tmp_path / "partial.npz", drop=("x_test", "y_test"))
    with pytest.raises(data.DataError, match="missing arrays x_test, y_test"):
        data.load_real(path, sha256=data.sha256_of(path))


def test_missing_data_file(tmp_path):
    with pytest.raises(data.DataError, match="no such file"):
        data.load_real(tmp_path / "nope.npz")


def test_pickled_code_is_refused(tmp_path):
    """Object arrays need pickle; only numpy's own reconstruction may run."""
    evil = np.empty(2, dtype=object)
    evil[:] = [[1, 2], print]  # a builtin in the pickle stream
    path = tmp_path / "evil.npz"
    np.savez(path, x_train=evil, y_train=np.array([0, 1]), x_test=evil, y_test=np.array([0, 1]))
    with pytest.raises(data.DataError, match="refusing to load builtins.print"):
        data.load_real(path, sha256=data.sha256_of(path))


@pytest.mark.parametrize(
    "options",
    [
        {"num_words": 10000},
        {"num_words": None},
        {"num_words": 500, "skip_top": 20},
        {"num_words": 500, "oov_char": None},
        {"num_words": 800, "start_char": None, "index_from": 5, "seed": 7},
    ],
)
def test_same_result_as_keras_load_data(tmp_path, monkeypatch, options):
    """Our loader and keras.datasets.imdb.load_data read the same cached file identically."""
    keras_home = tmp_path / "keras_home"
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    (keras_home / "datasets").mkdir(parents=True)
    write_keras_npz(data.cache_path(), n_train=300, n_test=200)
    assert data.cache_path() == keras_home / "datasets" / "imdb.npz"

    from keras.src.datasets import imdb
    from keras.src.utils import file_utils

    asked = []

    def get_file_without_hash(fname, origin, file_hash):
        # Keras resolves the cache path itself; only the hash of Keras's real file is skipped.
        asked.append((origin, file_hash))
        # cache_dir: Keras reads KERAS_HOME once, at import, and another test may import it first
        return file_utils.get_file(fname=fname, origin=origin, cache_dir=str(keras_home))

    monkeypatch.setattr(imdb, "get_file", get_file_without_hash)
    (kx_train, ky_train), (kx_test, ky_test) = imdb.load_data(**options)
    assert asked == [(data.ORIGIN, data.SHA256)]  # same origin and hash as ours

    sha = data.sha256_of(data.cache_path())
    ours = data.load_real(sha256=sha, allow_download=False, **options)
    pairs = ((kx_train, ky_train, ours.train), (kx_test, ky_test, ours.test))
    for keras_x, keras_y, split in pairs:
        assert split.to_lists().tolist() == keras_x.tolist()
        np.testing.assert_array_equal(split.labels, keras_y)


class _Server:
    """A real local HTTP server standing in for storage.googleapis.com (no network here)."""

    def __init__(self, body: bytes, truncate_to: int | None = None):
        payload = body

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[:truncate_to] if truncate_to else payload)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/imdb.npz"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_corrupt_cache_is_replaced_by_a_verified_download(tmp_path, monkeypatch, small_npz):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    good = small_npz.read_bytes()
    cached = data.cache_path()
    cached.parent.mkdir(parents=True)
    cached.write_bytes(good[:100])  # a partial earlier download
    server = _Server(good)
    monkeypatch.setattr(data, "ORIGIN", server.url)
    try:
        path = data.ensure_file(sha256=data.sha256_of(small_npz))
    finally:
        server.close()
    assert path == cached and cached.read_bytes() == good
    assert list(cached.parent.iterdir()) == [cached]  # no temp files left behind


def test_partial_download_is_never_written(tmp_path, monkeypatch, small_npz):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    good = small_npz.read_bytes()
    server = _Server(good, truncate_to=len(good) // 3)
    monkeypatch.setattr(data, "ORIGIN", server.url)
    waits = []
    monkeypatch.setattr(data.time, "sleep", waits.append)  # no back-off waits in the test
    try:
        with pytest.raises(data.DataError, match="could not download"):
            data.ensure_file(sha256=data.sha256_of(small_npz))
    finally:
        server.close()
    assert len(waits) == 2  # three attempts: a short read may heal on retry
    assert not data.cache_path().exists()
    assert list(data.cache_path().parent.iterdir()) == []


def test_no_network_fails_fast_without_retries(tmp_path, monkeypatch):
    waits = []
    monkeypatch.setattr(data.time, "sleep", waits.append)
    started = time.monotonic()
    with pytest.raises(data.DataError, match="could not download"):
        data.download("http://imdb.invalid/imdb.npz", tmp_path / "x.npz", data.SHA256)
    assert time.monotonic() - started < 10
    assert waits == []  # a DNS failure is final: no back-off, no second attempt


def test_synthetic_is_deterministic_and_imdb_shaped():
    a = data.synthetic(2000, 1000, seed=3)
    b = data.synthetic(2000, 1000, seed=3)
    c = data.synthetic(2000, 1000, seed=4)
    np.testing.assert_array_equal(a.train.indices, b.train.indices)
    np.testing.assert_array_equal(a.test.labels, b.test.labels)
    assert not np.array_equal(a.train.indices[:1000], c.train.indices[:1000])
    assert a.synthetic and a.name == "synthetic-imdb" and a.sha256 is None
    assert len(a.train) == 2000 and len(a.test) == 1000
    assert a.train.labels.mean() == 0.5  # balanced
    starts = a.train.indices[a.train.offsets[:-1]]
    assert (starts == data.START_CHAR).all()
    assert a.train.indices.max() == 9999 and a.train.indices.min() >= 1
    assert 200 < a.train.lengths().mean() < 280  # IMDB: 238.7
    assert 0.05 < (a.train.indices == data.OOV_CHAR).mean() < 0.3


def test_vectorise_matches_the_books_loop(small_npz):
    train, _ = data.preprocess(data.read_npz(small_npz))
    expected = np.zeros((len(train), 10000))
    for i, sequence in enumerate(train.to_lists()):  # the book's vectorize_sequences
        expected[i, sequence] = 1.0
    dense = vectorise.multi_hot(train)
    assert dense.dtype == np.float32
    np.testing.assert_array_equal(dense, expected)
    words, offsets = vectorise.distinct_words(train)
    rows, cols = np.nonzero(expected)
    np.testing.assert_array_equal(words, cols)
    np.testing.assert_array_equal(np.diff(offsets), np.bincount(rows, minlength=len(train)))
