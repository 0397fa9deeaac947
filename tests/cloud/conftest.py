"""Fixtures for the cloud template tests: tool lookup, a checkov venv, a seeded moto server."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLOUD = ROOT / "cloud"
BIN = Path(sys.executable).parent
CHECKOV_VENV = ROOT / "build" / "checkov-venv"
CHECKOV_REQ = ROOT / "requirements" / "checkov-venv.txt"


def load_script(relpath: str):
    """Import a stdlib script under cloud/ by path (cloud/ is not a Python package; these scripts
    are copied onto instances or run by playbooks)."""
    path = CLOUD / relpath
    spec = importlib.util.spec_from_file_location(f"dlcheck_cloud_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses need the module registered
    spec.loader.exec_module(module)
    return module


def tool(name: str) -> str:
    """A test tool from this interpreter's venv, else PATH. Missing: fail in CI, else skip."""
    path = BIN / name
    found = str(path) if path.exists() else shutil.which(name)
    if found:
        return found
    msg = f"{name} not installed; run: bash scripts/setup.sh --test (requirements/test-cloud.txt)"
    if os.environ.get("CI"):
        pytest.fail(msg)
    pytest.skip(msg)


def require_module(name: str):
    """Import a test-only module. Missing: fail in CI, else skip."""
    try:
        return __import__(name)
    except ImportError:
        msg = f"Python module {name} missing; run: bash scripts/setup.sh --test"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)


@pytest.fixture(scope="session")
def checkov() -> str:
    """checkov from its own venv: its pins (boto3, packaging, ...) conflict with the frameworks."""
    exe = CHECKOV_VENV / "bin" / "checkov"
    stamp = CHECKOV_VENV / "requirements.txt"
    if not exe.exists() or not stamp.exists() or stamp.read_text() != CHECKOV_REQ.read_text():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(CHECKOV_VENV)], check=True)
        subprocess.run(
            [str(CHECKOV_VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
            + ["-r", str(CHECKOV_REQ)],
            check=True,
            timeout=900,
        )
        shutil.copyfile(CHECKOV_REQ, stamp)
    return str(exe)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_process():
    """A real moto server process on a free loopback port, with the public image parameters."""
    require_module("moto")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    (ROOT / "build").mkdir(exist_ok=True)
    log = open(ROOT / "build" / f"moto-server-{port}.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("moto_seeded.py")), str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on {url}") from None
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


@pytest.fixture(scope="session")
def moto_server():
    """One moto server for the quick tests (each uses its own stack names)."""
    with moto_process() as url:
        yield url


@pytest.fixture
def aws_env(moto_server, tmp_path, monkeypatch):
    """Environment pointing boto3 and amazon.aws at the moto server, with fake credentials."""
    env = {
        "AWS_ENDPOINT_URL": moto_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return env
