"""All-reduce code path with real torch.distributed: gloo across CPU processes on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dlcheck.allreduce import (
    AllreduceResult,
    bus_factor,
    cuda_device_count,
    parse_size,
    run_allreduce,
    summarise,
)
from dlcheck.models import ExitCode

pytest.importorskip("torch")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1024", 1024), ("8K", 8192), ("32M", 32 * 1024**2), ("1GiB", 1024**3), ("1.5k", 1536)],
)
def test_sizes_read_like_nccl_tests(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "2", "ten", "4T", "-1M"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_bus_factor_matches_nccl_tests():
    assert [bus_factor(n) for n in (1, 2, 4, 8)] == [0.0, 1.0, 1.5, 1.75]


def test_gloo_two_processes_reduce_every_value_correctly():
    result = run_allreduce("gloo", size_bytes=1024**2, iters=5, warmup=1, ranks=2, timeout_s=120)
    assert result.status == "PASS", result.reason
    assert result.wrong_elements == 0
    assert result.devices == ["cpu", "cpu"]
    assert result.median_time_us > 0
    assert result.algbw_gbps == pytest.approx(result.size_bytes / result.median_time_us / 1e3)
    assert result.busbw_gbps == pytest.approx(result.algbw_gbps * bus_factor(2))


def test_wrong_values_fail_the_check():
    result = AllreduceResult("gloo", 2, 4096, 3, 0)
    summarise(result, {"times": [0.001, 0.002, 0.003], "wrong": 7, "devices": ["cpu", "cpu"]})
    assert result.status == "FAIL" and "7 reduced elements" in result.reason
    assert result.median_time_us == pytest.approx(2000)


def test_cli_three_gloo_ranks_json():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "dlcheck",
            "allreduce",
            "--backend",
            "gloo",
            "--ranks",
            "3",
            "--size",
            "256K",
            "--iters",
            "3",
            "--warmup",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == ExitCode.READY, proc.stderr
    body = json.loads(proc.stdout)
    assert (body["command"], body["status"]) == ("allreduce", "PASS")
    data = body["data"]
    assert (data["ranks"], data["size_bytes"], data["wrong_elements"]) == (3, 262144, 0)
    assert data["busbw_gbps"] == pytest.approx(data["algbw_gbps"] * 4 / 3)


def test_nccl_without_two_gpus_is_skipped_with_reason():
    gpus = cuda_device_count()
    if gpus >= 2:
        pytest.skip("this host has 2+ GPUs; see test_nccl_all_local_gpus")
    result = run_allreduce("nccl", size_bytes=1024, iters=1)
    assert result.status == "SKIP"
    assert f"this host has {gpus}" in result.reason


@pytest.mark.gpu
def test_nccl_all_local_gpus():
    if cuda_device_count() < 2:
        pytest.skip("NCCL all-reduce needs at least 2 CUDA GPUs")
    result = run_allreduce("nccl", size_bytes=64 * 1024**2, iters=10, warmup=3)
    assert result.status == "PASS", result.reason
    assert result.wrong_elements == 0 and result.busbw_gbps > 0
