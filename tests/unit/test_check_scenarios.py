"""Each fault scenario -> the right check status, code and fix (facts from the real collectors)."""

import dataclasses

import pytest

from dlcheck import checks
from dlcheck.models import ExitCode, Status
from tests.fakes import probes
from tests.fakes.facts import make_facts
from tests.fakes.host import gpu_host, make_roots

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml, clean_env
pytestmark = pytest.mark.usefixtures("clean_env")


def facts_for(fake_nvml, tmp_path, nvml_scenario, roots=None, fw=None):
    fake_nvml(nvml_scenario)
    return make_facts(roots or gpu_host(tmp_path), fw)


def run(facts, cpu_ok=False, strict=False):
    results = checks.run_all(facts)
    verdict, code = checks.verdict(results, facts, cpu_ok=cpu_ok, strict=strict)
    for r in results:  # invariants of every result
        assert isinstance(r.status, Status) and r.code and "\n" not in r.message
        if r.status in (Status.WARN, Status.FAIL):
            assert r.fix, r.code
    return {r.code: r for r in results}, verdict, code


def test_healthy_gpu_machine_is_ready(fake_nvml, tmp_path):
    found, verdict, code = run(facts_for(fake_nvml, tmp_path, "healthy_single", fw=probes.HEALTHY))
    assert (verdict, code) == ("ready", ExitCode.READY)
    assert found["nvml_ok"].status is Status.PASS
    assert found["torch_gpu"].status is Status.PASS
    assert found["tensorflow_gpu"].status is Status.PASS
    assert not [r for r in found.values() if r.status in (Status.WARN, Status.FAIL)]


def test_several_gpus(fake_nvml, tmp_path):
    facts = facts_for(fake_nvml, tmp_path, "multi_gpu", roots=gpu_host(tmp_path, gpus=4))
    found, verdict, _ = run(facts)
    assert verdict == "ready" and "4 GPU(s)" in found["nvml_ok"].message


def test_no_gpu_at_all_is_cpu_only_not_a_wall_of_fails(fake_nvml, tmp_path):
    roots = make_roots(tmp_path)
    fw = {"torch": probes.torch_cpu(), "keras": probes.keras()}
    facts = facts_for(fake_nvml, tmp_path, "no_library", roots=roots, fw=fw)
    found, verdict, code = run(facts)
    assert (verdict, code) == ("cpu_only", ExitCode.CPU_ONLY)
    assert found["no_nvidia_gpu"].status is Status.INFO
    assert found["torch_cpu"].status is Status.INFO
    assert not [r for r in found.values() if r.status is Status.FAIL]
    assert run(facts, cpu_ok=True)[2] == ExitCode.READY


def test_container_without_gpu_access_says_so(fake_nvml, tmp_path):
    roots = make_roots(tmp_path, container_env="docker")
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "no_library", roots=roots))
    assert "--gpus all" in found["no_nvidia_gpu"].fix


def test_gpu_present_but_no_driver_library(fake_nvml, tmp_path):
    roots = make_roots(tmp_path, pci=[("0000:01:00.0", None)])
    found, verdict, code = run(facts_for(fake_nvml, tmp_path, "no_library", roots=roots))
    assert found["nvml_library_missing"].status is Status.FAIL
    assert (verdict, code) == ("not_ready", ExitCode.NOT_READY)


def test_driver_not_loaded(fake_nvml, tmp_path):
    roots = make_roots(tmp_path, pci=[("0000:01:00.0", None)], nvml_library="550.54.14")
    found, verdict, _ = run(facts_for(fake_nvml, tmp_path, "driver_not_loaded", roots=roots))
    assert found["driver_not_loaded"].status is Status.FAIL
    assert "modprobe nvidia" in found["driver_not_loaded"].fix
    assert verdict == "not_ready"


def test_nouveau_bound_while_nvidia_is_not(fake_nvml, tmp_path):
    roots = make_roots(tmp_path, pci=[("0000:01:00.0", "nouveau")], modules=["nouveau"])
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "driver_not_loaded", roots=roots))
    assert found["nouveau_bound"].status is Status.FAIL
    assert "0000:01:00.0" in found["nouveau_bound"].message
    assert "blacklist nouveau" in found["nouveau_bound"].fix


def test_driver_library_version_mismatch(fake_nvml, tmp_path):
    roots = gpu_host(tmp_path, version="550.54.14", nvml_library="550.120")
    found, verdict, _ = run(facts_for(fake_nvml, tmp_path, "version_mismatch", roots=roots))
    result = found["driver_library_mismatch"]
    assert result.status is Status.FAIL
    assert "550.54.14" in result.message and "550.120" in result.message
    assert "reboot" in result.fix and "apt-mark hold" in result.fix
    assert result.evidence["nvidia_module_version"] == "550.54.14"
    assert verdict == "not_ready"


def test_kernel_module_older_than_working_library_is_a_mismatch(fake_nvml, tmp_path):
    roots = gpu_host(tmp_path, version="570.86.15", nvml_library="580.82.07")
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "healthy_single", roots=roots))
    assert found["driver_library_mismatch"].status is Status.FAIL


def test_no_permission(fake_nvml, tmp_path):
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "no_permission"))
    assert found["nvml_no_permission"].status is Status.FAIL
    assert "/dev/nvidia" in found["nvml_no_permission"].fix


def test_one_gpu_lost_while_the_other_works(fake_nvml, tmp_path):
    facts = facts_for(fake_nvml, tmp_path, "gpu_lost", roots=gpu_host(tmp_path, gpus=2))
    found, verdict, _ = run(facts)
    assert found["gpu_lost"].status is Status.FAIL
    assert (
        found["gpu_lost"].evidence["index"] == 1 and "1 other(s) work" in found["gpu_lost"].message
    )
    assert verdict == "not_ready" and len(facts.usable_gpus) == 1


def test_consumer_card_not_supported_fields_do_not_fail(fake_nvml, tmp_path):
    found, verdict, _ = run(facts_for(fake_nvml, tmp_path, "consumer_not_supported"))
    assert verdict == "ready"
    assert found["persistence_mode_off"].status is Status.WARN
    assert "pcie_link_degraded" not in found  # P8 idle: a downtrained link is normal
    assert not {"ecc_uncorrected", "row_remap_pending", "page_retirement_pending"} & set(found)


def test_old_driver_missing_functions_is_info(fake_nvml, tmp_path):
    found, verdict, _ = run(facts_for(fake_nvml, tmp_path, "old_driver_function_not_found",
                                      roots=gpu_host(tmp_path, version="470.256.02")))  # fmt: skip
    assert found["nvml_functions_missing"].status is Status.INFO
    assert verdict == "ready"


def test_old_driver_vs_new_framework_cuda(fake_nvml, tmp_path):
    fw = {"torch": probes.torch_gpu(cuda="13.0"), "tensorflow": probes.tensorflow_gpu()}
    roots = gpu_host(tmp_path, version="535.183.01")
    found, verdict, _ = run(facts_for(fake_nvml, tmp_path, "old_driver_new_framework", roots, fw))
    torch_result = found["driver_too_old_for_torch"]
    assert torch_result.status is Status.FAIL and "580.65.06" in torch_result.message
    assert found["driver_old_for_tensorflow"].status is Status.WARN  # 12.5 on a 12.2 driver
    assert verdict == "not_ready"


def test_very_old_driver_vs_tensorflow_cuda12(fake_nvml, tmp_path):
    fw = {"tensorflow": probes.tensorflow_gpu()}
    roots = gpu_host(tmp_path, version="470.256.02")
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "very_old_driver", roots, fw))
    assert found["driver_too_old_for_tensorflow"].status is Status.FAIL
    assert "525.60.13" in found["driver_too_old_for_tensorflow"].message


def test_pascal_card_with_a_cuda13_wheel_names_cu126(fake_nvml, tmp_path):
    fw = {"torch": probes.torch_gpu(cuda="13.0")}
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "pascal", fw=fw))
    result = found["arch_unsupported_torch"]
    assert result.status is Status.FAIL and "sm_61" in result.message
    assert "whl/cu126" in result.fix


def test_new_card_with_an_old_wheel_names_cu130(fake_nvml, tmp_path):
    from tests.fakes.nvml import _with

    blackwell = _with({"name": "NVIDIA GeForce RTX 5090", "compute_cap": "12.0",
                       "architecture": "Blackwell"})  # fmt: skip
    old = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"]
    fw = {"torch": probes.torch_gpu(cuda="12.6", arch_list=old)}
    found, _, _ = run(facts_for(fake_nvml, tmp_path, blackwell, fw=fw))
    assert "whl/cu130" in found["arch_unsupported_torch"].fix


def test_cpu_only_builds_on_a_gpu_machine(fake_nvml, tmp_path):
    fw = {"torch": probes.torch_cpu(), "tensorflow": probes.tensorflow_gpu(cuda_build=False)}
    found, verdict, _ = run(facts_for(fake_nvml, tmp_path, "healthy_single", fw=fw))
    assert found["torch_cpu_build"].status is Status.FAIL
    assert "pip install --force-reinstall torch" in found["torch_cpu_build"].fix
    assert "tensorflow[and-cuda]" in found["tensorflow_cpu_build"].fix
    assert verdict == "not_ready"


def test_framework_sees_no_gpu_because_of_cuda_visible_devices(fake_nvml, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    fw = {"torch": probes.torch_gpu(gpu_count=0)}
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "healthy_single", fw=fw))
    assert found["torch_no_gpu"].status is Status.FAIL
    assert "unset CUDA_VISIBLE_DEVICES" in found["torch_no_gpu"].fix


def test_framework_sees_no_gpu_in_a_container(fake_nvml, tmp_path):
    fw = {"tensorflow": probes.tensorflow_gpu(gpu_count=0)}
    roots = gpu_host(tmp_path, container_env="docker")
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "healthy_single", roots=roots, fw=fw))
    assert "--gpus all" in found["tensorflow_no_gpu"].fix


def test_framework_sees_no_gpu_outside_a_container_is_not_told_about_docker(fake_nvml, tmp_path):
    fw = {"tensorflow": probes.tensorflow_gpu(gpu_count=0)}
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "healthy_single", fw=fw))
    assert "--gpus" not in found["tensorflow_no_gpu"].fix
    assert "import tensorflow" in found["tensorflow_no_gpu"].fix


def test_cudnn_loaded_differs_and_system_copy_shadows(fake_nvml, tmp_path, monkeypatch):
    libdir = tmp_path / "cudnn"
    libdir.mkdir()
    (libdir / "libcudnn.so.8.9.7").write_text("")
    monkeypatch.setenv("LD_LIBRARY_PATH", str(libdir))
    fw = {"torch": probes.torch_gpu(cudnn="8.9.7", cudnn_built="9.24.0")}
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "healthy_single", fw=fw))
    result = found["cudnn_mismatch_torch"]
    assert result.status is Status.WARN and "libcudnn.so.8.9.7" in result.message


def test_system_cudnn_of_another_major_shadows_tensorflows(fake_nvml, tmp_path, monkeypatch):
    libdir = tmp_path / "cudnn"
    libdir.mkdir()
    (libdir / "libcudnn.so.8").write_text("")
    monkeypatch.setenv("LD_LIBRARY_PATH", f"/nonexistent:{libdir}")
    fw = {"tensorflow": probes.tensorflow_gpu()}
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "healthy_single", fw=fw))
    assert found["cudnn_shadowed_tensorflow"].status is Status.WARN


def test_wrong_gpu_matmul_fails(fake_nvml, tmp_path):
    fw = {"torch": probes.torch_gpu(ok=False)}
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "healthy_single", fw=fw))
    assert found["torch_gpu_compute_failed"].status is Status.FAIL


def test_keras_backend_that_cannot_load(fake_nvml, tmp_path):
    fw = {"keras": probes.keras(backend="jax", source="KERAS_BACKEND", error="ImportError: jax")}
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "healthy_single", fw=fw))
    assert found["keras_backend_broken"].status is Status.FAIL
    assert "KERAS_BACKEND" in found["keras_backend_broken"].message


@pytest.mark.parametrize(
    "name, code, status",
    [
        ("row_remap_pending", "row_remap_pending", Status.FAIL),
        ("page_retirement", "page_retirement_pending", Status.FAIL),
        ("page_retirement", "retired_pages_exceeded", Status.FAIL),
        ("ecc_uncorrected", "ecc_uncorrected", Status.FAIL),
        ("throttled", "gpu_throttled", Status.WARN),
        ("pcie_degraded", "pcie_link_degraded", Status.WARN),
        ("host_limited", "pcie_host_limited", Status.INFO),
        ("persistence_off", "persistence_mode_off", Status.WARN),
        ("mig", "mig_enabled", Status.INFO),
        ("fabric_manager_down", "fabric_manager_not_ready", Status.FAIL),
    ],
)
def test_gpu_health(fake_nvml, tmp_path, name, code, status):
    gpus = 8 if name == "fabric_manager_down" else 1
    found, _, _ = run(facts_for(fake_nvml, tmp_path, name, roots=gpu_host(tmp_path, gpus=gpus)))
    assert found[code].status is status


def test_device_nodes_fewer_than_gpus(fake_nvml, tmp_path):
    roots = gpu_host(tmp_path, gpus=4, nodes=["nvidiactl", "nvidia0"])
    found, _, _ = run(facts_for(fake_nvml, tmp_path, "multi_gpu", roots=roots))
    assert found["device_nodes_mismatch"].status is Status.WARN


def test_too_little_ram_and_disk(fake_nvml, tmp_path):
    facts = facts_for(fake_nvml, tmp_path, "healthy_single")
    system = facts.system
    cache = dataclasses.replace(system.disk.dataset_cache, free_mib=100)
    system = dataclasses.replace(
        system,
        memory=dataclasses.replace(system.memory, total_mib=1500, available_mib=900),
        disk=dataclasses.replace(system.disk, dataset_cache=cache),
    )
    found, verdict, _ = run(dataclasses.replace(facts, system=system))
    ram = found["ram_for_benchmark"]
    assert ram.status is Status.WARN and "keras (~5600 MiB), torch (~2300 MiB)" in ram.message
    assert ram.fix.startswith("dlcheck bench --impl torch-sparse")
    tiny = dataclasses.replace(system.memory, total_mib=500, available_mib=400)
    starved = run(dataclasses.replace(facts, system=dataclasses.replace(system, memory=tiny)))[0]
    assert starved["ram_for_benchmark"].status is Status.FAIL
    assert (
        found["disk_dataset_cache"].status is Status.FAIL
        and "KERAS_HOME" in found["disk_dataset_cache"].fix
    )
    assert verdict == "not_ready"


def test_performance_env_var_and_strict(fake_nvml, tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_LAUNCH_BLOCKING", "1")
    facts = facts_for(fake_nvml, tmp_path, "healthy_single")
    found, verdict, _ = run(facts)
    assert found["performance_env_var"].status is Status.WARN and verdict == "ready"
    assert run(facts, strict=True)[2] == ExitCode.NOT_READY


def test_tensorflow_cuda_build_that_cannot_dlopen_its_libraries(fake_nvml, tmp_path):
    from dataclasses import replace

    fw = {"tensorflow": probes.tensorflow_gpu(gpu_count=0)}
    facts = facts_for(fake_nvml, tmp_path, "healthy_single", fw=fw)
    tail = ("W0000 gpu_device.cc:2344] Cannot dlopen some GPU libraries. Please make sure the "
            "missing libraries mentioned above are installed properly\n")  # fmt: skip
    tf = facts.frameworks["tensorflow"]
    probe = replace(tf.probe, stderr_tail=tail)
    facts = replace(facts, frameworks={"tensorflow": replace(tf, probe=probe)})
    found, verdict, _ = run(facts)
    result = found["tensorflow_cuda_libraries_missing"]
    assert result.status is Status.FAIL and verdict == "not_ready"
    assert "tensorflow[and-cuda]" in result.fix and "--gpus" not in result.fix
    assert "Cannot dlopen some GPU libraries" in result.evidence["dlopen_messages"][0]


def test_framework_that_could_not_be_probed_is_never_ready(fake_nvml, tmp_path):
    from dataclasses import replace

    from dlcheck.frameworks import ProbeResult, ProbeRun

    facts = facts_for(fake_nvml, tmp_path, "healthy_single", fw=probes.HEALTHY)
    hung = ProbeResult("torch", installed=None, error="probe did not answer within 120 s",
                       probe=ProbeRun("timeout", 120.0, None))  # fmt: skip
    found, verdict, code = run(replace(facts, frameworks={**facts.frameworks, "torch": hung}))
    assert found["torch_probe_failed"].status is Status.FAIL
    assert "--timeout" in found["torch_probe_failed"].fix
    assert (verdict, code) == ("not_ready", ExitCode.NOT_READY)


@pytest.mark.parametrize(
    "driver, expected",
    [
        ("580.82.07", "whl/cu130"),  # the newest wheel this driver runs
        ("570.86.15", "whl/cu128"),  # cu130 needs 580: the fix names the wheel that runs
        ("535.183.01", "whl/cu126"),
        ("470.256.02", "Upgrade the NVIDIA driver first"),  # none runs: say so, then the wheel
    ],
)
def test_torch_install_fix_follows_the_driver(fake_nvml, tmp_path, driver, expected):
    from tests.fakes.nvml import _with

    cuda = {"580": "13.0", "570": "12.8", "535": "12.2", "470": "11.4"}[driver[:3]]
    scenario = _with({}, driver={"version": driver, "nvml_version": f"12.{driver}",
                                 "cuda_driver_version": cuda})  # fmt: skip
    fw = {"torch": probes.torch_cpu()}
    found, _, _ = run(facts_for(fake_nvml, tmp_path, scenario, roots=gpu_host(tmp_path, driver),
                                fw=fw))  # fmt: skip
    fix = found["torch_cpu_build"].fix
    assert expected in fix and "--index-url https://download.pytorch.org/whl/cu" in fix
