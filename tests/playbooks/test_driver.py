"""The nvidia_driver role on every distribution and method the docs claim, with the GPU check
forced (these hosts have no GPU). The distribution x method table in docs/playbooks.md is this
file's (and test_converge.py's) list of proofs.

- Debian 13, distro: Debian's non-free 550 driver really installed (open modules), held, with
  nvidia-persistenced; a rerun changes nothing. Then that same driver is what "came with the
  image": nvidia-smi answers (a stand-in, the one seam: no GPU here) and the role, with the
  defaults (cuda_repo, branch 580), adopts it: no second driver, no pin, holds untouched, a clear
  message with the version; rerun unchanged; `replace` shown in check mode.
- Debian 12, cuda_repo; Debian 13, cuda_repo; Ubuntu 22.04 and 24.04, both methods: NVIDIA's
  repository and Ubuntu's archive are not reachable from here, so check mode, with the rendered
  deb822 source and pin file read from the diff and the package names the role would install.
  The Ubuntu hosts are Debian 12 file systems whose os-release says Ubuntu: that proves the
  role's per-platform variables, templates and package names, not Ubuntu's apt.
- Debian 12 and 13, distro: a branch the release does not ship, and Debian 12's open modules,
  are refused before anything changes.
(Debian 12, distro, converged: test_converge.py's driver host.)
"""

from __future__ import annotations

import json
import os
import re

import pytest

from tests.hosts import nspawn
from tests.playbooks.ansible_runner import run_playbook, tool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="systemd-nspawn needs root"),
    pytest.mark.skipif(bool(nspawn.missing_tools()), reason="needs requirements/apt-playbooks.txt"),
    pytest.mark.skipif(tool("ansible-playbook") is None, reason="needs test-playbooks.txt"),
]

HOSTS = {
    "debian13": "trixie",
    "debian12": "bookworm",
    "ubuntu2204": "bookworm",
    "ubuntu2404": "bookworm",
}
UBUNTU = {
    "ubuntu2204": ("22.04", "jammy", "22.04.5 LTS (Jammy Jellyfish)"),
    "ubuntu2404": ("24.04", "noble", "24.04.3 LTS (Noble Numbat)"),
}
DEBIAN13_DRIVER = [
    *("nvidia-driver", "nvidia-open-kernel-dkms", "firmware-nvidia-gsp"),
    *("nvidia-smi", "libcuda1", "nvidia-persistenced"),
]
FORCED = {"nvidia_driver_force": True}
# The one seam: what nvidia-smi answers on a host whose driver works (no GPU here).
NVIDIA_SMI_STAND_IN = """#!/bin/sh
# Test stand-in: nvidia-smi on a host whose driver works ({version}).
case "$*" in
  *driver_version*) echo {version} ;;
  *-L*) echo "GPU 0: NVIDIA H100 PCIe (UUID: GPU-5e1c0f3e-0000-0000-0000-000000000000)" ;;
  *) echo "NVIDIA-SMI {version}   Driver Version: {version}" ;;
esac
"""


def make_ubuntu(host, version: str, codename: str, pretty: str) -> None:
    """os-release and lsb-release of Ubuntu on a Debian file system (Ansible reads them)."""
    os_release = (
        f'PRETTY_NAME="Ubuntu {pretty}"\nNAME="Ubuntu"\nVERSION_ID="{version}"\n'
        f"VERSION_CODENAME={codename}\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME={codename}\n"
    )
    lsb = f"DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE={version}\nDISTRIB_CODENAME={codename}\n"
    host.ssh("rm -f /etc/os-release && cat > /etc/os-release", input=os_release)
    host.ssh("cat > /etc/lsb-release", input=lsb)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    work = tmp_path_factory.mktemp("driver")
    with nspawn.boot_hosts(
        suites=list(HOSTS.values()), prefix="drv", ssh_port_start=2240, jupyter_port_start=18940
    ) as booted:
        named = dict(zip(HOSTS, booted, strict=True))
        for key, release in UBUNTU.items():
            make_ubuntu(named[key], *release)
        inventories = {
            key: nspawn.write_inventory([host], work / f"{key}.yml", host_vars=FORCED)
            for key, host in named.items()
        }
        both_ubuntus = [named["ubuntu2204"], named["ubuntu2404"]]
        inventories["ubuntu"] = nspawn.write_inventory(
            both_ubuntus, work / "ubuntu.yml", host_vars=FORCED
        )
        yield {"hosts": named, "inventories": inventories}


def driver(hosts, key: str, *args: str):
    return run_playbook("driver.yml", "-i", str(hosts["inventories"][key]), *args)


DEBIAN13_DISTRO = json.dumps(
    {
        "nvidia_driver_method": "distro",
        "nvidia_driver_branch": "550",
        "nvidia_driver_flavor": "open",
    }
)


def test_debian13_distro_driver_installs_holds_and_enables_persistenced(hosts):
    host = hosts["hosts"]["debian13"]
    result = driver(hosts, "debian13", "-e", DEBIAN13_DISTRO)
    assert result.returncode == 0, result
    assert "is a container: the packages are installed" in result.text
    status = host.ssh(
        "dpkg-query -W -f '${Package} ${Status}\\n' " + " ".join(DEBIAN13_DRIVER)
    ).stdout
    for package in DEBIAN13_DRIVER:
        assert f"{package} hold ok installed" in status, status
    assert host.ssh("dpkg-query -W -f '${Version}' nvidia-driver").stdout.startswith("550.")
    assert host.ssh("systemctl is-enabled nvidia-persistenced").stdout.strip() == "enabled"
    assert (
        "--persistence-mode" in host.ssh("systemctl show -P ExecStart nvidia-persistenced").stdout
    )
    source = host.ssh("cat /etc/apt/sources.list.d/debian-nonfree.sources").stdout
    assert "Suites: trixie trixie-updates" in source


def test_debian13_distro_driver_rerun_changes_nothing(hosts):
    result = driver(hosts, "debian13", "-e", DEBIAN13_DISTRO)
    assert result.returncode == 0, result
    (counts,) = result.recap.values()
    assert counts["changed"] == 0, result


@pytest.fixture(scope="module")
def adopted(hosts):
    """The installed 550 driver answers nvidia-smi; the role runs with the defaults (cuda_repo,
    open modules, branch 580) and must adopt it instead of installing a second driver."""
    host = hosts["hosts"]["debian13"]
    version = host.ssh("dpkg-query -W -f '${Version}' nvidia-driver").stdout.split("-")[0]
    host.ssh(
        "cat > /usr/local/bin/nvidia-smi && chmod 755 /usr/local/bin/nvidia-smi",
        input=NVIDIA_SMI_STAND_IN.format(version=version),
    )
    holds = host.ssh("apt-mark showhold").stdout.split()
    first = driver(hosts, "debian13")
    second = driver(hosts, "debian13")
    return {"host": host, "version": version, "holds": holds, "first": first, "second": second}


def test_a_working_driver_is_adopted_with_its_version_named(adopted):
    result = adopted["first"]
    assert result.returncode == 0, result
    message = re.search(
        r"Adopting NVIDIA driver .*? set nvidia_driver_existing: replace", result.text
    )
    assert message, result
    assert f"Adopting NVIDIA driver {adopted['version']} already on" in message[0]
    assert (
        "nvidia-driver " + adopted["version"] in message[0] and "held: nvidia-driver" in message[0]
    )


def test_adopting_installs_no_second_driver_and_no_pin(adopted):
    host = adopted["host"]
    assert adopted["first"].recap[host.name]["changed"] == 0, adopted["first"]
    assert (
        host.ssh("dpkg-query -W -f '${Status}' nvidia-open", check=False).stdout.find(
            "ok installed"
        )
        < 0
    )
    for path in (
        "/etc/apt/sources.list.d/cuda.sources",
        "/etc/apt/preferences.d/nvidia-driver-pin",
    ):
        assert host.ssh(f"test -e {path}", check=False).returncode == 1, path
    assert host.ssh("apt-mark showhold").stdout.split() == adopted["holds"]


def test_adopted_driver_rerun_changes_nothing(adopted):
    result = adopted["second"]
    assert result.returncode == 0 and result.recap[adopted["host"].name]["changed"] == 0, result


def test_replace_releases_the_adopted_driver_in_check_mode(hosts, adopted):
    result = driver(hosts, "debian13", "--check", "--diff", "-e", "nvidia_driver_existing=replace")
    assert result.returncode == 0, result
    released = _task(result.output, "Release the holds on the driver that is replaced")
    assert "changed: [" in released and "(item=nvidia-driver)" in released, released
    assert (
        "method cuda_repo, open modules, branch 580: nvidia-open nvidia-persistenced" in result.text
    )
    source = _new_file(result.output, "Add NVIDIA's CUDA repository (deb822, signed-by)")
    assert (
        "URIs: https://developer.download.nvidia.com/compute/cuda/repos/debian13/x86_64/\n"
        in source
    )
    assert adopted["host"].ssh("apt-mark showhold").stdout.split() == adopted["holds"]  # dry run


def _task(output: str, task: str) -> str:
    return output.split(f"TASK [nvidia_driver : {task}]", 1)[1].split("TASK [", 1)[0]


def _new_file(output: str, task: str) -> str:
    """The content --diff shows for a file `task` creates (its added lines)."""
    lines = _task(output, task).splitlines()
    return "".join(
        line[1:] + "\n" for line in lines if line.startswith("+") and not line.startswith("+++")
    )


def _per_host(output: str, task: str) -> dict[str, str]:
    """The diff a task shows for each host (tasks run on several hosts print one after another)."""
    section = _task(output, task)
    found, current = {}, []
    for line in section.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            current.append(line[1:])
        match = re.match(r"changed: \[(\S+)\]", line)
        if match:
            found[match[1]] = "\n".join(current) + "\n"
            current = []
    return found


@pytest.mark.parametrize(
    ("key", "repo"),
    [("debian12", "debian12"), ("debian13", "debian13")],
)
def test_debian_cuda_repo_in_check_mode_renders_a_signed_source_and_a_branch_pin(hosts, key, repo):
    if key == "debian13":
        # That host has the adopted driver: replace it, as a user moving to NVIDIA's repo would.
        result = driver(hosts, key, "--check", "--diff", "-e", "nvidia_driver_existing=replace")
    else:
        result = driver(hosts, key, "--check", "--diff")
    assert result.returncode == 0, result
    source = _new_file(result.output, "Add NVIDIA's CUDA repository (deb822, signed-by)")
    assert (
        f"URIs: https://developer.download.nvidia.com/compute/cuda/repos/{repo}/x86_64/\n" in source
    )
    assert (
        "Suites: /\n" in source
        and "Signed-By: /usr/share/keyrings/cuda-archive-keyring.gpg\n" in source
    )
    pin = _new_file(result.output, "Pin the driver to its branch")
    # 999: the branch wins over other versions, yet apt never downgrades a newer driver.
    assert "Pin: version 580.*\nPin-Priority: 999" in pin
    assert "Pin: origin developer.download.nvidia.com\nPin-Priority: 600" in pin
    assert (
        "apt source is new, so apt cannot resolve nvidia-open, nvidia-persistenced" in result.text
    )
    if key == "debian12":
        assert (
            hosts["hosts"][key]
            .ssh("test -e /etc/apt/sources.list.d/cuda.sources", check=False)
            .returncode
            == 1
        )


@pytest.mark.parametrize("method", ["cuda_repo", "distro"])
def test_ubuntu_in_check_mode_renders_the_right_source_and_packages(hosts, method):
    result = run_playbook(
        "driver.yml",
        *("-i", str(hosts["inventories"]["ubuntu"]), "--check", "--diff"),
        *("-e", f"nvidia_driver_method={method}"),
    )
    assert result.returncode == 0, result
    names = {key: hosts["hosts"][key].name for key in UBUNTU}
    if method == "cuda_repo":
        sources = _per_host(result.output, "Add NVIDIA's CUDA repository (deb822, signed-by)")
        for key, name in names.items():
            assert f"cuda/repos/{key}/x86_64/" in sources[name], sources
        for version in ("22.04", "24.04"):
            packages = "nvidia-open nvidia-persistenced"
            assert (
                f"Ubuntu {version}, method cuda_repo, open modules, branch 580: {packages}"
                in result.text
            )
    else:
        for version in ("22.04", "24.04"):
            packages = "nvidia-headless-580-server-open nvidia-utils-580-server"
            assert (
                f"Ubuntu {version}, method distro, open modules, branch 580: {packages}"
                in result.text
            )
        assert "debian-nonfree" not in result.output  # Ubuntu's archive needs no extra source


def test_a_branch_the_release_does_not_ship_is_refused(hosts):
    for key, codename, ships in (("debian12", "bookworm", "535"), ("debian13", "trixie", "550")):
        result = driver(
            hosts,
            key,
            "-e",
            '{"nvidia_driver_method": "distro", "nvidia_driver_existing": "replace"}',
        )
        assert result.returncode != 0
        assert f"Debian {codename} ships driver branch {ships}, not 580" in result.text, result
        assert "Nothing was changed" in result.text


def test_debian12_open_modules_are_refused_with_a_fix(hosts):
    args = '{"nvidia_driver_method": "distro", "nvidia_driver_branch": "535"}'
    result = driver(hosts, "debian12", "-e", args)
    assert result.returncode != 0
    assert (
        "Set nvidia_driver_flavor: proprietary, or use nvidia_driver_method: cuda_repo"
        in result.text
    )
