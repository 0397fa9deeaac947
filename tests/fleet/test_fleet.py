"""`dlcheck fleet` against report folders shaped like verify.yml leaves them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from dlcheck import models
from dlcheck.fleet import read_fleet, read_host
from dlcheck.models import ExitCode
from tests.fakes.cli import invoke
from tests.fakes.reports import bench_data, check_data, smoke_data, write_host
from tests.fakes.reports import framework as _framework


@pytest.fixture
def fleet_dir(tmp_path):
    write_host(
        tmp_path,
        "gpu-1",
        check=check_data(),
        bench=bench_data({"keras": 4.2, "torch": 6.5, "torch-sparse": None}),
        smoke=smoke_data(),
    )
    write_host(
        tmp_path,
        "cpu-1",
        check=check_data(
            "cpu_only",
            gpus=(),
            frameworks={"torch": _framework("2.13.0", None, 0)},
        ),
        smoke=smoke_data(passed=6, skipped=7),
    )
    write_host(
        tmp_path,
        "broken-1",
        check=check_data(
            "not_ready",
            frameworks={
                "torch": _framework("2.13.0", "12.8", 1),
                "tensorflow": _framework(None, installed=False),
            },
            failing=("tensorflow_missing",),
        ),
        smoke=smoke_data(passed=8, failed=("test_tensorflow_sees_every_gpu",)),
    )
    write_host(tmp_path, "gone-1", status="unreachable", message="ssh: connect timed out")
    corrupt = write_host(tmp_path, "corrupt-1", smoke=smoke_data())
    (corrupt / "check.json").write_text('{"schema": "dlcheck/1", "data": {"verdict": "rea')
    return tmp_path


def by_host(rows):
    return {row.host: row for row in rows}


def test_every_host_folder_becomes_a_row_with_its_state(fleet_dir):
    rows = by_host(read_fleet(fleet_dir))
    assert {h: r.state for h, r in rows.items()} == {
        "broken-1": "not_ready",
        "corrupt-1": "not_ready",
        "cpu-1": "cpu_only",
        "gone-1": "unreachable",
        "gpu-1": "ready",
    }


def test_healthy_gpu_host_row_carries_inventory_and_best_speedup(fleet_dir):
    row = by_host(read_fleet(fleet_dir))["gpu-1"]
    assert row.gpus == ["NVIDIA A10G"]
    assert (row.driver, row.cuda, row.verdict) == ("580.95.05", "13.0", "ready")
    assert row.frameworks["torch"] == "2.13.0 (cuda 12.8, 1 GPU)"
    assert row.frameworks["keras"] == "3.15.1 (tensorflow)"
    assert row.best_speedup == 6.5
    assert row.problems == []


def test_missing_framework_and_failed_smoke_test_are_named(fleet_dir):
    row = by_host(read_fleet(fleet_dir))["broken-1"]
    assert "tensorflow" not in row.frameworks
    assert any("tensorflow_missing" in p for p in row.problems)
    (smoke,) = [p for p in row.problems if p.startswith("smoke tests:")]
    # File and test name (torch and TensorFlow share test names), then the first failure's words.
    assert "(test_x.py::test_tensorflow_sees_every_gpu)" in smoke
    assert smoke.endswith("; first: test_tensorflow_sees_every_gpu broke")


def test_corrupt_json_is_a_clear_problem_not_a_crash(fleet_dir):
    row = by_host(read_fleet(fleet_dir))["corrupt-1"]
    assert row.problems and row.problems[0].startswith("check.json: not valid JSON")


def test_failed_run_keeps_what_was_fetched(tmp_path):
    folder = write_host(
        tmp_path, "h", status="failed", failed_task="Run the smoke tests", message="rc=4"
    )
    (folder / "check.json").write_text(models.envelope("check", "PASS", check_data()))
    row = read_host(folder)
    assert row.state == "failed"
    assert row.verdict == "ready"
    assert "verify run failed at 'Run the smoke tests': rc=4" in row.problems


def test_folder_without_any_report_is_no_report(tmp_path):
    (tmp_path / "empty-host").mkdir()
    row = read_host(tmp_path / "empty-host")
    assert row.state == "no_report"


def test_table_shows_every_host_and_exits_not_ready(fleet_dir):
    result = invoke(["fleet", str(fleet_dir)])
    assert result.code == ExitCode.NOT_READY, result.stderr
    out = result.stdout
    for host in ("gpu-1", "cpu-1", "broken-1", "gone-1", "corrupt-1"):
        assert host in out
    assert "1 x NVIDIA A10G" in out and "6.5x (torch)" in out
    assert "10/0/0" in out and "8/1/0" in out  # smoke passed/failed/skipped
    assert "gone-1: unreachable: ssh: connect timed out" in out
    assert "5 hosts: 1 ready, 1 cpu_only, 2 not_ready, 1 unreachable" in out


def test_json_envelope_lists_every_host(fleet_dir):
    result = invoke(["fleet", "--json", str(fleet_dir)])
    body = json.loads(result.stdout)
    assert (body["schema"], body["command"], body["status"]) == ("dlcheck/1", "fleet", "FAIL")
    hosts = {h["host"]: h for h in body["data"]["hosts"]}
    assert set(hosts) == {"gpu-1", "cpu-1", "broken-1", "gone-1", "corrupt-1"}
    assert hosts["gpu-1"]["gpu_count"] == 1 and hosts["gpu-1"]["best_speedup"] == 6.5
    assert body["data"]["summary"]["unreachable"] == 1
    assert body["data"]["exit_code"] == ExitCode.NOT_READY


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [(("gpu-1",), ExitCode.READY), (("gpu-1", "cpu-1"), ExitCode.CPU_ONLY)],
)
def test_exit_code_of_a_working_fleet(fleet_dir, hosts, expected, tmp_path_factory):
    subset = tmp_path_factory.mktemp("subset")
    for host in hosts:
        (fleet_dir / host).rename(subset / host)
    # Through the real entry point, so the process exit status is what scripts see.
    proc = subprocess.run(
        [sys.executable, "-m", "dlcheck", "fleet", "--json", str(subset)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == expected, proc.stderr
    assert json.loads(proc.stdout)["data"]["summary"]["hosts"] == len(hosts)


@pytest.mark.parametrize("make", [lambda p: p / "nope", lambda p: p])
def test_bad_reports_dir_is_a_one_line_usage_error(tmp_path, make):
    proc = subprocess.run(
        [sys.executable, "-m", "dlcheck", "fleet", str(make(tmp_path))],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == ExitCode.USAGE
    assert "Fix:" in proc.stderr and "Traceback" not in proc.stderr


def test_perf_column_makes_the_slow_gpu_host_stand_out(tmp_path):
    from tests.perf.test_report_views import report as perf_report

    for host, gpus in (("fast-1", ("healthy_h100_sxm",)),
                       ("slow-1", ("healthy_h100_sxm", "throttled_rtx4090"))):  # fmt: skip
        folder = write_host(tmp_path, host, check=check_data(), smoke=smoke_data())
        data = perf_report(*gpus)
        (folder / "perf.json").write_text(models.envelope("perf", data["status"], data))
    rows = by_host(read_fleet(tmp_path))
    assert rows["fast-1"].perf.startswith("PASS") and rows["fast-1"].state == "ready"
    assert rows["slow-1"].perf_status == "FAIL" and rows["slow-1"].state == "not_ready"
    assert "GPU 1 matmul_fp16 at 44% of expected (thermal_slowdown)" in rows["slow-1"].perf
    table = invoke(["fleet", str(tmp_path)]).stdout
    assert "thermal_slowdown" in table and "slow-1: perf: FAIL" in table
