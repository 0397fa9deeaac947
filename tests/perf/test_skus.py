"""The datasheet table: well-formed, sourced, and found for every GPU model the fakes present."""

import pytest

from dlcheck import gpu, nvml
from dlcheck.perf import skus, telemetry
from tests.fakes.nvml import SCENARIOS, SKU_MODELS, scenario

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml

# Issue 14's list, by the key each maps to.
REQUIRED = {
    "h100-sxm", "h100-pcie", "h200-sxm", "a100-sxm4-40gb", "a100-pcie-40gb", "a100-sxm4-80gb",
    "a100-pcie-80gb", "l4", "l40s", "a10g", "t4", "v100-sxm2-16gb", "v100-pcie-16gb",
    "rtx-6000-ada", "rtx-a6000", "rtx-4090", "rtx-4080", "rtx-3090", "rtx-3080", "rtx-3060",
    "gtx-1080-ti", "gtx-1060-6gb",
}  # fmt: skip


def test_issue_list_is_covered_and_rows_are_sourced():
    table = skus.table()
    keys = {s.key for s in skus.all_skus()}
    assert REQUIRED <= keys
    for row in table["skus"]:
        assert row["sources"], row["key"]
        for source in row["sources"]:
            assert table["sources"][source]["url"].startswith("https://"), source
    ids = [i for s in skus.all_skus() for i in s.pci_device_ids]
    assert len(ids) == len(set(ids)), "a PCI device id maps to two rows"


@pytest.mark.parametrize("sku", skus.all_skus(), ids=lambda s: s.key)
def test_peaks_are_dense_and_consistent(sku):
    peaks = sku.peak_tflops
    assert peaks["fp32"] > 0 and sku.memory_bandwidth_gbps > 0 and sku.tdp_w > 0
    # Each step down in precision doubles (or keeps) the rate; a sparse figure slipping in
    # would break the FP16 <= 2 x TF32 or FP8 <= 2 x FP16 relation on some row.
    if "tf32" in peaks:
        assert peaks["bf16"] == pytest.approx(2 * peaks["tf32"], rel=0.02)
    if "fp8" in peaks:
        assert peaks["fp8"] == pytest.approx(2 * peaks["fp16"], rel=0.02)
    assert peaks.get("fp16", 0) >= peaks.get("bf16", 0)
    # The FP32 figure follows from the boost clock: no more than 2 x lanes x clock for the
    # largest die of the generation (18432 lanes on GH100/AD102).
    assert peaks["fp32"] <= 2 * 18432 * sku.boost_clock_mhz / 1e6 + 0.1
    assert sku.pcie_gbps == skus.pcie_bandwidth(sku.pcie_gen, sku.pcie_width)


def test_expected_fractions_are_cited_shares():
    fractions = skus.table()["expected_fraction"]
    for name, entry in fractions.items():
        if name.startswith("_"):
            continue
        assert 0.2 <= entry["value"] <= 1.0 and entry["basis"], name
    # DCGM's measured reference replaces the default where it exists (H100 SXM: 2540/3350).
    h100 = skus.lookup("0x2330")
    assert skus.expected_fraction("memory_copy", h100) == pytest.approx(2540 / 3350, abs=1e-3)
    assert skus.expected_fraction("memory_copy", None) == fractions["memory_copy"]["value"]


@pytest.mark.parametrize(
    "given, key",
    [
        (0x233010DE, "h100-sxm"),  # packed, as NVML's pciDeviceId
        (0x2330, "h100-sxm"),
        ("0x26B9", "l40s"),
        ("2684", "rtx-4090"),
    ],
)
def test_lookup_by_pci_device_id(given, key):
    assert skus.lookup(given).key == key


@pytest.mark.parametrize(
    "name, key",
    [
        ("NVIDIA GeForce GTX 1080 Ti", "gtx-1080-ti"),
        ("GeForce GTX 1080 Ti", "gtx-1080-ti"),  # drivers before R470 leave out "NVIDIA "
        ("nvidia  a100-sxm4-80gb", "a100-sxm4-80gb"),
        ("Tesla V100-PCIE-16GB", "v100-pcie-16gb"),
    ],
)
def test_lookup_by_name(name, key):
    assert skus.lookup(None, name).key == key


def test_id_wins_over_a_misleading_name_and_unknowns_give_none():
    assert skus.lookup(0x2331, "NVIDIA GeForce RTX 4090").key == "h100-pcie"
    assert skus.lookup(0x1E04, "NVIDIA GeForce RTX 2080 Ti") is None
    assert skus.lookup(None, None) is None
    assert skus.lookup("not-hex", "") is None


def test_every_model_in_the_fake_scenarios_is_found_through_nvml(fake_nvml):
    # sku_zoo: each model as NVML names it, with the PCI device id NVML packs; the lookup
    # runs on what telemetry reads through dlcheck.nvml, exactly as a live run does.
    fake_nvml("sku_zoo")
    records = gpu.collect(show_ids=True).gpus
    assert len(records) == len(SKU_MODELS)
    for record, (name, device, _) in zip(records, SKU_MODELS, strict=True):
        handle = nvml.query("nvmlDeviceGetHandleByIndex", record["index"])
        found_id = telemetry.pci_device_id(handle)
        assert found_id == device
        by_id, by_name = skus.lookup(found_id), skus.lookup(None, record["name"])
        assert by_id is not None and by_name is not None, name
        assert by_id.key == by_name.key, f"{name}: id says {by_id.key}, name {by_name.key}"


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_named_gpu_in_every_scenario_has_a_row(name):
    # The older scenarios carry no PCI ids: their GPUs must be found by name alone.
    data = scenario(name)
    for g in data["gpus"]:
        if name == "hostile_strings":  # a name made of escape sequences and markup: no row
            assert skus.lookup(None, g["name"]) is None
        elif name == "unknown_sku":
            assert skus.lookup(None, g["name"]) is None
        else:
            assert skus.lookup(None, g["name"]) is not None, g["name"]
