"""Per-GPU health: ECC, retired pages and row remaps, throttling, PCIe link, persistence, MIG,
the NVSwitch fabric. DCGM's limits (compat.json) decide what counts as worn out."""

from __future__ import annotations

from dlcheck import compat
from dlcheck.gpu import GpuRecord
from dlcheck.models import CheckResult, Status

INFO, WARN, FAIL = Status.INFO, Status.WARN, Status.FAIL
SLOWDOWN_REASONS = ("hw_slowdown", "hw_thermal_slowdown", "sw_thermal_slowdown",
                    "hw_power_brake_slowdown")  # fmt: skip


def checks(g: GpuRecord) -> list[CheckResult]:
    if g["error"]:
        return []
    i = g["index"]
    tag = f"GPU {i}"
    limits = compat.data()["dcgm_limits"]
    results = []
    reset = f"sudo nvidia-smi -r -i {i}   # or reboot; stop GPU processes first"

    def add(code, status, message, fix=None, **evidence):
        results.append(
            CheckResult(code, status, f"{tag}: {message}", fix, {"index": i, **evidence})
        )

    if g["retired_pages.pending"]:
        add("page_retirement_pending", FAIL, "a page retirement is pending.", reset)
    retired = (g["retired_pages.sbe"] or 0) + (g["retired_pages.dbe"] or 0)
    if retired >= limits["max_retired_pages"]:
        add(
            "retired_pages_exceeded",
            FAIL,
            f"{retired} retired pages (DCGM limit {limits['max_retired_pages']}).",
            "Ask the vendor for an RMA: the memory is wearing out.",
            sbe=g["retired_pages.sbe"],
            dbe=g["retired_pages.dbe"],
        )
    if g["remapped_rows.pending"]:
        add("row_remap_pending", FAIL, "a memory row remap is pending.", reset)
    if g["remapped_rows.failure"]:
        add("row_remap_failure", FAIL, "a row remap failed.", "Ask the vendor for an RMA.")
    if (g["remapped_rows.uncorrectable"] or 0) >= limits["max_row_remap_uncorrectable"]:
        add(
            "row_remap_exceeded",
            FAIL,
            f"{g['remapped_rows.uncorrectable']} uncorrectable row remaps.",
            "Ask the vendor for an RMA.",
        )
    volatile = g["ecc.errors.uncorrected.volatile.total"]
    aggregate = g["ecc.errors.uncorrected.aggregate.total"]
    if volatile:
        add("ecc_uncorrected", FAIL, f"{volatile} uncorrectable ECC errors since boot.", reset,
            volatile=volatile, aggregate=aggregate)  # fmt: skip
    elif aggregate:
        add("ecc_uncorrected_history", WARN, f"{aggregate} uncorrectable ECC errors in its "
            "lifetime (none since boot).", "nvidia-smi -q -d ECC,PAGE_RETIREMENT,ROW_REMAPPER",
            aggregate=aggregate)  # fmt: skip
    active = [r for r in (g["clocks_event_reasons.decoded"] or []) if r in SLOWDOWN_REASONS]
    if active:
        add(
            "gpu_throttled",
            WARN,
            "clocks slowed down: " + ", ".join(active) + ".",
            "Check cooling and power cabling; nvidia-smi -q -d PERFORMANCE,TEMPERATURE,POWER",
            reasons=g["clocks_event_reasons.decoded"],
            temperature=g["temperature.gpu"],
            slowdown_at=g["temperature.gpu.slowdown"],
        )
    _pcie(g, add)
    if g["persistence_mode"] == "Disabled":
        add(
            "persistence_mode_off",
            WARN,
            "persistence mode is off (each CUDA start re-initialises the GPU).",
            "sudo systemctl enable --now nvidia-persistenced   # or: sudo nvidia-smi -pm 1",
        )
    if g["mig.mode.current"] == "Enabled":
        add(
            "mig_enabled",
            INFO,
            "MIG is enabled: frameworks see MIG slices, not the whole GPU.",
            f"sudo nvidia-smi -i {i} -mig 0   # to use the whole GPU (needs a GPU reset)",
        )
    if g["fabric.state"] is not None and (
        g["fabric.state"] != "Completed" or g["fabric.status"] != "Success"
    ):
        add(
            "fabric_manager_not_ready",
            FAIL,
            f"NVSwitch fabric is '{g['fabric.state']}' ({g['fabric.status']}): CUDA will fail "
            "with 'system not yet initialized' (error 802).",
            "sudo apt-get install nvidia-fabricmanager-$(nvidia-smi --query-gpu=driver_version "
            "--format=csv,noheader | head -1 | cut -d. -f1) && sudo systemctl enable --now "
            "nvidia-fabricmanager",
            fabric_state=g["fabric.state"],
            fabric_status=g["fabric.status"],
        )
    return results


def _pcie(g: GpuRecord, add) -> None:
    cur_gen, max_gen = g["pcie.link.gen.current"], g["pcie.link.gen.max"]
    cur_w, max_w = g["pcie.link.width.current"], g["pcie.link.width.max"]
    link = {"gen_current": cur_gen, "gen_max": max_gen, "gen_gpumax": g["pcie.link.gen.gpumax"],
            "width_current": cur_w, "width_max": max_w, "pstate": g["pstate"]}  # fmt: skip
    below = (cur_gen is not None and max_gen is not None and cur_gen < max_gen) or (
        cur_w is not None and max_w is not None and cur_w < max_w
    )
    if below and g["pstate"] == "P0":  # DCGM judges the link only in P0: idle GPUs downtrain
        add(
            "pcie_link_degraded",
            WARN,
            f"PCIe link at gen {cur_gen} x{cur_w} under load; device and host support "
            f"gen {max_gen} x{max_w}.",
            "Reseat the card or move it to a full-width slot; check BIOS PCIe settings.",
            **link,
        )
    if g["pcie.link.gen.hostmax"] is not None:
        add(
            "pcie_host_limited",
            INFO,
            f"the slot limits PCIe to gen {g['pcie.link.gen.hostmax']} "
            f"(GPU supports gen {g['pcie.link.gen.gpumax']}).",
            "A slot wired to the CPU with the GPU's generation gives full host-device bandwidth.",
            **link,
        )
