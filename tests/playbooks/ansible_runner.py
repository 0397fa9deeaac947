"""Run ansible-playbook from the test suite and read its recap."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.MULTILINE,
)


def tool(name: str) -> str | None:
    """An Ansible tool next to this Python (the repo .venv in CI), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    return shutil.which(name)


def ansible_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(REPO / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_LOCAL_TEMP=str(Path(os.environ.get("TMPDIR", "/tmp")) / "dlcheck-ansible-local"),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class PlayResult:
    returncode: int
    output: str
    recap: dict[str, dict[str, int]]
    log: Path | None = None

    @property
    def text(self) -> str:
        """Output with whitespace runs folded to one space (the YAML callback wraps lines)."""
        return " ".join(self.output.split())

    def __repr__(self) -> str:
        # Failed assertions show the end of Ansible's output, where the failure is.
        where = f" (whole output: {self.log})" if self.log else ""
        return f"ansible-playbook exited {self.returncode}{where}:\n{self.output[-6000:]}"


def run_playbook(
    playbook: str, *args: str, timeout: float = 3600, log: Path | None = None, **env: str
) -> PlayResult:
    """ansible-playbook PLAYBOOK ARGS from the repository root; `log` keeps the whole output."""
    binary = tool("ansible-playbook")
    assert binary, "ansible-playbook not found: pip install -r requirements/test-playbooks.txt"
    process = subprocess.run(
        [binary, str(PLAYBOOKS / playbook), *args],
        cwd=REPO,
        env=ansible_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        start_new_session=True,  # its own process group: a test's Ctrl-C reaches it alone
    )
    output = process.stdout + process.stderr
    if log:
        log.write_text(output)
    recap = {
        m["host"]: {k: int(v) for k, v in m.groupdict().items() if k != "host"}
        for m in RECAP.finditer(output)
    }
    return PlayResult(process.returncode, output, recap, log)
