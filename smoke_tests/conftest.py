"""Smoke tests run ON a provisioned host, from its deep-learning venv.

    python -m pytest smoke_tests --junitxml=junit.xml --smoke-json=smoke.json

Settings (options win over environment variables):
  --jupyter-url / SMOKE_JUPYTER_URL        the running JupyterLab, e.g. http://127.0.0.1:8888
  SMOKE_JUPYTER_PASSWORD or SMOKE_JUPYTER_PASSWORD_FILE, or SMOKE_JUPYTER_TOKEN
                                            credentials (read, sent to the server, never printed)
  --jupyter-kernel / SMOKE_JUPYTER_KERNEL  kernel name (default: the server's default kernel)
  --frameworks / SMOKE_FRAMEWORKS          frameworks the host must have (torch,tensorflow,keras)
  --expect-gpu / SMOKE_EXPECT_GPU          yes|no|auto (auto: an NVIDIA GPU is on the PCI bus)
  --dlcheck-report / SMOKE_DLCHECK_REPORT  a `dlcheck --json` report to judge (verify.yml passes the
                                            one the dlcheck role just wrote); unset: run dlcheck
Tests marked `gpu` skip, with the reason, on a host without an NVIDIA GPU.
"""

from __future__ import annotations

import importlib
import json
import os
import socket
import time
from pathlib import Path

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("smoke", "dlcheck smoke tests")
    group.addoption("--smoke-json", metavar="PATH", help="write a JSON summary (dlcheck/1) here")
    group.addoption("--jupyter-url", default=os.environ.get("SMOKE_JUPYTER_URL"))
    group.addoption("--jupyter-kernel", default=os.environ.get("SMOKE_JUPYTER_KERNEL"))
    group.addoption(
        "--frameworks", default=os.environ.get("SMOKE_FRAMEWORKS", "torch,tensorflow,keras")
    )
    group.addoption("--dlcheck-report", default=os.environ.get("SMOKE_DLCHECK_REPORT"))
    group.addoption(
        "--expect-gpu",
        choices=("yes", "no", "auto"),
        default=os.environ.get("SMOKE_EXPECT_GPU", "auto"),
    )


def nvidia_pci_devices() -> list[str]:
    """PCI addresses of NVIDIA GPUs. Hardware, not the driver: a broken driver must fail.

    dlcheck's one rule (vendor 0x10de, display class), the one the playbooks' GPU fact applies:
    a card's audio or USB function is not a GPU."""
    from dlcheck.system import pci_gpus

    return [gpu["bus_id"] for gpu in pci_gpus()]


def _has_gpu(config) -> bool:
    choice = config.getoption("--expect-gpu")
    return bool(nvidia_pci_devices()) if choice == "auto" else choice == "yes"


def pytest_configure(config):
    # The suite is copied to hosts without this repository's pyproject.toml: register here.
    config.addinivalue_line("markers", "gpu: needs a real NVIDIA GPU; skipped without one")
    config.addinivalue_line("markers", "jupyter: talks to the host's running JupyterLab")
    config.pluginmanager.register(SmokeSummary(config), "smoke-summary")


def pytest_collection_modifyitems(config, items):
    if _has_gpu(config):
        return
    skip = pytest.mark.skip(
        reason="no NVIDIA GPU on this host (no display-class PCI device, 0x10de)"
    )
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def has_gpu(pytestconfig) -> bool:
    return _has_gpu(pytestconfig)


@pytest.fixture(scope="session")
def gpu_count(has_gpu) -> int:
    """GPUs NVML reports; every framework must see this many."""
    if not has_gpu:
        return 0
    from dlcheck import nvml

    try:
        return nvml.query("nvmlDeviceGetCount", default=0)
    except nvml.NvmlUnavailable as error:  # an NVIDIA card is present, so this is a failure
        pytest.fail(f"NVML unusable ({error.reason}): {error.detail}", pytrace=False)


@pytest.fixture(scope="session")
def frameworks(pytestconfig) -> list[str]:
    return [f.strip() for f in pytestconfig.getoption("--frameworks").split(",") if f.strip()]


@pytest.fixture(scope="session")
def require_framework(frameworks):
    """Import a framework the host must have: skip if this run leaves it out, fail if missing."""

    def require(name: str):
        if name not in frameworks:
            pytest.skip(f"{name} is not among this host's frameworks (--frameworks)")
        try:
            return importlib.import_module(name)
        except ImportError as error:
            pytest.fail(f"{name} is not importable in this venv: {error}", pytrace=False)

    return require


def _read_secret() -> tuple[str | None, str | None]:
    """(password, token) from the environment or a file; never logged."""
    password = os.environ.get("SMOKE_JUPYTER_PASSWORD")
    secret_file = os.environ.get("SMOKE_JUPYTER_PASSWORD_FILE")
    if not password and secret_file:
        try:
            password = Path(secret_file).read_text().rstrip("\n")
        except OSError as error:
            pytest.fail(f"cannot read SMOKE_JUPYTER_PASSWORD_FILE: {error}", pytrace=False)
    return password or None, os.environ.get("SMOKE_JUPYTER_TOKEN") or None


@pytest.fixture(scope="session")
def jupyter(pytestconfig):
    """A logged-in session with the host's JupyterLab."""
    from smoke_tests.jupyter_client import JupyterError, JupyterSession

    url = pytestconfig.getoption("--jupyter-url")
    if not url:
        pytest.skip("JupyterLab not configured: set SMOKE_JUPYTER_URL (or --jupyter-url)")
    password, token = _read_secret()
    if not (password or token):
        pytest.fail(
            "no Jupyter credentials: set SMOKE_JUPYTER_PASSWORD, SMOKE_JUPYTER_PASSWORD_FILE "
            "or SMOKE_JUPYTER_TOKEN",
            pytrace=False,
        )
    try:
        return JupyterSession(url, password=password, token=token)
    except JupyterError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="session")
def kernel(jupyter, pytestconfig):
    """One kernel for the session's Jupyter tests, shut down at the end."""
    started = jupyter.start_kernel(pytestconfig.getoption("--jupyter-kernel"))
    yield started
    started.shutdown()


# --- JSON summary -------------------------------------------------------------------------


class SmokeSummary:
    """Collects each test's outcome and writes the --smoke-json file at the end."""

    def __init__(self, config):
        self.config = config
        self.tests: dict[str, dict] = {}
        self.started = time.time()

    def pytest_runtest_logreport(self, report):
        entry = self.tests.setdefault(
            report.nodeid, {"nodeid": report.nodeid, "outcome": "passed", "duration_s": 0.0}
        )
        entry["duration_s"] = round(entry["duration_s"] + report.duration, 3)
        if report.user_properties:
            entry.setdefault("properties", {}).update(dict(report.user_properties))
        if report.skipped:
            entry["outcome"] = "skipped"
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
            entry["reason"] = reason.removeprefix("Skipped: ")
        elif report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            # The exception line ("AssertionError: ..."), else the text pytest.fail() gave.
            crash = getattr(getattr(report.longrepr, "reprcrash", None), "message", None)
            lines = (crash or report.longreprtext or "").strip().splitlines()
            entry["reason"] = lines[0][:500] if lines else ""

    def pytest_sessionfinish(self, session, exitstatus):
        path = self.config.getoption("--smoke-json")
        if not path:
            return
        tests = list(self.tests.values())
        counts = {k: sum(t["outcome"] == k for t in tests) for k in ("passed", "failed", "skipped")}
        counts["error"] = sum(t["outcome"] == "error" for t in tests)
        data = {
            "host": {"hostname": socket.gethostname()},
            "gpu_expected": _has_gpu(self.config),
            "summary": counts,
            "duration_s": round(time.time() - self.started, 1),
            "exit_code": int(exitstatus),
            "tests": tests,
        }
        bad = counts["failed"] or counts["error"] or int(exitstatus) not in (0, 5)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(_envelope("smoke", "FAIL" if bad else "PASS", data) + "\n")


def _envelope(command: str, status: str, data: dict) -> str:
    try:
        from dlcheck.models import envelope
    except ImportError:  # dlcheck not importable: the same envelope, written here
        body = {"schema": "dlcheck/1", "command": command, "status": status}
        return json.dumps({**body, "data": data, "errors": []}, sort_keys=True, indent=2)
    return envelope(command, status, data)
