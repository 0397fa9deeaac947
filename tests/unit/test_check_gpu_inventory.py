"""dlcheck.gpu against the fake NVML: units, fallbacks, lost GPUs, masking."""

import json
import re
import subprocess
import sys

import pytest

from dlcheck import compat, gpu
from tests.fakes.nvml import FIXTURES, load_fixture, scenario

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml, clean_env
pytestmark = pytest.mark.usefixtures("clean_env")

CLEAN = [
    "healthy_single",
    "multi_gpu",
    "consumer_not_supported",
    "pascal",
    "row_remap_pending",
    "page_retirement",
    "throttled",
    "pcie_degraded",
    "host_limited",
    "mig",
    "persistence_off",
]


@pytest.mark.parametrize("name", CLEAN)
def test_records_round_trip_through_raw_nvml_units(fake_nvml, name):
    # The fake encodes MiB -> bytes, W -> mW, "9.0" -> (9, 0), hex -> int; gpu.py must decode back.
    expected = scenario(name)
    fake_nvml(expected)
    data = gpu.collect(show_ids=True)
    assert data.nvml.error is None
    assert vars(data.driver) == expected["driver"]
    assert data.gpus == expected["gpus"]
    assert all(list(record) == list(gpu.FIELDS) for record in data.gpus)


@pytest.mark.parametrize("fixture", sorted(p.name for p in FIXTURES.glob("gpu_*.json")))
def test_replay_fixtures_round_trip(fake_nvml, fixture):
    # A capture of `dlcheck gpu --json --show-ids` from a real GPU, dropped in tests/fixtures,
    # replays through the fake unchanged: the fake speaks the same format.
    expected = load_fixture(fixture)
    fake_nvml(expected)
    assert gpu.collect(show_ids=True).gpus == expected["gpus"]


def test_ids_are_masked_unless_asked(fake_nvml):
    fake_nvml("healthy_single")
    record = gpu.collect().gpus[0]
    assert re.fullmatch(r"GPU-masked-[0-9a-f]{8}", record["uuid"])
    assert re.fullmatch(r"masked-[0-9a-f]{8}", record["serial"])
    assert "3f1c2a7e" not in record["uuid"] and "1650123456789" not in record["serial"]
    assert record["pci.bus_id"] == "00000000:01:00.0"  # not an identity, kept


def test_masks_are_distinct_per_gpu_stable_across_runs_and_keyed(fake_nvml, monkeypatch):
    fake_nvml("multi_gpu")
    first = [g["uuid"] for g in gpu.collect().gpus]
    assert len(set(first)) == 4  # every GPU can be told apart
    assert [g["uuid"] for g in gpu.collect().gpus] == first  # and found again next run
    monkeypatch.setenv("DLCHECK_MASK_KEY", "a site's own secret")
    assert not set(first) & {g["uuid"] for g in gpu.collect().gpus}


def test_mig_devices_have_their_own_memory_and_masked_uuids(fake_nvml):
    fake_nvml("mig")
    record = gpu.collect().gpus[0]
    devices = record["mig.devices"]
    assert [(d["index"], d["memory_total"], d["memory_used"]) for d in devices] == [
        (0, 40192, 13), (1, 40192, 37)]  # fmt: skip
    assert all(d["uuid"].startswith("MIG-masked-") for d in devices)
    assert record["utilization.gpu"] is None  # NVML gives no utilization with MIG on


def test_busy_gpu_lists_its_processes_with_user_type_and_command(fake_nvml):
    fake_nvml("busy")
    record = gpu.collect().gpus[0]
    (proc,) = record["processes"]
    assert proc["type"] == "C+G" and proc["used_memory"] == 60100
    assert proc["user"] and "python" in (proc["command"] or "") + (proc["process_name"] or "")
    assert (record["utilization.gpu"], record["memory.used"]) == (95, 60212)


def test_nvlink_links_until_nvml_says_no_more(fake_nvml):
    fake_nvml("multi_gpu")
    links = gpu.collect().gpus[0]["nvlink.links"]
    assert len(links) == 18 and all(link["active"] for link in links)
    fake_nvml("healthy_single")
    assert gpu.collect().gpus[0]["nvlink.links"] is None


def test_old_driver_falls_back_to_older_calls(fake_nvml):
    fake = fake_nvml("old_driver_function_not_found")
    data = gpu.collect(show_ids=True)
    record = data.gpus[0]
    assert record["error"] is None
    assert record["memory.total"] == 81559  # v1 memory info after v2 was missing
    assert "nvmlDeviceGetCurrentClocksThrottleReasons" in fake.calls
    assert record["clocks_event_reasons.decoded"] == []
    assert "nvmlDeviceGetComputeRunningProcesses_v2" in fake.calls
    assert record["processes"] == []
    assert record["pcie.link.gen.gpumax"] is None and record["remapped_rows.pending"] is None
    assert "nvmlDeviceGetCurrentClocksEventReasons" in data.nvml.missing_functions
    assert data.driver.cuda_driver_version == "11.4"


def test_lost_gpu_gets_an_error_record_and_the_others_stay(fake_nvml):
    fake_nvml("gpu_lost")
    gpus = gpu.collect().gpus
    assert [g["error"] for g in gpus] == [None, "gpu_lost"]
    assert gpus[0]["memory.total"] == 81559
    assert gpus[1]["memory.total"] is None and gpus[1]["index"] == 1


@pytest.mark.parametrize(
    "name, reason",
    [
        ("no_library", "library_missing"),
        ("driver_not_loaded", "driver_not_loaded"),
        ("version_mismatch", "version_mismatch"),
        ("no_permission", "no_permission"),
    ],
)
def test_init_failures_are_named_not_raised(fake_nvml, name, reason):
    fake_nvml(name)
    data = gpu.collect()
    assert data.nvml.error == reason
    assert data.gpus == [] and data.driver.version is None


def test_clocks_event_reasons_decode_to_words():
    assert gpu.decode_clocks_event_reasons(0x1 | 0x8 | 0x40) == [
        "gpu_idle",
        "hw_slowdown",
        "hw_thermal_slowdown",
    ]
    assert gpu.decode_clocks_event_reasons(0) == []
    assert gpu.decode_clocks_event_reasons(None) is None


def test_cuda_driver_version_decodes():
    assert compat.decode_cuda_version(13000) == "13.0"
    assert compat.decode_cuda_version(12040) == "12.4"
    assert compat.decode_cuda_version(0) is None


def test_gpu_command_imports_no_framework_and_no_rich():
    code = (
        "import sys\n"
        "sys.argv = ['dlcheck', 'gpu', '--json']\n"
        "from dlcheck.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = {'torch', 'tensorflow', 'keras', 'jax', 'rich'} & set(sys.modules)\n"
        "sys.stderr.write('HEAVY=' + ','.join(sorted(heavy)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "HEAVY=" in done.stderr and done.stderr.rsplit("HEAVY=", 1)[1] == ""
    assert json.loads(done.stdout)["command"] == "gpu"
