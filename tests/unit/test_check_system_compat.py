"""Host facts from temp /proc /sys /dev trees, and the compatibility data file."""

import os

import pytest

from dlcheck import compat, system
from tests.fakes.host import gpu_host, make_roots

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml, clean_env
pytestmark = pytest.mark.usefixtures("clean_env")


def test_kernel_side_of_a_working_driver(tmp_path):
    kernel = system.kernel_side(gpu_host(tmp_path, version="580.82.07", gpus=2))
    assert kernel.nvidia_module_loaded and not kernel.nouveau_module_loaded
    assert kernel.nvidia_module_version == "580.82.07"
    assert kernel.nvml_library_version == "580.82.07"
    assert [g.driver for g in kernel.pci_gpus] == ["nvidia", "nvidia"]
    assert kernel.device_nodes.gpu_nodes == ["nvidia0", "nvidia1"]


def test_nouveau_binding_and_missing_nodes(tmp_path):
    roots = make_roots(tmp_path, pci=[("0000:01:00.0", "nouveau")], modules=["nouveau"])
    kernel = system.kernel_side(roots)
    assert kernel.pci_gpus == [system.PciGpu("0000:01:00.0", "0x2331", "nouveau")]
    assert kernel.nouveau_module_loaded and not kernel.nvidia_module_loaded
    assert kernel.nvidia_module_version is None and kernel.device_nodes.present == []


def test_container_and_wsl_detection(tmp_path):
    roots = make_roots(tmp_path, container_env="systemd-nspawn",
                       osrelease="5.15.153.1-microsoft-standard-WSL2")  # fmt: skip
    virt = system.collect(roots).virtualization
    assert virt.container == "systemd-nspawn" and virt.wsl is True


def test_facts_read_from_the_roots(tmp_path):
    facts = system.collect(make_roots(tmp_path))
    assert facts.os == "Test Linux 1" and facts.cpu.model == "Test CPU"
    assert facts.memory == system.Memory(total_mib=16000, available_mib=11718)


def test_dataset_cache_follows_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert system.dataset_cache_dir() == tmp_path / "kh" / "datasets"
    cache = system.collect(make_roots(tmp_path)).disk.dataset_cache
    assert cache.free_mib > 0  # measured on the nearest existing parent
    assert cache.writable and cache.problem is None  # it can be created there


@pytest.mark.parametrize(
    "make, words",
    [
        (lambda home: home.write_text("a file"), "is a file, not a folder"),
        (lambda home: (home / "datasets").mkdir(parents=True) or (home / "datasets").chmod(0o500),
         "not writable"),
    ],
)  # fmt: skip
def test_dataset_cache_that_cannot_be_written(tmp_path, monkeypatch, make, words):
    home = tmp_path / "kh"
    make(home)
    monkeypatch.setenv("KERAS_HOME", str(home))
    cache = system.collect(make_roots(tmp_path / "roots")).disk.dataset_cache
    if os.geteuid() == 0 and "writable" in words:  # root writes anywhere but read-only mounts
        assert cache.problem is None
        return
    assert cache.writable is False and words in cache.problem


def test_every_table_row_cites_a_source():
    data = compat.data()
    for table in ("cuda_min_driver", "torch_wheels", "tensorflow_tested", "architectures"):
        assert "source" in str(data[table]).lower() or "_doc" in data[table]
    assert all(row["source"].startswith("https://") for row in data["cuda_min_driver"]["rows"])


@pytest.mark.parametrize(
    "cc, archs, ok",
    [
        ("8.6", ["sm_80"], True),  # same major, newer minor runs SASS
        ("8.0", ["sm_86"], False),
        ("6.1", ["sm_75", "sm_80", "compute_90"], False),
        ("12.0", ["sm_90", "compute_90"], True),  # PTX JIT forward
        ("12.0", ["sm_90"], False),
    ],
)
def test_arch_support(cc, archs, ok):
    assert compat.arch_supported(cc, archs) is ok


def test_min_driver_and_wheel_choice():
    assert compat.min_driver_for_cuda("13.0")["family_min"] == "580.65.06"
    assert compat.min_driver_for_cuda("12.6")["family_min"] == "525.60.13"
    assert compat.min_driver_for_cuda("12.8")["release_min"] == "570.26"
    assert compat.min_driver_for_cuda("10.2") is None
    assert [w["flavour"] for w in compat.torch_wheels_covering(["6.1"])] == ["cu126"]
    assert compat.torch_wheels_covering(["12.0"])[0]["flavour"] == "cu130"
    assert compat.torch_wheels_covering(["6.1", "12.0"]) == []  # no one wheel covers both
    assert compat.driver_meets("570.86.15", "12.8") and not compat.driver_meets("570.86.15", "13.0")
    assert compat.architecture("8.9") == "Ada Lovelace" and compat.architecture("9.0") == "Hopper"
    assert compat.tensorflow_tested("2.21.0")["cudnn"] == "9.3"
