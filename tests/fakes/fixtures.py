"""pytest fixtures shared by tests/unit and tests/cli (imported by their conftest.py)."""

from __future__ import annotations

import pytest

from dlcheck import nvml
from tests.fakes.nvml import FakePynvml, scenario


@pytest.fixture
def fake_nvml(monkeypatch):
    """install('healthy_single' | scenario dict) -> the FakePynvml now behind dlcheck.nvml."""
    installed = {}

    def install(name_or_scenario):
        data = scenario(name_or_scenario) if isinstance(name_or_scenario, str) else name_or_scenario
        fake = FakePynvml(data)
        nvml.reset()
        monkeypatch.setattr(nvml, "_import_pynvml", lambda: fake)
        installed["fake"] = fake
        return fake

    yield install
    if "fake" in installed:
        installed["fake"].release()
    nvml.reset()


@pytest.fixture
def clean_env(monkeypatch):
    # Checks read these; the developer's shell must not change results. (Not autouse: this
    # plugin module is global once loaded, and other parts' tests need their environment.)
    for name in ("CUDA_VISIBLE_DEVICES", "CUDA_LAUNCH_BLOCKING", "LD_LIBRARY_PATH", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
