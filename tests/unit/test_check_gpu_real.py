"""On a real NVIDIA GPU: dlcheck gpu agrees with nvidia-smi, and the report sees the GPU.

Skipped without a GPU. DLCHECK_SAVE_REPLAY=path saves `dlcheck gpu --json --show-ids` data
as a replay fixture (copy it to tests/fixtures/gpu_<model>.json: the fake then replays it).
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from dlcheck import nvml

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml, and a clean CUDA/LD env per test

pytestmark = pytest.mark.gpu


def _nvml_works() -> bool:
    try:
        nvml.library()
        return True
    except nvml.NvmlUnavailable:
        return False
    finally:
        nvml.reset()


requires_gpu = pytest.mark.skipif(not _nvml_works(), reason="no NVIDIA GPU / NVML here")
SMI_FIELDS = ["index", "name", "pci.bus_id", "memory.total", "compute_cap", "pcie.link.gen.max"]


@requires_gpu
def test_inventory_matches_nvidia_smi():
    done = subprocess.run([sys.executable, "-m", "dlcheck", "gpu", "--json", "--show-ids"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    data = json.loads(done.stdout)["data"]
    assert data["gpus"] and data["driver"]["version"]
    if os.environ.get("DLCHECK_SAVE_REPLAY"):
        replay = {"driver": data["driver"], "gpus": data["gpus"]}
        with open(os.environ["DLCHECK_SAVE_REPLAY"], "w") as handle:
            json.dump(replay, handle, indent=2, sort_keys=True)
    if shutil.which("nvidia-smi") is None:
        pytest.skip("nvidia-smi not on PATH")
    smi = subprocess.run(
        ["nvidia-smi", f"--query-gpu={','.join(SMI_FIELDS)}", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    for line, record in zip(smi.stdout.strip().splitlines(), data["gpus"], strict=True):
        values = [v.strip() for v in line.split(",")]
        ours = [str(record[field]) for field in SMI_FIELDS]
        assert ours[0:2] == values[0:2]
        assert ours[2].lower() == values[2].lower()
        assert ours[3] == values[3], "memory.total MiB"
        assert ours[4] == values[4] or values[4].startswith("[")  # older smi lacks compute_cap


@requires_gpu
def test_report_sees_the_gpu():
    done = subprocess.run([sys.executable, "-m", "dlcheck", "--json"],
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    data = json.loads(done.stdout)["data"]
    assert data["verdict"] in ("ready", "not_ready") and done.returncode in (0, 1)
    torch = data["frameworks"]["torch"]
    if torch["installed"] and torch["cuda_build"]:
        assert torch["gpu_count"] >= 1
        assert all(d["matmul"]["ok"] for d in torch["devices"]), torch["devices"]
