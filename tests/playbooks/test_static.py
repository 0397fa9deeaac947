"""Static checks of playbooks/: ansible-lint (production), yamllint, syntax, argument specs.

The negative tests run the real site.yml against this machine in check mode and assert that a bad
variable stops the play in its first, read-only preflight play, before any role task runs.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.playbooks.ansible_runner import PLAYBOOKS, REPO, ansible_env, run_playbook, tool

ROLES = ["base", "nvidia_driver", "cuda_toolkit", "dl_python", "jupyter", "dlcheck", "idle_stop"]
PLAYS = sorted(p.name for p in PLAYBOOKS.glob("*.yml"))
needs_ansible = pytest.mark.skipif(
    tool("ansible-playbook") is None, reason="pip install -r requirements/test-playbooks.txt"
)


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=600
    )


@pytest.mark.skipif(tool("ansible-lint") is None, reason="needs ansible-lint")
def test_ansible_lint_production_profile_has_no_findings():
    result = _run(tool("ansible-lint"), "--profile", "production", "--nocolor", "playbooks")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "profile 'production' was required, and it passed" in result.stderr.lower()


@pytest.mark.skipif(tool("yamllint") is None, reason="needs yamllint")
def test_yamllint_has_no_findings():
    result = _run(tool("yamllint"), "--strict", "playbooks", ".yamllint", ".ansible-lint")
    assert result.returncode == 0, result.stdout


@needs_ansible
@pytest.mark.parametrize("playbook", PLAYS)
def test_playbook_syntax(playbook):
    inventory = PLAYBOOKS / "inventory" / "localhost.yml"
    result = _run(
        tool("ansible-playbook"), "--syntax-check", "-i", str(inventory), str(PLAYBOOKS / playbook)
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("role", ROLES)
def test_every_role_has_defaults_specs_handlers_and_a_readme_section(role):
    path = PLAYBOOKS / "roles" / role
    for part in ("defaults/main.yml", "meta/argument_specs.yml", "handlers/main.yml"):
        assert (path / part).is_file(), part
    spec = yaml.safe_load((path / "meta/argument_specs.yml").read_text())
    options = spec["argument_specs"]["main"]["options"]
    defaults = yaml.safe_load((path / "defaults/main.yml").read_text()) or {}
    # Every public default is documented in the spec, and named after the role.
    assert set(defaults) <= set(options), set(defaults) - set(options)
    assert all(name.startswith(role + "_") for name in options)
    readme = (REPO / "docs" / "playbooks.md").read_text()
    assert f"### `{role}`" in readme


def test_plays_start_with_the_preflight_play():
    for name in PLAYS:
        if name in ("preflight.yml", "verify.yml", "allreduce.yml"):  # they provision nothing
            continue
        first = yaml.safe_load((PLAYBOOKS / name).read_text())[0]
        assert first.get("ansible.builtin.import_playbook") == "preflight.yml", name


# (extra vars, text the failure must show)
BAD_VARIABLES = [
    ({"nvidia_driver_flavor": "bogus"}, "nvidia_driver_flavor must be one of: open, proprietary"),
    ({"nvidia_driver_method": "runfile"}, "nvidia_driver_method must be one of: cuda_repo, distro"),
    ({"nvidia_driver_branch": "58"}, "nvidia_driver_branch must be three digits"),
    ({"nvidia_driver_version": "535.104.05-1"}, "must start with the branch"),
    ({"base_kernel_headers": "sometimes"}, "base_kernel_headers must be one of"),
    ({"dl_python_flavor": "rocm"}, "dl_python_flavor must be one of: auto, cuda, cpu"),
    ({"dl_python_venv": "relative/venv"}, "dl_python_venv and dl_python_pip_tmpdir must be abs"),
    ({"dl_python_pip_tmpdir": "tmp"}, "dl_python_venv and dl_python_pip_tmpdir must be abs"),
    ({"nvidia_driver_existing": "keep"}, "nvidia_driver_existing must be one of: adopt, replace"),
    ({"nvidia_driver_persistence": "on"}, "must be one of: auto, enabled, disabled"),
    ({"cuda_toolkit_version": "13"}, 'cuda_toolkit_version must look like "13.0"'),
    ({"jupyter_port": "http"}, "jupyter_port"),
    ({"jupyter_port": 70000}, "jupyter_port must be 1-65535"),
    ({"jupyter_password": ""}, "Set jupyter_password"),
    ({"jupyter_ip": "0.0.0.0"}, "is reachable from the network"),
    ({"jupyter_tls_cert": "/etc/ssl/certs/x.pem"}, "Set both jupyter_tls_cert and jupyter_tls_key"),
    ({"dlcheck_cpu_only": "maybe"}, "dlcheck_cpu_only"),
    ({"dlcheck_source_dir": "/nonexistent"}, "does not hold dlcheck"),
    ({"dlcheck_check_timeout": "soon"}, "dlcheck_check_timeout"),
]
GOOD = {"jupyter_password": "a-test-password"}


@pytest.fixture(scope="module")
def local_inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("inventory") / "local.yml"
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    path.write_text(
        json.dumps({"all": {"children": {"workstations": {"hosts": {"localhost": host}}}}})
    )
    return path


def _site_check(inventory, extra: dict):
    # --check as a second guard: even a missed rejection changes nothing on this machine.
    return run_playbook("site.yml", "-i", str(inventory), "--check", "-e", json.dumps(extra))


@needs_ansible
def test_good_variables_pass_the_preflight(local_inventory):
    result = run_playbook(
        "preflight.yml", "-i", str(local_inventory), "--check", "-e", json.dumps(GOOD)
    )
    assert result.returncode == 0, result
    assert result.recap["localhost"]["changed"] == 0


@needs_ansible
@pytest.mark.parametrize(
    ("extra", "message"),
    BAD_VARIABLES,
    ids=[next(iter(e)) + "=" + str(next(iter(e.values()))) for e, _ in BAD_VARIABLES],
)
def test_bad_variables_are_rejected_before_anything_changes(local_inventory, extra, message):
    result = _site_check(local_inventory, {**GOOD, **extra})
    assert result.returncode != 0, result
    assert message in result.text, result
    # Stopped inside the preflight play: no role's own tasks ran, nothing changed.
    assert "PLAY [Provision deep-learning workstations]" not in result.output
    assert result.recap["localhost"]["changed"] == 0


def test_jupyter_passwd_filter_hashes_with_argon2_and_keeps_a_matching_hash():
    pytest.importorskip("ansible")
    argon2 = pytest.importorskip("argon2")
    sys.path.insert(0, str(PLAYBOOKS / "roles" / "jupyter" / "filter_plugins"))
    try:
        from jupyter_passwd import jupyter_passwd
    finally:
        sys.path.pop(0)
    first = jupyter_passwd("s3cret")
    assert first.startswith("argon2:$argon2id$")
    assert argon2.PasswordHasher().verify(first.removeprefix("argon2:"), "s3cret")
    assert jupyter_passwd("s3cret", first) == first  # rerun: unchanged, so changed=0
    assert jupyter_passwd("other", first) != first  # a new password: a new hash
    assert jupyter_passwd("s3cret", "sha1:old") != "sha1:old"
