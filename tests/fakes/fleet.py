"""Many hosts' report folders, fast: one real report of each kind (built from dlcheck's own
records by tests.fakes.reports, so the shape is the real one) varied per host.

Used by tests/fleet and scripts/bench_fleet.py (1,000 hosts). Host i is, by i % 20:
0 not ready (a failing check, a failed smoke test), 1 unreachable, 2 CPU-only, 3 a warning,
the rest ready. Every GPU has a distinct masked id; benchmark epochs wander by a few percent.
"""

from __future__ import annotations

import copy
import functools
import json
import random
from pathlib import Path
from typing import Any

from dlcheck import gpu, models
from tests.fakes.reports import GPU, bench_data, check_data, smoke_data

IMPL_SECONDS = {("torch", "cpu"): 1.9, ("torch-sparse", "cpu"): 0.7, ("keras", "cpu"): 4.1,
                ("torch", "cuda:0"): 0.21, ("torch-sparse", "cuda:0"): 0.12,
                ("keras", "cuda:0"): 0.9}  # fmt: skip


@functools.cache
def _templates() -> dict[str, Any]:
    return {
        "ready": check_data(gpus=(GPU, {**GPU, "index": 1, "uuid": "GPU-2"})),
        "warn": check_data(warning=("persistence_mode_off",)),
        "cpu_only": check_data("cpu_only", gpus=()),
        "not_ready": check_data("not_ready", failing=("driver_too_old_for_torch",)),
    }


def bench_rows(rng: random.Random, slow: float = 1.0, gpu: bool = True) -> dict[str, Any]:
    results = []
    for (impl, device), seconds in IMPL_SECONDS.items():
        if device != "cpu" and not gpu:
            continue
        epochs = [seconds * slow * rng.uniform(0.97, 1.03) for _ in range(4)]
        ordered = sorted(epochs)
        results.append({
            "impl": impl, "device": device, "epoch_times": epochs,
            "median_epoch_s": (ordered[1] + ordered[2]) / 2, "min_epoch_s": ordered[0],
            "max_epoch_s": ordered[-1], "speedup": None, "verdict": "PASS", "verdicts": {},
            "error": None, "wall_s": sum(epochs) + 2.0,
        })  # fmt: skip
    data = bench_data({"torch": 9.0, "keras": 4.5} if gpu else {})
    data["results"] = results
    return data


def host_kind(index: int) -> str:
    return {0: "not_ready", 1: "unreachable", 2: "cpu_only", 3: "warn"}.get(index % 20, "ready")


def host_check(index: int, host: str, kind: str) -> dict[str, Any]:
    data = copy.deepcopy(_templates()[kind])
    data["host"]["hostname"] = host
    for record in data["gpus"]:
        record["uuid"] = gpu.mask_id(f"GPU-{host}-{record['index']}")
    return data


def write_fleet(root: Path, hosts: int, seed: int = 0, edit=None) -> list[str]:
    """Report folders for `hosts` hosts under root (REPORTS/<host>/ or a run folder);
    edit(index, files) may change a host's documents before they are written. Host names."""
    rng = random.Random(seed)
    names = []
    for index in range(hosts):
        host = f"gpu-{index:04d}"
        kind = host_kind(index)
        files: dict[str, Any] = {"status.json": {"host": host, "state": "ok"}}
        if kind == "unreachable":
            files["status.json"] = {"host": host, "state": "unreachable",
                                    "message": "ssh: connect to host port 22: timed out"}
        else:
            files["check.json"] = host_check(index, host, kind)
            files["bench.json"] = bench_rows(rng, gpu=kind != "cpu_only")
            failed = ("test_torch_sees_every_gpu",) if kind == "not_ready" else ()
            files["smoke.json"] = smoke_data(passed=12, failed=failed)
        if edit is not None:
            edit(index, files)
        folder = root / host
        folder.mkdir(parents=True, exist_ok=True)
        for name, body in files.items():
            if body is None:
                continue
            if name == "status.json":
                text = json.dumps(body)
            else:  # the envelope, compact: 1,000 hosts are written in seconds
                envelope = {"schema": models.SCHEMA, "command": name.removesuffix(".json"),
                            "status": "FAIL" if kind == "not_ready" else "PASS", "data": body,
                            "errors": []}  # fmt: skip
                text = json.dumps(envelope)
            (folder / name).write_text(text + "\n")
        names.append(host)
    return names
