"""IMDB reviews as Keras ships them, or an IMDB-shaped synthetic stand-in.

The real path reproduces `keras.datasets.imdb.load_data` exactly (same file,
hash, cache folder, shuffle and re-indexing) but keeps the result as flat
arrays (CSR: `indices` + `offsets`) so nothing later loops over reviews in
Python. `Split.to_lists()` gives Keras's object arrays back for comparison.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import itertools
import os
import pickle
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlcheck.system import folder_problem

ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"
SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
FILE_NAME = "imdb.npz"
ARRAYS = ("x_train", "y_train", "x_test", "y_test")

NUM_WORDS = 10000
SEED = 113
START_CHAR = 1
OOV_CHAR = 2
INDEX_FROM = 3


class DataError(Exception):
    """The data set cannot be used; the message says why and what to do."""


@dataclass
class Split:
    """Reviews as one flat index array; review i is indices[offsets[i]:offsets[i+1]]."""

    indices: np.ndarray  # int32 word indices
    offsets: np.ndarray  # int64, len(reviews) + 1
    labels: np.ndarray  # float32 0/1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def to_lists(self) -> np.ndarray:
        """Keras's layout: an object array of Python lists (for tests and comparisons)."""
        pieces = np.split(self.indices, self.offsets[1:-1])
        out = np.empty(len(pieces), dtype=object)
        out[:] = [p.tolist() for p in pieces]
        return out

    def head(self, n: int) -> Split:
        end = self.offsets[n]
        return Split(
            self.indices[:end].copy(), self.offsets[: n + 1].copy(), self.labels[:n].copy()
        )


@dataclass
class Dataset:
    train: Split
    test: Split
    synthetic: bool
    name: str  # "imdb" or "synthetic-imdb"
    source: str  # file path, or "synthetic (seed N)"
    sha256: str | None
    num_words: int
    seconds: float = 0.0  # time to acquire and prepare

    def save(self, path: Path) -> None:
        """Numeric-only cache the benchmark children load (no pickle)."""
        np.savez(
            path,
            train_indices=self.train.indices,
            train_offsets=self.train.offsets,
            train_labels=self.train.labels,
            test_indices=self.test.indices,
            test_offsets=self.test.offsets,
            test_labels=self.test.labels,
        )

    @staticmethod
    def load_prepared(path: Path) -> tuple[Split, Split]:
        with np.load(path, allow_pickle=False) as f:
            train = Split(f["train_indices"], f["train_offsets"], f["train_labels"])
            test = Split(f["test_indices"], f["test_offsets"], f["test_labels"])
        return train, test


# ---------------------------------------------------------------- the file


def keras_home() -> Path:
    """Keras's own rule: $KERAS_HOME, else ~/.keras (temp dir if home is not writable)."""
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"])
    base = Path(os.path.expanduser("~"))
    if not os.access(base, os.W_OK):
        base = Path(tempfile.gettempdir())
    return base / ".keras"


def cache_path() -> Path:
    return keras_home() / "datasets" / FILE_NAME


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def download(
    url: str, dest: Path, sha256: str, *, retries: int = 3, timeout: float = 5.0, progress=True
) -> None:
    """Fetch url to dest atomically: a temp file beside it, verified, then renamed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    last_error = "unknown error"
    for attempt in range(1, retries + 1):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                total = int(resp.headers.get("Content-Length") or 0)
                _copy_with_progress(resp, out, total, progress)
            got = sha256_of(tmp)
            if got != sha256:
                raise DataError(f"downloaded {url} has sha256 {got}, expected {sha256}")
            os.replace(tmp, dest)
            return
        except (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError) as error:
            last_error = str(getattr(error, "reason", error))
            if _is_offline_error(error):  # no DNS / no route will not heal by retrying
                break
        except DataError as error:
            last_error = str(error)
        finally:
            tmp.unlink(missing_ok=True)
        if attempt < retries:
            time.sleep(min(2**attempt, 8) * 0.5)
    raise DataError(f"could not download {url}: {last_error}")


def _is_offline_error(error: Exception) -> bool:
    text = str(getattr(error, "reason", error)).lower()
    return any(
        word in text
        for word in (
            "name or service not known",
            "temporary failure in name resolution",
            "network is unreachable",
            "no route to host",
            "connection refused",
            "nodename nor servname",
        )
    )


def _copy_with_progress(resp, out, total: int, progress: bool) -> None:
    done = 0
    last_shown = 0.0
    while chunk := resp.read(1 << 16):
        out.write(chunk)
        done += len(chunk)
        now = time.monotonic()
        if progress and now - last_shown > 0.5:
            last_shown = now
            share = f" {100 * done / total:5.1f}%" if total else ""
            print(
                f"\rbench: downloading imdb.npz {done / 1e6:6.1f} MB{share}",
                end="",
                file=sys.stderr,
                flush=True,
            )
    if progress:
        print(f"\rbench: downloaded imdb.npz {done / 1e6:6.1f} MB        ", file=sys.stderr)


def ensure_file(
    path: Path | None = None, *, sha256: str | None = None, allow_download=True
) -> Path:
    """A verified imdb.npz: the given file, else Keras's cache (downloading if needed).

    A cached file with the wrong hash (partial, corrupt) is replaced, never used.
    """
    sha256 = sha256 or SHA256
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"--data {path}: no such file")
        got = _sha256_or_error(path)
        if got != sha256:
            raise DataError(
                f"{path}: sha256 {got} does not match Keras's imdb.npz ({sha256}); "
                f"fetch it again from {ORIGIN}"
            )
        return path
    cached = cache_path()
    if cached.is_file():
        if _sha256_or_error(cached) == sha256:
            return cached
        _log(f"{cached} is corrupt or partial (sha256 mismatch); replacing it")
    if not allow_download:
        raise DataError(f"{cached} is missing and downloads are off")
    problem = folder_problem(cached.parent)
    if problem:
        raise DataError(
            f"the dataset cache cannot be used: {problem} "
            "(point KERAS_HOME at a writable folder)"
        )
    download(ORIGIN, cached, sha256)
    return cached


def _sha256_or_error(path: Path) -> str:
    try:
        return sha256_of(path)
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None


# ---------------------------------------------------------------- reading


_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
}


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Object arrays need pickle; allow only numpy's reconstruction (as Keras does)."""

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data set")


def _read_member(raw: bytes) -> np.ndarray:
    fp = io.BytesIO(raw)
    try:
        return np.lib.format.read_array(fp, allow_pickle=False)
    except ValueError:
        fp.seek(0)
        version = np.lib.format.read_magic(fp)
        if version[0] == 1:
            np.lib.format.read_array_header_1_0(fp)
        else:
            np.lib.format.read_array_header_2_0(fp)
        return _NumpyOnlyUnpickler(fp).load()


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """The four arrays of a Keras-layout imdb.npz; DataError names what is wrong."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = {n.removesuffix(".npy"): n for n in archive.namelist()}
            missing = [a for a in ARRAYS if a not in names]
            if missing:
                raise DataError(
                    f"{path}: not a Keras IMDB file, missing arrays {', '.join(missing)}"
                )
            arrays = {a: _read_member(archive.read(names[a])) for a in ARRAYS}
    except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, ValueError, OSError) as error:
        raise DataError(f"{path}: unreadable or truncated npz ({error})") from None
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 1 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{path}: x_{split} and y_{split} do not pair up")
    return arrays


def _flatten(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(r) for r in x), dtype=np.int64, count=len(x))
    offsets = np.zeros(len(x) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.fromiter(itertools.chain.from_iterable(x), dtype=np.int64, count=int(offsets[-1]))
    return flat, offsets


def _take_rows(flat: np.ndarray, offsets: np.ndarray, order: np.ndarray):
    """Rows `order` of a CSR split, without a Python loop."""
    lengths = np.diff(offsets)[order]
    new_offsets = np.zeros(len(order) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    shift = np.repeat(offsets[:-1][order] - new_offsets[:-1], lengths)
    return flat[np.arange(new_offsets[-1]) + shift], new_offsets


def preprocess(arrays: dict[str, np.ndarray], **options) -> tuple[Split, Split]:
    """keras.datasets.imdb.load_data's steps on the four arrays of an imdb.npz."""
    flat = {}
    for name in ("train", "test"):
        flat[name] = (*_flatten(arrays[f"x_{name}"]), np.asarray(arrays[f"y_{name}"]))
    return preprocess_flat(flat, **options)


def preprocess_flat(
    raw: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    *,
    num_words: int | None = NUM_WORDS,
    skip_top: int = 0,
    seed: int = SEED,
    start_char: int | None = START_CHAR,
    oov_char: int | None = OOV_CHAR,
    index_from: int = INDEX_FROM,
) -> tuple[Split, Split]:
    """load_data's semantics (maxlen=None) on CSR splits {name: (flat, offsets, labels)}."""
    rng = np.random.RandomState(seed)  # one generator: train shuffle, then test shuffle
    splits = []
    for name in ("train", "test"):
        flat, offsets, y = raw[name]
        order = np.arange(len(offsets) - 1)
        rng.shuffle(order)
        flat, offsets = _take_rows(flat, offsets, order)
        splits.append((flat.astype(np.int64) + index_from, offsets, y[order]))
    if start_char is not None:  # prepend start_char to every review
        new = []
        for flat, offsets, y in splits:
            n = len(offsets) - 1
            starts = offsets[:-1] + np.arange(n)  # where each review begins after insertion
            out = np.empty(len(flat) + n, dtype=np.int64)
            mask = np.ones(len(out), dtype=bool)
            mask[starts] = False
            out[starts] = start_char
            out[mask] = flat
            new.append((out, offsets + np.arange(n + 1), y))
        splits = new
    if not num_words:
        num_words = int(max((f.max() for f, _, _ in splits if len(f)), default=0))
    result = []
    for flat, offsets, y in splits:
        keep = (flat >= skip_top) & (flat < num_words)
        if oov_char is not None:
            flat = np.where(keep, flat, oov_char)
        else:  # drop out-of-range words and shrink the offsets to match
            kept_before = np.concatenate([[0], np.cumsum(keep)])
            flat, offsets = flat[keep], kept_before[offsets]
        result.append(Split(flat.astype(np.int32), offsets.astype(np.int64), y.astype(np.float32)))
    return result[0], result[1]


def load_real(
    path: Path | None = None, *, sha256: str | None = None, allow_download=True, **options
) -> Dataset:
    started = time.perf_counter()
    file = ensure_file(path, sha256=sha256, allow_download=allow_download)
    train, test = preprocess(read_npz(file), **options)
    return Dataset(
        train,
        test,
        synthetic=False,
        name="imdb",
        source=str(file),
        sha256=sha256 or SHA256,  # ensure_file verified the file against it
        num_words=options.get("num_words", NUM_WORDS),
        seconds=time.perf_counter() - started,
    )


# ---------------------------------------------------------------- synthetic

RAW_VOCAB = 88584  # distinct words in the real raw file
SIGNAL_WORDS = 500  # per polarity
SIGNAL_SHARE = 0.025  # share of a review's tokens drawn from its polarity's words


def synthetic(
    n_train: int = 25000, n_test: int = 25000, seed: int = 0, signal: float = SIGNAL_SHARE
) -> Dataset:
    """IMDB-shaped reviews: Zipf word ranks, log-normal lengths, balanced labels.

    Each review is written in the raw file's rank space and then preprocessed
    exactly as the real file is, so OOV and start tokens look like IMDB's. The
    sentiment signal: a `signal` share of each review's tokens come from 500
    "positive" or 500 "negative" words (ranks 50..5000), so the network can learn
    it; the rest is label-independent Zipf noise.
    """
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, RAW_VOCAB + 1, dtype=np.float64)
    cdf = np.cumsum(1.0 / ranks)
    cdf /= cdf[-1]
    pool = rng.permutation(np.arange(50, 5000))[: 2 * SIGNAL_WORDS]
    polar = (pool[:SIGNAL_WORDS], pool[SIGNAL_WORDS:])  # negative, positive word ranks
    raw = {}
    for name, n in (("train", n_train), ("test", n_test)):
        labels = rng.permutation(np.arange(n) % 2)  # exactly balanced
        # IMDB: mean 238 tokens with the start token, long right tail, max ~2500.
        lengths = np.clip(rng.lognormal(5.2, 0.75, n).astype(np.int64), 10, 2493)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        total = int(offsets[-1])
        words = np.searchsorted(cdf, rng.random(total)).astype(np.int64) + 1  # raw ranks from 1
        row = np.repeat(np.arange(n), lengths)
        planted = rng.random(total) < signal
        choice = rng.integers(0, SIGNAL_WORDS, total)
        polar_word = np.where(labels[row] == 1, polar[1][choice], polar[0][choice])
        raw[name] = (np.where(planted, polar_word, words), offsets, labels.astype(np.int64))
    train, test = preprocess_flat(raw)
    return Dataset(
        train,
        test,
        synthetic=True,
        name="synthetic-imdb",
        source=f"synthetic (seed {seed}, signal {signal})",
        sha256=None,
        num_words=NUM_WORDS,
        seconds=time.perf_counter() - started,
    )
