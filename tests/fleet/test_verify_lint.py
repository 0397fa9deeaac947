"""Static checks of playbooks/verify.yml: syntax and ansible-lint's production profile."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = REPO / "playbooks" / "verify.yml"


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} not installed: pip install -r requirements/test-smoke.txt")
    return found


def test_syntax_check():
    proc = subprocess.run(
        [tool("ansible-playbook"), "--syntax-check", "-i", "localhost,", str(PLAYBOOK)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_ansible_lint_production_profile():
    proc = subprocess.run(
        [tool("ansible-lint"), "--profile", "production", "--nocolor", str(PLAYBOOK)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
