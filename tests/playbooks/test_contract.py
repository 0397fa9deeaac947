"""The one contract between dlcheck and the playbooks: playbooks/roles/dlcheck/vars/main.yml.

Its exit codes must be dlcheck.models.ExitCode's, its verdicts what `dlcheck --json` says with
the code of the same name, and its report file names the ones `dlcheck fleet` reads. Nothing in
playbooks/ may repeat those literals instead of reading the file.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import yaml

from dlcheck.models import ExitCode
from tests.playbooks.ansible_runner import PLAYBOOKS, REPO

CONTRACT = yaml.safe_load((PLAYBOOKS / "roles/dlcheck/vars/main.yml").read_text())
CODES = CONTRACT["_dlcheck_exit_codes"]


def test_exit_codes_are_dlchecks():
    for name, value in CODES.items():
        assert ExitCode[name.upper()] == value, name
    # Every code the playbooks judge by (and the two that mean "dlcheck broke") is there.
    assert {"ready", "not_ready", "usage", "cpu_only", "internal"} <= set(CODES)


def test_every_verdict_has_its_exit_code():
    assert set(CONTRACT["_dlcheck_verdicts"]) == {"ready", "not_ready", "cpu_only"}
    assert set(CONTRACT["_dlcheck_verdicts"]) <= set(CODES)


def test_dlcheck_json_speaks_the_contract(tmp_path):
    """This machine has no GPU: a real run says cpu_only, with the contract's code for it."""
    result = subprocess.run(
        [sys.executable, "-m", "dlcheck", "--json", "--no-frameworks"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    envelope = json.loads(result.stdout)
    verdict = envelope["data"]["verdict"]
    assert verdict in CONTRACT["_dlcheck_verdicts"]
    assert result.returncode == envelope["data"]["exit_code"] == CODES[verdict]
    # Written under the contract's file names, `dlcheck fleet` reads the report.
    names = CONTRACT["_dlcheck_report_files"]
    host = tmp_path / "reports" / "box"
    host.mkdir(parents=True)
    (host / names["check"]).write_text(result.stdout)
    (host / names["status"]).write_text(json.dumps({"host": "box", "state": "ok"}))
    fleet = subprocess.run(
        [sys.executable, "-m", "dlcheck", "fleet", "--json", str(tmp_path / "reports")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    (row,) = json.loads(fleet.stdout)["data"]["hosts"]
    assert row["verdict"] == verdict, row
    assert not [p for p in row["problems"] if names["check"] in p], row


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PLAYBOOKS.rglob("*.yml") if p.name != "main.yml" or "vars" not in p.parts),
    ids=lambda p: str(p.relative_to(PLAYBOOKS)),
)
def test_no_playbook_repeats_the_contract(path):
    # What runs: no comments, task names or option descriptions.
    prose = re.compile(r"^\s*(#|-?\s*(name|description|short_description):)")
    code = "\n".join(
        line.split(" #")[0] for line in path.read_text().splitlines() if not prose.match(line)
    )
    for name in CONTRACT["_dlcheck_report_files"].values():
        assert not re.search(rf"['\"/ ]{re.escape(name)}\b", code), f"{name} spelled out in {path}"
    # dlcheck's exit codes compared as numbers (124 is timeout(1)'s, not dlcheck's).
    for match in re.finditer(
        r"__(dlcheck|verify)_(check|bench)\w*\.rc\s*(==|in|not in)\s*\[?\s*(\d+)", code
    ):
        assert match.group(4) == "124", f"dlcheck exit code {match.group(0)!r} in {path}"
