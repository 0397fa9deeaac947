"""playbooks/verify.yml run for real: a local "provisioned host" and an unreachable one,
in parallel, then `dlcheck fleet` on what it fetched."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from dlcheck.allreduce import free_port
from tests.smoke.jupyterlab_harness import jupyter_available, running_jupyterlab

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "playbooks" / "verify.yml"


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent package is missing
        return False


# Another part builds `dlcheck check`; this test adapts until it is merged.
HAS_CHECK = has_module("dlcheck.commands.check")


def ansible_tool(name: str) -> str | None:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(ansible_tool("ansible-playbook") is None, reason="pip install ansible-core"),
    pytest.mark.skipif(
        not jupyter_available(), reason="pip install -r requirements/test-smoke.txt"
    ),
]


EXTRA_VARS = {
    "verify_test_packages": [],  # already in the test interpreter's site-packages
    # The benchmark's CPU run is the bench part's to test, and too slow to repeat here.
    "verify_run_bench": False,
    # tests/smoke runs the whole suite; here the notebook and TensorFlow would only repeat it.
    "verify_smoke_args": ["-k", "not notebook and not tensorflow"],
}


def provisioned_venv(root: Path) -> Path:
    """A venv shaped like dl_python's: bin/python, bin/dlcheck, this repo's dlcheck and the
    frameworks of the test interpreter (by .pth, instead of a multi-GB install)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    site = root / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    pth = site / "site-packages" / "provisioned.pth"
    pth.write_text(f"{REPO}\n{sysconfig.get_paths()['purelib']}\n")
    dlcheck = root / "bin" / "dlcheck"
    dlcheck.write_text(f"#!{root / 'bin' / 'python'}\nfrom dlcheck.cli import main\nmain()\n")
    dlcheck.chmod(0o755)
    return root


@pytest.fixture(scope="module")
def verified(tmp_path_factory):
    root = tmp_path_factory.mktemp("verify")
    venv = provisioned_venv(root / "venv")
    reports = root / "reports"
    with running_jupyterlab(root) as (url, password):
        port = url.rsplit(":", 1)[1]
        inventory = root / "inventory.ini"
        inventory.write_text(
            "[dl]\n"
            f"good ansible_connection=local ansible_python_interpreter={sys.executable}"
            f" ansible_become=false dl_python_venv={venv} jupyter_port={port}"
            f" verify_work_dir={root / 'work'}\n"
            f"gone ansible_host=127.0.0.1 ansible_port={free_port()} ansible_user=nobody"
            " ansible_connection=ssh\n"
        )
        secrets = root / "secrets.json"  # as a vault file would pass it: never on the command line
        secrets.write_text(json.dumps({"jupyter_password": password}))
        secrets.chmod(0o600)
        env = {**os.environ, "ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_NOCOLOR": "1"}
        proc = subprocess.run(
            [ansible_tool("ansible-playbook"), "-i", str(inventory), str(PLAYBOOK),
             "-e", f"@{secrets}", "-e", f"dlcheck_reports_dir={reports}",
             "-e", json.dumps(EXTRA_VARS),
             "-e", "verify_hosts=dl"],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    return proc, reports, password


def status(reports: Path, host: str) -> dict:
    return json.loads((reports / host / "status.json").read_text())


def test_unreachable_host_is_recorded_not_dropped(verified):
    _, reports, _ = verified
    gone = status(reports, "gone")
    assert gone["state"] == "unreachable"
    assert gone["message"], gone  # the connection error, as Ansible saw it


def test_reachable_host_has_its_reports(verified):
    proc, reports, _ = verified
    good = reports / "good"
    smoke = json.loads((good / "smoke.json").read_text())["data"]
    assert (good / "junit.xml").read_text().startswith("<?xml")
    assert smoke["summary"]["passed"] >= 4 and smoke["summary"]["skipped"] >= 8
    jupyter_tests = [t for t in smoke["tests"] if "test_jupyter" in t["nodeid"]]
    assert any(t["outcome"] == "passed" for t in jupyter_tests), "Jupyter login via verify.yml"
    state = status(reports, "good")
    assert not (good / "bench.json").exists()  # verify_run_bench=false
    if HAS_CHECK:
        assert state["state"] == "ok", (state, proc.stdout[-3000:])
        assert json.loads((good / "check.json").read_text())["command"] == "check"
    else:  # this branch alone: the other parts' commands are missing, so the run is broken
        assert state["state"] == "failed", (state, proc.stdout[-3000:])
        assert state["failed_task"] == "Fail the host if a step broke"
        assert "dlcheck rc=2" in state["message"]
        # ...yet the smoke results were still collected (checked above).


def test_password_never_reaches_the_output_or_reports(verified):
    proc, reports, password = verified
    assert password not in proc.stdout + proc.stderr
    for path in reports.rglob("*"):
        if path.is_file():
            assert password not in path.read_text()


def test_fleet_shows_both_hosts_and_fails(verified):
    _, reports, _ = verified
    result = subprocess.run(
        [sys.executable, "-m", "dlcheck", "fleet", "--json", str(reports)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    hosts = {h["host"]: h for h in json.loads(result.stdout)["data"]["hosts"]}
    assert set(hosts) == {"good", "gone"}
    assert hosts["gone"]["state"] == "unreachable"
    assert hosts["good"]["smoke"]["passed"] >= 4
