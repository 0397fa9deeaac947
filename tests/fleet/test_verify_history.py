"""verify.yml's history for real (ansible-playbook, no host needed): each run in its own
REPORTS/<run-id>/ folder, `latest` pointing at the newest, the oldest beyond verify_keep_runs
removed, and bad settings refused before anything is written. The hosts are unreachable ports,
which verify.yml records like any host; the converge test runs it on real hosts."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from dlcheck.allreduce import free_port
from tests.fleet.test_verify_lint import PLAYBOOK, REPO, tool

RUN_ID = re.compile(r"^\d{8}T\d{6}Z$")


@pytest.fixture
def inventory(tmp_path):
    port = free_port()  # bound, then released: nobody listens there
    hosts = {name: {"ansible_host": "127.0.0.1", "ansible_port": port, "ansible_user": "root"}
             for name in ("node-a", "node-b")}  # fmt: skip
    path = tmp_path / "inventory.yml"
    path.write_text(json.dumps({"all": {"hosts": hosts}}))
    return path


def verify(inventory, reports, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("ansible-playbook"), "-i", str(inventory), str(PLAYBOOK),
         "-e", f"verify_reports_dir={reports}", *extra],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def runs(reports) -> list[str]:
    return sorted(p.name for p in reports.iterdir() if RUN_ID.match(p.name))


def test_each_run_has_its_folder_latest_points_at_it_and_old_runs_go(inventory, tmp_path):
    reports = tmp_path / "reports"
    for old in ("20200101T000000Z", "20200102T000000Z"):
        (reports / old / "node-a").mkdir(parents=True)
    (reports / "notes.txt").write_text("kept: not a run")
    first = verify(inventory, reports, "-e", "verify_run_id=20261201T020000Z",
                   "-e", "verify_keep_runs=2")  # fmt: skip
    assert first.returncode == 0, first.stdout[-3000:]
    assert runs(reports) == ["20200102T000000Z", "20261201T020000Z"]
    second = verify(inventory, reports, "-e", "verify_keep_runs=2")  # the clock's run id
    assert second.returncode == 0, second.stdout[-3000:]
    latest = runs(reports)[-1]
    assert runs(reports) == ["20261201T020000Z", latest] and latest > "20261201T020000Z"
    assert (reports / "latest").resolve() == (reports / latest).resolve()
    assert (reports / "notes.txt").is_file()
    for run in runs(reports):
        for host in ("node-a", "node-b"):
            status = json.loads((reports / run / host / "status.json").read_text())
            assert status["state"] == "unreachable", status
    fleet = subprocess.run([sys.executable, "-m", "dlcheck", "fleet", "--json", str(reports)],
                           cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    history = json.loads(fleet.stdout)["data"]["history"]
    assert (history["run"], history["baseline"]) == (latest, "20261201T020000Z"), history


def test_keep_0_keeps_every_run_and_history_off_writes_the_old_layout(inventory, tmp_path):
    reports = tmp_path / "reports"
    (reports / "20200101T000000Z" / "node-a").mkdir(parents=True)
    assert verify(inventory, reports, "-e", "verify_keep_runs=0").returncode == 0
    assert len(runs(reports)) == 2
    flat = tmp_path / "flat"
    assert verify(inventory, flat, "-e", "verify_history=false").returncode == 0
    assert sorted(p.name for p in flat.iterdir()) == ["node-a", "node-b"]


@pytest.mark.parametrize("setting", ["verify_run_id=yesterday", "verify_keep_runs=-1",
                                     "verify_keep_runs=many"])  # fmt: skip
def test_bad_settings_are_refused_before_anything_is_written(inventory, tmp_path, setting):
    reports = tmp_path / "reports"
    result = verify(inventory, reports, "-e", setting)
    assert result.returncode != 0
    assert "verify_run_id must look like 20261202T231500Z" in result.stdout, result.stdout[-2000:]
    assert not reports.exists()
