"""`dlcheck bench` as a user runs it: usage errors, JSON contract, plot, table."""

import json
import os
import subprocess
import sys

import pytest

from dlcheck.bench import data


def _bench(*args, env=None, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "dlcheck", "bench", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def _has_gpu():
    from dlcheck import nvml

    try:
        return bool(nvml.query("nvmlDeviceGetCount", default=0))
    except Exception:
        return False


@pytest.mark.parametrize(
    "args, message",
    [
        (["--impl", "tensorflow"], "tensorflow: choose from keras, torch, torch-sparse"),
        (["--epochs", "0"], "0 is not in the range 1<=x<=1000"),
        (["--device", "tpu"], "'tpu' is not one of 'cpu', 'gpu', 'all'"),
        (["--synthetic", "--data", "x.npz"], "--data and --synthetic exclude each other"),
        (["--plot", "out.pdf"], "give a .png file name"),
        (["--protocol", "book", "--limit", "500"], "holds out 10000 reviews"),
    ],
)
def test_bad_options_are_one_line_usage_errors(args, message):
    result = _bench(*args, timeout=60)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_help_states_the_memory_needed():
    result = _bench("--help", timeout=60)
    assert result.returncode == 0
    assert "25000 x 10000 x 4 B" in result.stdout and "1 GB per split" in result.stdout


def test_wrong_data_file_is_a_clear_error(tmp_path, small_npz):
    result = _bench("--data", str(small_npz), timeout=60)
    assert result.returncode == 1
    assert "does not match Keras's imdb.npz" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


@pytest.mark.skipif(_has_gpu(), reason="this machine has a GPU")
def test_gpu_only_without_a_gpu_says_so():
    result = _bench("--device", "gpu", "--synthetic", timeout=60)
    assert result.returncode == 3
    assert "no NVIDIA GPU to benchmark" in result.stderr


def test_json_contract_and_plot(tmp_path):
    plot = tmp_path / "bench.png"
    env = {"KERAS_HOME": str(tmp_path / "kh")}  # no cache: proves the offline fallback too
    result = _bench(
        "--limit", "600", "--epochs", "2", "--batch-size", "128", "--device", "cpu",
        "--json", "--plot", str(plot), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["schema"] == "dlcheck/1" and body["command"] == "bench"
    assert body["status"] in ("PASS", "WARN")
    d = body["data"]
    assert d["synthetic"] is True and d["dataset"] == "synthetic-imdb"
    assert d["protocol"] == "quick"
    assert any("fell back to synthetic" in n for n in d["notes"])
    assert d["speedup"] == {"keras": None, "torch": None, "torch-sparse": None}
    assert [(r["impl"], r["device"]) for r in d["results"]] == [
        ("keras", "cpu"), ("torch", "cpu"), ("torch-sparse", "cpu"),
    ]  # fmt: skip
    for row in d["results"]:
        for key in ("impl", "device", "backend", "median_epoch_s", "min_epoch_s", "max_epoch_s",
                    "samples_per_s", "speedup", "test_accuracy", "verdict", "error"):  # fmt: skip
            assert key in row
        assert row["error"] is None and row["verdict"] in ("PASS", "WARN")
        assert row["min_epoch_s"] <= row["median_epoch_s"] <= row["max_epoch_s"]
        assert row["samples_per_s"] == pytest.approx(600 / row["median_epoch_s"])
    assert plot.stat().st_size > 20_000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_table_labels_synthetic_data(tmp_path):
    result = _bench(
        "--synthetic", "--limit", "300", "--epochs", "1", "--impl", "torch-sparse",
        "--device", "cpu", env={"NO_COLOR": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "SYNTHETIC IMDB-shaped data" in result.stdout
    assert "torch-sparse (word indices)" in result.stdout and "cpu" in result.stdout
    assert "\x1b[" not in result.stdout  # plain text when not a TTY
    assert "[1/1] torch-sparse on cpu" in result.stderr


@pytest.mark.gpu
def test_gpu_rows_really_use_the_gpu():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available() or not _has_gpu():
        pytest.skip("needs an NVIDIA GPU visible to torch and NVML")
    result = _bench("--synthetic", "--impl", "torch,torch-sparse", "--json")
    body = json.loads(result.stdout)
    gpu_rows = [r for r in body["data"]["results"] if r["device"].startswith("cuda")]
    assert gpu_rows, body
    for row in gpu_rows:
        assert row["error"] is None
        assert "cuda" in row["placed_on"]
        assert row["verdicts"]["device_used"]["status"] == "PASS", row["verdicts"]
        assert row["nvml"]["samples"] > 0
        assert row["speedup"] is not None
    assert body["data"]["speedup"]["torch"] is not None


def test_real_file_path_end_to_end(tmp_path, monkeypatch):
    """A Keras-layout file given with --data runs through (hash pinned to that file)."""
    from tests.bench.conftest import write_keras_npz

    path = write_keras_npz(tmp_path / "imdb.npz", n_train=300, n_test=300)
    monkeypatch.setattr(data, "SHA256", data.sha256_of(path))  # stands in for Keras's file
    from tests.fakes.cli import invoke

    result = invoke(["bench", "--data", str(path), "--impl", "torch-sparse", "--device", "cpu",
                     "--epochs", "1", "--json"])  # fmt: skip
    assert result.code == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["data"]["synthetic"] is False and body["data"]["dataset"] == "imdb"
    assert body["data"]["sha256"] == data.SHA256
    assert body["data"]["results"][0]["error"] is None
