"""The playbooks' GPU fact (playbooks/roles/base/files/gpus.fact) and dlcheck agree.

One rule decides "this PCI function is an NVIDIA GPU": dlcheck.system.is_nvidia_gpu. The fact is
a separate program (it runs on hosts before dlcheck is installed), so both read the same fake
/sys trees here and must name the same devices. Its generation table is checked against the
chip names in the machine's pci.ids.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from dlcheck.system import pci_gpus
from tests.fakes.host import make_roots

FACT = Path(__file__).resolve().parents[2] / "playbooks/roles/base/files/gpus.fact"
PCI_IDS = Path("/usr/share/misc/pci.ids")

# bus id: (vendor, class, device)
H100_VGA = {"0000:18:00.0": ("0x10de", "0x030000", "0x2331")}
A100_3D = {"0000:3b:00.0": ("0x10de", "0x030200", "0x20b0")}
CARD_AUDIO = {"0000:18:00.1": ("0x10de", "0x040300", "0x22ba")}
AMD_VGA = {"0000:05:00.0": ("0x1002", "0x030000", "0x73bf")}
P100 = {"0000:04:00.0": ("0x10de", "0x030200", "0x15f8")}
SCENARIOS = {
    "vga-class": H100_VGA,
    "3d-class": A100_3D,
    "gpu-and-its-audio-function": {**H100_VGA, **CARD_AUDIO},
    "non-nvidia-gpu": AMD_VGA,
    "mixed": {**A100_3D, **AMD_VGA, **CARD_AUDIO, **P100},
    "none": {},
}


def fake_host(base: Path, devices: dict, module_version: str | None = None):
    roots = make_roots(base, module_version=module_version)
    for bus_id, (vendor, pci_class, device) in devices.items():
        folder = roots.sys / "bus/pci/devices" / bus_id
        folder.mkdir(parents=True)
        (folder / "vendor").write_text(vendor + "\n")
        (folder / "class").write_text(pci_class + "\n")
        (folder / "device").write_text(device + "\n")
    return roots


def run_fact(base: Path) -> dict:
    env = {**os.environ, "DLCHECK_FACT_ROOT": str(base)}
    result = subprocess.run(
        [sys.executable, str(FACT)], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_fact_and_dlcheck_name_the_same_gpus(tmp_path, scenario):
    roots = fake_host(tmp_path, SCENARIOS[scenario])
    fact = run_fact(tmp_path)
    from_dlcheck = sorted(gpu.bus_id for gpu in pci_gpus(roots))
    assert sorted(gpu["bus_id"] for gpu in fact["gpus"]) == from_dlcheck
    assert fact["count"] == len(from_dlcheck)


def test_fact_describes_each_gpu(tmp_path):
    fake_host(tmp_path, {**A100_3D, **P100, **CARD_AUDIO}, module_version="580.95.05")
    fact = run_fact(tmp_path)
    assert fact["schema"] == 1 and fact["count"] == 2
    by_bus = {gpu["bus_id"]: gpu for gpu in fact["gpus"]}
    assert by_bus["0000:3b:00.0"]["generation"] == "ampere"
    assert by_bus["0000:04:00.0"]["generation"] == "pascal"
    assert fact["generations"] == ["ampere", "pascal"]
    assert fact["pre_turing"] == ["0x15f8"]  # the open kernel modules cannot drive it
    assert fact["driver"] == {"loaded": True, "version": "580.95.05"}


def test_fact_on_a_host_without_a_driver_or_sysfs(tmp_path):
    fact = run_fact(tmp_path / "empty")
    assert fact["count"] == 0 and fact["gpus"] == []
    assert fact["driver"] == {"loaded": False, "version": None}


def _pci_ids_gpus() -> list[tuple[int, str, str]]:
    """(device id, chip family prefix, name) of NVIDIA display devices named by chip in pci.ids."""
    found, inside = [], False
    for line in PCI_IDS.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("10de "):
            inside = True
            continue
        if inside and re.match(r"^[0-9a-f]{4} ", line):
            break
        match = re.match(r"^\t([0-9a-f]{4})\s+((GK|GM|GP|GV|TU|GA|GH|AD|GB)\d+\S*)\s*(.*)", line)
        if inside and match:
            name = match.group(2) + " " + match.group(4)
            # Functions that share a chip name but are not display class: audio, USB, NVSwitch.
            if not re.search(r"Audio|USB|UCSI|Type-C|Serial|NVLink|NVSwitch|Bridge", name):
                found.append((int(match.group(1), 16), match.group(3), name))
    return found


FAMILIES = {
    "GK": "kepler",
    "GM": "maxwell",
    "GP": "pascal",
    "GV": "volta",
    "TU": "turing",
    "GA": "ampere",
    "GH": "hopper",
    "AD": "ada",
    "GB": "blackwell",
}


@pytest.mark.skipif(not PCI_IDS.exists(), reason="needs pciutils' pci.ids")
def test_generation_table_matches_the_chip_names_in_pci_ids(tmp_path):
    gpus = _pci_ids_gpus()
    assert len(gpus) > 500, "pci.ids parsed wrongly"
    devices = {f"0000:{i // 256:02x}:{i % 256 // 8:02x}.{i % 8}": d for i, d in enumerate(gpus)}
    fake_host(
        tmp_path, {bus: ("0x10de", "0x030000", f"0x{d[0]:04x}") for bus, d in devices.items()}
    )
    fact = {gpu["bus_id"]: gpu for gpu in run_fact(tmp_path)["gpus"]}
    wrong = [
        f"{name} (0x{device:04x}): {fact[bus]['generation']}"
        for bus, (device, family, name) in devices.items()
        if fact[bus]["generation"] != FAMILIES[family]
    ]
    assert not wrong, wrong
