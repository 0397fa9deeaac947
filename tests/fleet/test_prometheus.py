"""`--prometheus FILE` on check, bench and perf: node_exporter textfile format, read back with
prometheus_client's own parser and checked value by value against the JSON envelope."""

from __future__ import annotations

import json
import os
import sys

import pytest
from prometheus_client.parser import text_string_to_metric_families

from dlcheck import models, prometheus
from dlcheck.models import ExitCode
from tests.fakes import probes
from tests.fakes.cli import invoke
from tests.fakes.fleet import bench_rows
from tests.fakes.host import gpu_host

pytest_plugins = ["tests.fakes.fixtures"]  # fake_nvml, clean_env
pytestmark = pytest.mark.usefixtures("clean_env")


def parse(text: str) -> dict[str, dict[tuple, float]]:
    """{metric: {sorted label items: value}}, through the official parser (it raises on any
    line that is not valid exposition format)."""
    found: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


@pytest.fixture
def gpu_machine(fake_nvml, tmp_path, monkeypatch):
    from dlcheck import frameworks, system

    fake_nvml("multi_gpu")
    monkeypatch.setattr(system, "DEFAULT_ROOTS", gpu_host(tmp_path))
    monkeypatch.setattr(frameworks, "probe_command", probes.command_for(probes.HEALTHY))


def test_check_metrics_parse_and_match_the_json(gpu_machine, tmp_path):
    target = tmp_path / "dlcheck.prom"
    ran = invoke(["check", "--json", "--prometheus", str(target)])
    body = json.loads(ran.stdout)
    data = body["data"]
    metrics = parse(target.read_text())

    assert metrics["dlcheck_check_exit_code"][()] == data["exit_code"] == ran.code
    assert metrics["dlcheck_check_worst_status"][()] == prometheus.STATUS_VALUE[body["status"]]
    assert metrics["dlcheck_verdict"] == {
        (("verdict", v),): float(v == data["verdict"]) for v in prometheus.VERDICTS}
    statuses = metrics["dlcheck_check_status"]
    assert len(statuses) == len(data["checks"])
    for check in data["checks"]:
        assert statuses[(("code", check["code"]),)] == prometheus.STATUS_VALUE[check["status"]]
    assert metrics["dlcheck_gpus"][()] == len(data["gpus"]) == 4
    for record in data["gpus"]:
        labels = (("gpu", str(record["index"])), ("uuid", record["uuid"]))
        assert metrics["dlcheck_gpu_memory_total_bytes"][labels] == record["memory.total"] * 2**20
        assert metrics["dlcheck_gpu_temperature_celsius"][labels] == record["temperature.gpu"]
        assert metrics["dlcheck_gpu_power_draw_watts"][labels] == record["power.draw"]
        assert metrics["dlcheck_gpu_sm_clock_hertz"][labels] == record["clocks.current.sm"] * 1e6
        info = next(dict(k) for k in metrics["dlcheck_gpu_info"] if dict(k)["gpu"] == labels[0][1])
        assert (info["name"], info["uuid"]) == (record["name"], record["uuid"])
        assert record["uuid"].startswith("GPU-masked-")  # never the real UUID
    driver = dict(next(iter(metrics["dlcheck_driver_info"])))
    assert driver["driver_version"] == data["driver"]["version"]
    for name, probe in data["frameworks"].items():
        assert metrics["dlcheck_framework_installed"][(("framework", name),)] == probe["installed"]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # no temp file left


def test_bench_metrics_match_the_json():
    import random

    data = bench_rows(random.Random(3))
    envelope = json.loads(models.envelope("bench", "PASS", data))
    metrics = parse(prometheus.metrics_text(envelope, now=1.5e9))
    for row in data["results"]:
        labels = (("device", row["device"]), ("impl", row["impl"]))
        assert metrics["dlcheck_bench_epoch_seconds"][labels] == row["median_epoch_s"]
        assert metrics["dlcheck_bench_epoch_max_seconds"][labels] == max(row["epoch_times"])
        assert metrics["dlcheck_bench_row_status"][labels] == 0
    assert metrics["dlcheck_bench_speedup_ratio"] == {(("impl", "keras"),): 4.5,
                                                      (("impl", "torch"),): 9.0}  # fmt: skip
    assert metrics["dlcheck_bench_timestamp_seconds"][()] == 1.5e9


def test_perf_metrics_in_base_units_match_the_json():
    from tests.perf.test_report_views import report as perf_report

    data = perf_report("healthy_h100_sxm", "throttled_rtx4090")
    envelope = json.loads(models.envelope("perf", data["status"], data))
    metrics = parse(prometheus.metrics_text(envelope))
    for gpu in data["gpus"]:
        assert metrics["dlcheck_perf_gpu_status"][(
            ("gpu", str(gpu["index"])), ("name", gpu["name"]), ("uuid", gpu["uuid"] or ""))
        ] == prometheus.STATUS_VALUE[gpu["status"]]  # fmt: skip
        for test in gpu["tests"]:
            labels = (("device", f"gpu{gpu['index']}"), ("test", test["name"]))
            if test["unit"] == "TFLOP/s" and test["measured"] is not None:
                assert metrics["dlcheck_perf_flops"][labels] == pytest.approx(
                    test["measured"] * 1e12)
            if test["unit"] == "GB/s" and test["measured"] is not None:
                assert metrics["dlcheck_perf_bytes_per_second"][labels] == pytest.approx(
                    test["measured"] * 1e9)
    assert metrics["dlcheck_perf_worst_status"][()] == 2  # the throttled card FAILs


def test_label_values_survive_quotes_backslashes_and_newlines():
    family = prometheus.Family("dlcheck_gpu_info", "help with \\ and\nnewline")
    nasty = 'Tesla "X" \\ 80GB\nsecond line'
    family.add(1, gpu=0, name=nasty)
    family.add(float("nan"), gpu=1, name="skipped: not a finite number")
    metrics = parse(prometheus.render([family]))
    assert metrics["dlcheck_gpu_info"] == {(("gpu", "0"), ("name", nasty)): 1.0}


def test_real_bench_run_writes_its_metrics(tmp_path):
    """The option end to end on a tiny real CPU run (torch-sparse, 1 epoch, 200 reviews)."""
    pytest.importorskip("torch")
    import subprocess

    target = tmp_path / "bench.prom"
    proc = subprocess.run(
        [sys.executable, "-m", "dlcheck", "bench", "--device", "cpu", "--impl", "torch-sparse",
         "--synthetic", "--epochs", "1", "--limit", "200", "--json", "--prometheus",
         str(target)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert proc.returncode == ExitCode.READY, proc.stderr[-2000:]
    (row,) = json.loads(proc.stdout)["data"]["results"]
    metrics = parse(target.read_text())
    labels = (("device", "cpu"), ("impl", "torch-sparse"))
    assert metrics["dlcheck_bench_epoch_seconds"][labels] == row["median_epoch_s"]
    assert metrics["dlcheck_bench_synthetic"][()] == 1


@pytest.mark.parametrize(
    ("name", "said"),
    [("metrics.txt", "reads only *.prom"), ("missing/x.prom", "does not exist"),
     ("file/x.prom", "does not exist"), ("dir.prom", "it is a folder")],
)
def test_bad_paths_are_usage_errors_before_any_work(tmp_path, name, said):
    (tmp_path / "file").write_text("")
    (tmp_path / "dir.prom").mkdir()
    ran = invoke(["check", "--no-frameworks", "--prometheus", str(tmp_path / name)])
    assert ran.code == ExitCode.USAGE and said in ran.stderr
    assert "Traceback" not in ran.stderr


def test_a_failed_write_keeps_the_old_file_and_exits_1(gpu_machine, tmp_path, monkeypatch):
    target = tmp_path / "dlcheck.prom"
    target.write_text("# the previous scrape's file\n")

    def full_disk(handle, *args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    ran = invoke(["check", "--prometheus", str(target)])
    assert ran.code == ExitCode.NOT_READY
    assert "cannot write it: No space left on device" in ran.stderr
    assert target.read_text() == "# the previous scrape's file\n"
    assert os.listdir(tmp_path).count("dlcheck.prom") == 1
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
