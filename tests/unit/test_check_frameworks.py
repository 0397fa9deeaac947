"""Framework probes: fake children at the process boundary, and the REAL installed frameworks."""

import json
import time

import pytest

from dlcheck import frameworks
from tests.fakes import probes

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml, clean_env


def test_fake_probe_json_is_parsed(monkeypatch):
    monkeypatch.setattr(frameworks, "probe_command", probes.command_for(probes.HEALTHY))
    result = frameworks.run_probes(("torch", "jax"), timeout=30)
    assert result["torch"].cuda == "13.0" and result["torch"].probe.status == "ok"
    assert result["jax"].installed is False


def test_hanging_probes_are_cut_off_in_parallel(monkeypatch):
    docs = {"torch": "HANG", "tensorflow": "HANG", "jax": "HANG", "keras": probes.keras()}
    monkeypatch.setattr(frameworks, "probe_command", probes.command_for(docs))
    started = time.monotonic()
    result = frameworks.run_probes(timeout=1.5)
    elapsed = time.monotonic() - started
    assert elapsed < 6  # one shared deadline, not 1.5 s per probe in series
    for name in ("torch", "tensorflow", "jax"):
        assert result[name].probe.status == "timeout"
        assert "1.5 s" in result[name].error
    assert result["keras"].backend == "tensorflow"


def test_crashing_probe_is_reported(monkeypatch):
    monkeypatch.setattr(frameworks, "probe_command", probes.command_for({"torch": "CRASH"}))
    result = frameworks.run_probes(("torch",), timeout=30)["torch"]
    assert result.probe.status == "crashed"
    assert "139" in result.error and "Segfault" in result.error


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """One real run of every probe against /work/venv's (or CI's) frameworks."""
    keras_home = tmp_path_factory.mktemp("keras-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KERAS_HOME", str(keras_home))
        mp.delenv("KERAS_BACKEND", raising=False)
        result = frameworks.run_probes(timeout=300)
    return result, keras_home


def test_real_torch_probe(real):
    torch = real[0]["torch"]
    pytest.importorskip("torch")
    assert torch.probe.status == "ok", torch
    assert torch.installed and torch.version.startswith("2.")
    assert torch.extra["cpu_matmul_ok"] is True
    if torch.cuda is None:  # this machine: CPU wheel
        assert torch.cuda_build is False and torch.gpu_count == 0


def test_real_tensorflow_probe(real):
    pytest.importorskip("tensorflow")
    tf = real[0]["tensorflow"]
    assert tf.probe.status == "ok", tf
    assert tf.version.startswith("2.") and isinstance(tf.cuda_build, bool)


def test_real_keras_probe_writes_nothing_of_the_users(real):
    pytest.importorskip("keras")
    result, keras_home = real
    keras = result["keras"]
    assert keras.version.startswith("3.")
    assert (keras.backend, keras.backend_source) == ("tensorflow", "default")
    assert list(keras_home.iterdir()) == []  # Keras wrote its keras.json in the scratch home


def test_real_keras_backend_from_user_config(tmp_path, monkeypatch):
    pytest.importorskip("keras")
    pytest.importorskip("torch")
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "torch"}))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    keras = frameworks.run_probes(("keras",), timeout=300)["keras"]
    assert (keras.backend, keras.backend_source) == ("torch", "keras.json")
    assert json.loads((tmp_path / "keras.json").read_text()) == {"backend": "torch"}
