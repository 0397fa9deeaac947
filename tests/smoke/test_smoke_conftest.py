"""The smoke suite's conftest as a plugin on small test files: GPU skips and the JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = """
import pytest

def test_passes(request):
    request.node.user_properties.append(("answer", 42))

def test_fails():
    assert 1 + 1 == 3, "arithmetic is broken"

@pytest.mark.gpu
def test_needs_gpu():
    pass

def test_skips_itself():
    pytest.skip("not today")
"""


def run(tmp_path: Path, expect_gpu: str) -> tuple[int, dict, dict]:
    """(exit code, the --smoke-json envelope, its tests by name)."""
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(SAMPLE))
    out = tmp_path / "smoke.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOKE_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "smoke_tests.conftest", "-p", "no:cacheprovider",
         f"--rootdir={tmp_path}", str(tmp_path), f"--smoke-json={out}",
         f"--expect-gpu={expect_gpu}"],
        cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
    )  # fmt: skip
    body = json.loads(out.read_text())
    tests = {t["nodeid"].rsplit("::", 1)[1]: t for t in body["data"]["tests"]}
    return proc.returncode, body, tests


def test_without_gpu_the_gpu_test_skips_and_the_summary_counts_all(tmp_path):
    code, body, tests = run(tmp_path, "no")
    assert code == 1
    assert (body["command"], body["status"]) == ("smoke", "FAIL")
    assert body["data"]["summary"] == {"passed": 1, "failed": 1, "skipped": 2, "error": 0}
    assert tests["test_needs_gpu"]["reason"].startswith("no NVIDIA GPU on this host")
    assert tests["test_skips_itself"]["reason"] == "not today"
    assert tests["test_fails"]["reason"].startswith("AssertionError: arithmetic is broken")
    assert tests["test_passes"]["properties"] == {"answer": 42}
    assert body["data"]["gpu_expected"] is False


def test_with_gpu_expected_the_gpu_test_runs(tmp_path):
    _, body, tests = run(tmp_path, "yes")
    assert tests["test_needs_gpu"]["outcome"] == "passed"
    assert body["data"]["gpu_expected"] is True
