"""The docs match the code: examples regenerated from real runs, no dead paths, no paths that
exist only on the machine a page was written on."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")),
         *sorted(REPO.glob("*/README.md"))]  # fmt: skip
TOP = ("dlcheck/", "docs/", "scripts/", "tests/", "playbooks/", "cloud/", "smoke_tests/",
       "requirements/", ".ci/")  # fmt: skip
MACHINE_PATHS = re.compile(r"/work/|/opt/wheels|/opt/pypi|/root/\.cache|/tmp/pytest-")
EXTERNAL = {"PERFORMANCE.md"}  # NVIDIA/nccl-tests doc/PERFORMANCE.md, cited as a source


def test_every_example_is_what_the_command_prints_now():
    done = subprocess.run([sys.executable, "scripts/doc_examples.py", "--check"], cwd=REPO,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr


def _paths(text: str):
    for match in re.finditer(r"\]\(([^)#\s]+)\)", text):  # Markdown links
        target = match[1]
        if "://" not in target and not target.startswith("mailto:"):
            yield target, True
    for match in re.finditer(r"`([\w./-]+)`", text):  # `dlcheck/cli.py`-style mentions
        token = match[1]
        if token.startswith(TOP) and not any(c in token for c in "*<{"):
            if not re.fullmatch(r"dlcheck/\d+", token):  # the envelope's schema name
                yield token, False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_page_points_at_a_file_that_does_not_exist(page):
    missing = []
    for target, relative in _paths(page.read_text()):
        base = page.parent if relative else REPO
        if not (base / target).exists() and not (REPO / target).exists():
            missing.append(target)
    names = {p.name for p in REPO.rglob("*.md") if ".venv" not in p.parts}
    for mention in re.findall(r"\b[\w-]+\.md\b", page.read_text()):
        if mention not in names and mention not in EXTERNAL:
            missing.append(mention)
    assert not missing, f"{page.name} names files that do not exist: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_page_carries_a_path_of_one_machine(page):
    found = sorted({m[0] for m in MACHINE_PATHS.finditer(page.read_text())})
    assert not found, f"{page.name}: {found}"
