"""`--prometheus FILE` on check, bench and perf: the report as node_exporter textfile metrics.

node_exporter's textfile collector reads every *.prom file in one folder
(--collector.textfile.directory) at each scrape, so each command has its own metric names
(dlcheck_check_*, dlcheck_gpu_*, dlcheck_bench_*, dlcheck_perf_*) and files of different
commands can sit side by side. The file is written as a hidden temp file in the same folder
and renamed over the old one, so a scrape never reads half a file.

Metrics are made from the JSON envelope (`--json` output), so they say exactly what it says.
Conventions (prometheus.io/docs/practices/naming): base units (bytes, seconds, hertz, ratios
0-1, FLOP/s), `_info` series of value 1 carry versions and names as labels, statuses are
numbers: 0 ok (PASS, INFO, SKIP), 1 WARN, 2 FAIL.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from dlcheck.files import write_atomically
from dlcheck.models import ExitCode, Report

STATUS_VALUE = {"PASS": 0, "INFO": 0, "SKIP": 0, "WARN": 1, "FAIL": 2}
STATUS_HELP = "0 ok (PASS, INFO or SKIP), 1 WARN, 2 FAIL"
VERDICTS = ("ready", "not_ready", "cpu_only")
UNIT_SCALE = {"TFLOP/s": ("flops", 1e12), "GFLOP/s": ("flops", 1e9),
              "GB/s": ("bytes_per_second", 1e9)}  # fmt: skip


@dataclass
class Family:
    name: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)
    type: str = "gauge"

    def add(self, value: Any, **labels: Any) -> None:
        if isinstance(value, bool):
            value = int(value)
        if isinstance(value, (int, float)) and math.isfinite(value):
            self.samples.append(({k: str(v) for k, v in labels.items()}, value))


def render(families: Iterable[Family]) -> str:
    """The text exposition format, version 0.0.4; families without samples left out."""
    lines = []
    for family in families:
        if not family.samples:
            continue
        lines.append(f"# HELP {family.name} {_help(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for labels, value in family.samples:
            inner = ",".join(f'{key}="{_label(text)}"' for key, text in labels.items())
            lines.append(f"{family.name}{{{inner}}} {_number(value)}" if inner
                         else f"{family.name} {_number(value)}")  # fmt: skip
    return "\n".join(lines) + "\n"


def _label(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def _run_families(command: str, envelope: dict[str, Any], now: float) -> list[Family]:
    exit_code = Family(f"dlcheck_{command}_exit_code",
                       f"Exit code of `dlcheck {command}` (0 ready, 1 not ready, 3 CPU-only)")
    exit_code.add(envelope["data"].get("exit_code", 0) if isinstance(envelope["data"], dict)
                  else 0)  # fmt: skip
    status = Family(f"dlcheck_{command}_worst_status",
                    f"The worst status in the run (the envelope's): {STATUS_HELP}")
    status.add(STATUS_VALUE[envelope["status"]])
    stamp = Family(f"dlcheck_{command}_timestamp_seconds",
                   "When this file was written, Unix time")  # fmt: skip
    stamp.add(round(now, 3))
    return [exit_code, status, stamp]


def check_families(envelope: dict[str, Any], now: float) -> list[Family]:
    data = envelope["data"]
    verdict = Family("dlcheck_verdict", "dlcheck's verdict: 1 for the current one, 0 otherwise")
    for name in VERDICTS:
        verdict.add(int(data["verdict"] == name), verdict=name)
    checks = Family("dlcheck_check_status", f"Each readiness check: {STATUS_HELP}")
    counts = Family("dlcheck_checks", "Readiness checks per status")
    for check in data["checks"]:
        checks.add(STATUS_VALUE[check["status"]], code=check["code"])
    for word in STATUS_VALUE:
        counts.add(sum(c["status"] == word for c in data["checks"]), status=word)
    driver = Family("dlcheck_driver_info", "NVIDIA driver version and the CUDA version it supports")
    if data["driver"]["version"]:
        driver.add(1, driver_version=data["driver"]["version"],
                   cuda_version=data["driver"]["cuda_driver_version"] or "")  # fmt: skip
    installed = Family("dlcheck_framework_installed", "1 if the framework imports, else 0")
    framework = Family("dlcheck_framework_info", "Installed framework versions")
    for name, probe in sorted((data["frameworks"] or {}).items()):
        installed.add(int(bool(probe.get("installed"))), framework=name)
        if probe.get("installed"):
            framework.add(1, framework=name, version=probe.get("version") or "",
                          cuda=probe.get("cuda") or "")  # fmt: skip
    gpus = Family("dlcheck_gpus", "NVIDIA GPUs NVML reports")
    gpus.add(len(data["gpus"]))
    return [*_run_families("check", envelope, now), verdict, checks, counts, driver, installed,
            framework, gpus, *gpu_families(data["gpus"])]  # fmt: skip


# (metric, help, record field, scale to base units)
GPU_GAUGES = (
    ("memory_total_bytes", "GPU memory in total, bytes", "memory.total", 2**20),
    ("memory_used_bytes", "GPU memory in use, bytes", "memory.used", 2**20),
    ("utilization_ratio", "GPU busy share over the last sample period, 0-1", "utilization.gpu",
     0.01),
    ("temperature_celsius", "GPU core temperature", "temperature.gpu", 1),
    ("power_draw_watts", "GPU power draw", "power.draw", 1),
    ("power_limit_watts", "Enforced GPU power limit", "enforced.power.limit", 1),
    ("sm_clock_hertz", "Current SM clock", "clocks.current.sm", 1e6),
    ("sm_clock_max_hertz", "Maximum SM clock", "clocks.max.sm", 1e6),
    ("pcie_link_gen", "Current PCIe link generation", "pcie.link.gen.current", 1),
    ("pcie_link_width", "Current PCIe link width (lanes)", "pcie.link.width.current", 1),
    ("ecc_uncorrected_errors", "Uncorrected ECC errors since the driver loaded",
     "ecc.errors.uncorrected.volatile.total", 1),
)  # fmt: skip


def gpu_families(records: list[dict[str, Any]]) -> list[Family]:
    info = Family("dlcheck_gpu_info", "One series per GPU: its name, masked UUID and PCI bus id")
    gauges = [(Family(f"dlcheck_gpu_{name}", text), key, scale)
              for name, text, key, scale in GPU_GAUGES]  # fmt: skip
    for record in records:
        labels = {"gpu": record["index"], "uuid": record.get("uuid") or ""}
        info.add(1, **labels, name=record.get("name") or "",
                 pci_bus_id=record.get("pci.bus_id") or "")  # fmt: skip
        for family, key, scale in gauges:
            value = record.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                family.add(value * scale if scale != 1 else value, **labels)
    return [info, *(family for family, _, _ in gauges)]


def bench_families(envelope: dict[str, Any], now: float) -> list[Family]:
    data = envelope["data"]
    epoch = Family("dlcheck_bench_epoch_seconds", "Median seconds per training epoch")
    fastest = Family("dlcheck_bench_epoch_min_seconds", "Fastest training epoch, seconds")
    slowest = Family("dlcheck_bench_epoch_max_seconds", "Slowest training epoch, seconds")
    accuracy = Family("dlcheck_bench_test_accuracy_ratio", "Test accuracy after training, 0-1")
    row_status = Family("dlcheck_bench_row_status", f"Each benchmark row: {STATUS_HELP}")
    for row in data["results"]:
        labels = {"impl": row["impl"], "device": row["device"]}
        epoch.add(row["median_epoch_s"], **labels)
        times = [t for t in row.get("epoch_times") or () if isinstance(t, (int, float))]
        if times:
            fastest.add(min(times), **labels)
            slowest.add(max(times), **labels)
        accuracy.add(row.get("test_accuracy"), **labels)
        row_status.add(STATUS_VALUE[row["verdict"]], **labels)
    speedup = Family("dlcheck_bench_speedup_ratio", "GPU epoch speed over CPU, per implementation")
    for impl, value in sorted(data["speedup"].items()):
        speedup.add(value, impl=impl)
    synthetic = Family("dlcheck_bench_synthetic", "1 if the run used synthetic data, 0 for IMDB")
    synthetic.add(int(bool(data["synthetic"])))
    return [*_run_families("bench", envelope, now), epoch, fastest, slowest, accuracy, row_status,
            speedup, synthetic]  # fmt: skip


def perf_families(envelope: dict[str, Any], now: float) -> list[Family]:
    data = envelope["data"]
    measured = {kind: Family(f"dlcheck_perf_{kind}", f"Measured throughput, {unit}")
                for kind, unit in (("flops", "floating-point operations per second"),
                                   ("bytes_per_second", "bytes per second"))}  # fmt: skip
    share = Family("dlcheck_perf_of_expected_ratio", "Measured over expected (datasheet x the "
                   "share healthy cards reach), 0-1 and above")  # fmt: skip
    test_status = Family("dlcheck_perf_test_status", f"Each perf test: {STATUS_HELP}")
    gpu_status = Family("dlcheck_perf_gpu_status", f"Each GPU's perf verdict: {STATUS_HELP}")
    groups = []
    for record in data["gpus"]:
        gpu_status.add(STATUS_VALUE[record["status"]], gpu=record["index"],
                       uuid=record.get("uuid") or "", name=record.get("name") or "")
        groups.append((f"gpu{record['index']}", record["tests"]))
    groups += [("cpu", (data["cpu"] or {}).get("tests") or ()), ("p2p", data["p2p"])]
    for device, tests in groups:
        for test in tests:
            labels = {"device": device, "test": test["name"]}
            kind, scale = UNIT_SCALE.get(test["unit"], (None, 1))
            if kind and isinstance(test.get("measured"), (int, float)):
                measured[kind].add(test["measured"] * scale, **labels)
            share.add(test.get("of_expected"), **labels)
            test_status.add(STATUS_VALUE[test["status"]], **labels)
    return [*_run_families("perf", envelope, now), *measured.values(), share, test_status,
            gpu_status]  # fmt: skip


FAMILIES: dict[str, Callable[[dict[str, Any], float], list[Family]]] = {
    "check": check_families, "bench": bench_families, "perf": perf_families}  # fmt: skip


def metrics_text(envelope: dict[str, Any], now: float | None = None) -> str:
    """The textfile for one command's envelope (`dlcheck <command> --json`)."""
    return render(FAMILIES[envelope["command"]](envelope, time.time() if now is None else now))


def export(report: Report, path: Path | None) -> Report:
    """Write `report` as metrics to `path` (when given). A failure to write is one error on the
    report and exit 1, so a timer's unit turns red instead of serving stale numbers quietly."""
    if path is None:
        return report
    try:
        write_atomically(path, metrics_text(report.envelope()))
    except OSError as error:
        message = f"--prometheus {path}: cannot write it: {error.strerror or error}"
        click.echo(f"dlcheck: {message}", err=True)
        return dataclasses.replace(report, errors=(*report.errors, message),
                                   exit_code=ExitCode.NOT_READY)  # fmt: skip
    return report


def _check_path(ctx, param, value):
    if value is None:
        return None
    from dlcheck.system import folder_problem

    path = Path(value)
    if not path.name.endswith(".prom"):
        raise click.BadParameter(f"{value}: node_exporter's textfile collector reads only "
                                 "*.prom files; name it e.g. dlcheck.prom", ctx, param)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        problem = "it is a folder"
    elif not folder.is_dir():  # the collector's folder is node_exporter's; never made here
        problem = f"the folder {folder} does not exist"
    else:
        problem = folder_problem(folder)
    if problem:
        raise click.BadParameter(f"cannot write {value} ({problem})", ctx, param)
    return path


def prometheus_option(function: Callable) -> Callable:
    from dlcheck.commands.common import UsablePath

    return click.option(
        "--prometheus",
        "prometheus_path",
        metavar="FILE",
        type=UsablePath(),
        callback=_check_path,
        help="Also write the results as Prometheus metrics (node_exporter textfile collector "
        "format, *.prom, replaced atomically), e.g. "
        "/var/lib/prometheus/node-exporter/dlcheck.prom.",
    )(function)
