"""Run `pytest smoke_tests` against a real JupyterLab on 127.0.0.1, as verify.yml runs it."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.smoke.jupyterlab_harness import jupyter_available, running_jupyterlab

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not jupyter_available(),
        reason="jupyterlab/ipykernel/websocket-client missing: pip install -r "
        "requirements/test-smoke.txt",
    ),
]
REPO = Path(__file__).resolve().parents[2]
# Another part builds `dlcheck check`; until it is in this tree the verdict test must fail.
HAS_CHECK = importlib.util.find_spec("dlcheck.commands.check") is not None
VERDICT_TEST = "smoke_tests/test_dlcheck.py::test_dlcheck_verdict_is_ready"


def run_smoke(out: Path, env_extra: dict[str, str], *targets: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMOKE_")}
    # No GPU here; say so explicitly so the run does not depend on this machine's PCI bus.
    env.update({"SMOKE_EXPECT_GPU": "no", **env_extra})
    command = [
        sys.executable, "-m", "pytest", *(targets or ["smoke_tests"]), "-p", "no:cacheprovider",
        f"--junitxml={out / 'junit.xml'}", f"--smoke-json={out / 'smoke.json'}",
    ]  # fmt: skip
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    with running_jupyterlab(tmp_path_factory.mktemp("jupyterlab")) as server:
        yield server


@pytest.fixture(scope="module")
def full_run(jupyterlab, tmp_path_factory):
    url, password = jupyterlab
    out = tmp_path_factory.mktemp("smoke-out")
    proc = run_smoke(out, {"SMOKE_JUPYTER_URL": url, "SMOKE_JUPYTER_PASSWORD": password})
    return proc, out, password


def outcomes(out: Path) -> dict[str, dict]:
    body = json.loads((out / "smoke.json").read_text())
    assert (body["schema"], body["command"]) == ("dlcheck/1", "smoke")
    return {t["nodeid"]: t for t in body["data"]["tests"]}


def test_gpu_tests_skip_with_a_reason_and_the_rest_pass(full_run):
    proc, out, _ = full_run
    tests = outcomes(out)
    gpu_tests = [n for n in tests if n.startswith("smoke_tests/test_driver.py")]
    gpu_tests += [n for n in tests if "gpu" in n.rsplit("::", 1)[1]]
    assert len(gpu_tests) >= 8, gpu_tests
    for nodeid, test in tests.items():
        if nodeid in gpu_tests or nodeid.endswith("_gpu"):
            assert test["outcome"] == "skipped", (nodeid, test)
            assert "no NVIDIA GPU" in test["reason"]
        elif nodeid == VERDICT_TEST and not HAS_CHECK:
            assert test["outcome"] == "failed" and "printed no JSON" in test["reason"], test
        else:
            assert test["outcome"] == "passed", (nodeid, test, proc.stdout[-3000:])
    assert proc.returncode == (0 if HAS_CHECK else 1), proc.stdout[-3000:]


def test_junit_xml_agrees_with_the_json_summary(full_run):
    _, out, _ = full_run
    summary = json.loads((out / "smoke.json").read_text())["data"]["summary"]
    suite = ET.parse(out / "junit.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) == sum(summary.values())
    assert int(suite.get("skipped")) == summary["skipped"]
    assert int(suite.get("failures")) == summary["failed"]
    assert int(suite.get("errors")) == summary["error"]


def test_notebook_ran_the_reduced_synthetic_imdb_in_the_kernel(full_run):
    _, out, _ = full_run
    notebook = outcomes(out)[
        "smoke_tests/test_notebook.py::test_imdb_notebook_reaches_its_accuracy_band"
    ]
    props = notebook["properties"]
    assert props["imdb_data"] == "synthetic"
    assert 0.85 <= props["imdb_test_accuracy"] <= 0.97
    assert notebook["duration_s"] < 120


def test_password_is_never_written(full_run):
    proc, out, password = full_run
    for text in (proc.stdout, proc.stderr, *(p.read_text() for p in out.iterdir())):
        assert password not in text


def test_wrong_password_fails_clearly_without_echoing_it(jupyterlab, tmp_path):
    url, _ = jupyterlab
    wrong = "not-the-password-0123456789"
    proc = run_smoke(
        tmp_path,
        {"SMOKE_JUPYTER_URL": url, "SMOKE_JUPYTER_PASSWORD": wrong},
        "smoke_tests/test_jupyter.py::test_kernel_runs_code",
    )
    assert proc.returncode == 1
    test = outcomes(tmp_path)["smoke_tests/test_jupyter.py::test_kernel_runs_code"]
    assert test["outcome"] == "error" and "wrong password?" in test["reason"]
    texts = (proc.stdout, proc.stderr, *(p.read_text() for p in tmp_path.iterdir()))
    assert not any(wrong in text for text in texts)


def test_password_file_logs_in(jupyterlab, tmp_path):
    url, password = jupyterlab
    secret = tmp_path / "secret"
    secret.write_text(password + "\n")
    proc = run_smoke(
        tmp_path,
        {"SMOKE_JUPYTER_URL": url, "SMOKE_JUPYTER_PASSWORD_FILE": str(secret)},
        "smoke_tests/test_jupyter.py::test_kernel_errors_come_back",
    )
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_without_jupyter_configured_its_tests_skip_with_the_reason(tmp_path):
    proc = run_smoke(tmp_path, {}, "smoke_tests/test_jupyter.py")
    assert proc.returncode == 0, proc.stdout[-2000:]
    reasons = {t["reason"] for t in outcomes(tmp_path).values()}
    assert any("SMOKE_JUPYTER_URL" in r for r in reasons), reasons
