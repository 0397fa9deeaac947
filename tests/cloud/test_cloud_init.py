"""The cloud-init user data both clouds use, checked by cloud-init's own schema validator."""

from __future__ import annotations

import base64
import gzip
import subprocess

import pytest
import yaml

from .conftest import CLOUD, tool

USER_DATA = CLOUD / "common" / "user-data.yaml"


ROLE_FILES = CLOUD.parent / "playbooks" / "roles" / "idle_stop" / "files"


def rendered() -> str:
    """The user data as both clouds pass it: verbatim (no parameter; see render_user_data.py)."""
    text = USER_DATA.read_text()
    assert "${" not in text
    return text


def schema(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("cloud-init"), "schema", "--config-file", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_valid_cloud_config(tmp_path):
    path = tmp_path / "user-data.yaml"
    path.write_text(rendered())
    res = schema(path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Valid cloud-config" in res.stdout


def test_schema_check_really_rejects(tmp_path):
    """The validator is not a rubber stamp: a wrong type in the same file fails."""
    path = tmp_path / "bad.yaml"
    path.write_text(rendered().replace("ssh_pwauth: false", "ssh_pwauth: [not, a, bool]"))
    res = schema(path)
    assert res.returncode != 0
    assert "ssh_pwauth" in res.stdout + res.stderr


@pytest.mark.parametrize(
    "source,dest",
    [
        ("dlcheck-idle-stop.py", "/usr/local/sbin/dlcheck-idle-stop"),
        ("dlcheck-idle-stop.service", "/etc/systemd/system/dlcheck-idle-stop.service"),
        ("dlcheck-idle-stop.timer", "/etc/systemd/system/dlcheck-idle-stop.timer"),
    ],
)
def test_files_it_writes_are_the_sources(source, dest):
    files = {f["path"]: f for f in yaml.safe_load(rendered())["write_files"]}
    entry = files[dest]
    assert entry["encoding"] == "gz+b64"
    unpacked = gzip.decompress(base64.b64decode(entry["content"]))
    assert unpacked == (ROLE_FILES / source).read_bytes()


def test_timer_is_enabled_with_the_default_minutes():
    doc = yaml.safe_load(rendered())
    env = {f["path"]: f for f in doc["write_files"]}["/etc/default/dlcheck-idle-stop"]["content"]
    assert "IDLE_STOP_MINUTES=60" in env
    assert ["systemctl", "enable", "--now", "dlcheck-idle-stop.timer"] in doc["runcmd"]
    timer = (ROLE_FILES / "dlcheck-idle-stop.timer").read_text()
    assert "OnUnitActiveSec=5min" in timer and "IDLE_STOP_INTERVAL=5" in env
