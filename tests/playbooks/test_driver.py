"""The nvidia_driver role on fresh Debian 12 hosts, with the GPU check forced.

- distro method: Debian's non-free nvidia-driver really installed, as far as a container allows
  (DKMS registers the module; no kernel module can load here): packages, holds, the nouveau
  blacklist, the modprobe configuration, an idempotent rerun.
- cuda_repo method: NVIDIA's repository is not reachable from here, so check mode, with the
  rendered deb822 source and pin file read from the diff.
"""

from __future__ import annotations

import os

import pytest

from tests.hosts import nspawn
from tests.playbooks.ansible_runner import run_playbook, tool

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.geteuid() != 0, reason="systemd-nspawn needs root"),
    pytest.mark.skipif(bool(nspawn.missing_tools()), reason="needs requirements/apt-playbooks.txt"),
    pytest.mark.skipif(tool("ansible-playbook") is None, reason="needs test-playbooks.txt"),
]

# Debian 12's open module package lags the driver's security updates: proprietary it is.
DEBIAN_PACKAGES = ["nvidia-driver", "nvidia-kernel-dkms", "nvidia-smi", "libcuda1"]
FORCED = {"nvidia_driver_force": True}


@pytest.fixture(scope="module")
def hosts(tmp_path_factory):
    work = tmp_path_factory.mktemp("driver")
    with nspawn.boot_hosts(2, prefix="drv", ssh_port_start=2240, jupyter_port_start=18940) as pair:
        distro, cuda = pair
        yield {
            "distro": (
                distro,
                nspawn.write_inventory(
                    [distro],
                    work / "distro.yml",
                    host_vars={
                        **FORCED,
                        "nvidia_driver_method": "distro",
                        "nvidia_driver_branch": "535",
                        "nvidia_driver_flavor": "proprietary",
                    },
                ),
            ),
            "cuda": (
                cuda,
                nspawn.write_inventory(
                    [cuda],
                    work / "cuda.yml",
                    host_vars={**FORCED, "nvidia_driver_method": "cuda_repo"},
                ),
            ),
        }


def test_debian_distro_driver_installs_holds_and_blacklists(hosts):
    host, inventory = hosts["distro"]
    result = run_playbook("driver.yml", "-i", str(inventory))
    assert result.returncode == 0, result
    assert "is a container: the packages are installed" in result.text

    status = host.ssh(
        "dpkg-query -W -f '${Package} ${Status}\\n' " + " ".join(DEBIAN_PACKAGES)
    ).stdout
    for package in DEBIAN_PACKAGES:
        assert f"{package} hold ok installed" in status, status
    holds = host.ssh("apt-mark showhold").stdout.split()
    assert set(DEBIAN_PACKAGES) <= set(holds)
    assert host.ssh("dpkg-query -W -f '${Version}' nvidia-driver").stdout.startswith("535.")

    # DKMS knows the module (it cannot build it without the machine kernel's headers).
    assert "nvidia-current" in host.ssh("dkms status").stdout

    # modprobe's effective configuration carries the blacklist and the module options.
    config = host.ssh("modprobe --showconfig").stdout
    assert "blacklist nouveau" in config
    assert "options nouveau modeset=0" in config
    assert "options nvidia_drm modeset=1" in config.replace("nvidia-drm", "nvidia_drm")

    unattended = host.ssh("cat /etc/apt/apt.conf.d/51nvidia-driver-hold").stdout
    assert "Unattended-Upgrade::Package-Blacklist" in unattended and '"nvidia-";' in unattended
    source = host.ssh("cat /etc/apt/sources.list.d/debian-nonfree.sources").stdout
    assert "Components: contrib non-free non-free-firmware" in source
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in source


def test_debian_distro_driver_rerun_changes_nothing(hosts):
    _, inventory = hosts["distro"]
    result = run_playbook("driver.yml", "-i", str(inventory))
    assert result.returncode == 0, result
    (counts,) = result.recap.values()
    assert counts["changed"] == 0, result


def test_debian_branch_mismatch_is_refused_with_a_fix(hosts):
    _, inventory = hosts["distro"]
    result = run_playbook("driver.yml", "-i", str(inventory), "-e", "nvidia_driver_branch=580")
    assert result.returncode != 0
    assert "Debian bookworm ships driver branch 535, not 580" in result.text


def test_debian_open_modules_are_refused_with_a_fix(hosts):
    _, inventory = hosts["distro"]
    result = run_playbook("driver.yml", "-i", str(inventory), "-e", "nvidia_driver_flavor=open")
    assert result.returncode != 0
    assert "Set nvidia_driver_flavor: proprietary, or use nvidia_driver_method: cuda_repo" in (
        result.text
    )


def _new_file(output: str, task: str) -> str:
    """The content --diff shows for a file `task` creates (its added lines)."""
    section = output.split(f"TASK [nvidia_driver : {task}]", 1)[1].split("TASK [", 1)[0]
    lines = section.splitlines()
    return "".join(
        line[1:] + "\n" for line in lines if line.startswith("+") and not line.startswith("+++")
    )


def test_cuda_repo_in_check_mode_renders_a_signed_deb822_source_and_a_branch_pin(hosts):
    host, inventory = hosts["cuda"]
    result = run_playbook("driver.yml", "-i", str(inventory), "--check", "--diff")
    assert result.returncode == 0, result
    source = _new_file(result.output, "Add NVIDIA's CUDA repository (deb822, signed-by)")
    assert "Types: deb\n" in source
    assert (
        "URIs: https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/\n"
        in source
    )
    assert "Suites: /\n" in source
    assert "Signed-By: /usr/share/keyrings/cuda-archive-keyring.gpg\n" in source
    pin = _new_file(result.output, "Pin the driver to its branch")
    assert "Pin: version 580.*\nPin-Priority: 1000" in pin
    assert "Pin: origin developer.download.nvidia.com\nPin-Priority: 600" in pin
    assert "the apt source is new, so apt cannot resolve nvidia-open" in result.output.replace(
        "\n", " "
    )
    # Check mode wrote nothing.
    assert host.ssh("test -e /etc/apt/sources.list.d/cuda.sources", check=False).returncode == 1
