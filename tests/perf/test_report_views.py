"""Views of a perf report: the human table, the --plot figure, the fleet cell and the
per-GPU throughput other commands reuse. Built from the recorded runs in samples/."""

import io
import json
from pathlib import Path

import pytest

from dlcheck.models import Status
from dlcheck.perf import fleet, plot, verdicts
from dlcheck.perf.records import PerfResult
from dlcheck.render import Output
from dlcheck.render import perf as view

SAMPLES = Path(__file__).parent / "samples"


def report(*names):
    gpus = []
    for index, name in enumerate(names):
        run = json.loads((SAMPLES / f"{name}.json").read_text())
        g = verdicts.judge_gpu(0, run["identity"], run["tests"], run["telemetry"], {4242})
        g.index = index
        gpus.append(g)
    worst = Status.worst(g.status for g in gpus)
    result = PerfResult(
        cpu=None,
        gpus=gpus,
        p2p=[],
        software={"torch": "2.13.0"},
        nvml={"error": None, "detail": None},
        wall_s=48.2,
        status=worst,
    )
    return json.loads(json.dumps(result.to_dict()))  # exactly what --json would carry


def show(data):
    out = io.StringIO()
    view.render(data, Output(out, plain=True, width=160))
    return out.getvalue()


def test_plain_table_names_tests_numbers_and_fixes():
    text = show(report("healthy_h100_sxm", "power_capped_l40s"))
    assert text.startswith("dlcheck perf: WARN  (2 GPUs, 48.2 s)")
    assert "GPU 0  NVIDIA H100 80GB HBM3 (PCI 0x2330, datasheet row h100-sxm)  PASS" in text
    assert "GPU 1  NVIDIA L40S (PCI 0x26b9, datasheet row l40s)  WARN" in text
    assert "fix: sudo nvidia-smi -i 0 -pl 350" in text
    assert "matmul_bf16" in text and "731 TFLOP/s" in text
    assert "\x1b[" not in text  # plain: no colour codes into a pipe


def test_untrusted_names_cannot_inject_markup():
    data = report("healthy_h100_sxm")
    data["gpus"][0]["name"] = "[bold red]EVIL[/] GPU"
    assert "[bold red]EVIL[/] GPU" in show(data)


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "perf.png"
    plot.plot(report("healthy_h100_sxm", "x8_link_a100_pcie"), str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def test_fleet_cell_for_a_healthy_fleet():
    summary = fleet.fleet_summary(report("healthy_h100_sxm", "healthy_h100_sxm"))
    assert summary["status"] == "PASS"
    assert summary["cell"] == "PASS: 2 GPUs, bf16 731/731 TFLOP/s"
    assert summary["gpus"][0]["matmul"] == {
        "test": "matmul_bf16",
        "tflops": 731.0,
        "of_expected": pytest.approx(1.055, abs=0.01),
    }
    assert summary["gpus"][0]["memory_gbps"] == 2780.0


def test_fleet_cell_makes_the_slow_gpu_stand_out():
    envelope = {
        "schema": "dlcheck/1",
        "command": "perf",
        "status": "FAIL",
        "data": report("healthy_h100_sxm", "throttled_rtx4090", "power_capped_l40s"),
    }
    summary = fleet.fleet_summary(envelope)
    assert summary["cell"] == (
        "FAIL: GPU 1 matmul_fp16 at 44% of expected (thermal_slowdown); 1 more slow"
    )
    causes = [g["likely_cause"] for g in fleet.gpu_throughput(envelope)]
    assert causes == [None, "thermal_slowdown", "power_limit_lowered"]


@pytest.mark.parametrize(
    "bad",
    [
        None,
        [],
        "text",
        {"command": "check", "data": {"gpus": []}},
        {"data": {"gpus": "x"}},
        {"gpus": [None, 3, {"index": 0, "tests": "nope", "causes": [1]}]},
    ],
)
def test_fleet_summary_never_raises_on_bad_reports(bad):
    summary = fleet.fleet_summary(bad)
    assert isinstance(summary["cell"], str)


def test_recorded_gpu_reports_match_the_schema():
    from dlcheck import schema
    from dlcheck.models import ExitCode, Report

    data = report("healthy_h100_sxm", "throttled_rtx4090", "x8_link_a100_pcie", "power_capped_l40s")
    envelope = Report("perf", data, ExitCode.NOT_READY, Status.FAIL).envelope()
    schema.validate("perf", envelope)
    envelope["data"]["gpus"][0]["tests"][0]["status"] = "GOOD"
    with pytest.raises(schema.SchemaError):
        schema.validate("perf", envelope)
