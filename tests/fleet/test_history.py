"""`dlcheck fleet` over a history of runs (REPORTS/<run-id>/<host>/): the latest run, and what
changed per host since the previous run or `--since`."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import jsonschema
import pytest

from dlcheck import gpu, schema
from dlcheck.commands.fleet import FleetOptions, build
from dlcheck.fleet.changes import _beyond_noise
from dlcheck.fleet.runs import Run, SinceError, baseline, find_runs, parse_duration
from dlcheck.models import ExitCode
from tests.fakes.cli import invoke
from tests.fakes.fleet import bench_rows, write_fleet

OLD, NEW = "20261201T020000Z", "20261202T020000Z"
HOSTS = 8  # gpu-0000 not ready, gpu-0001 unreachable, gpu-0002 CPU-only, gpu-0003 a warning


def _second_run(index, files):
    """What happened between the two runs, one thing per host."""
    check = files.get("check.json")
    if index == 4:  # torch uninstalled
        check["frameworks"]["torch"].update(installed=False, version=None)
    elif index == 5:  # GPU 1 fell off the bus; a new driver
        check["gpus"] = check["gpus"][:1]
        check["driver"]["version"] = "580.105.08"
    elif index == 6:  # 40 % slower on every benchmark row: beyond noise
        files["bench.json"] = bench_rows(random.Random(6), slow=1.4)
    elif index == 7:  # 2 % slower: within noise, not a change
        files["bench.json"] = bench_rows(random.Random(7), slow=1.02)
    elif index == 3:  # its warning cleared
        check["checks"] = [c for c in check["checks"] if c["status"] != "WARN"]


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("reports")
    write_fleet(root / OLD, HOSTS, seed=1)
    write_fleet(root / NEW, HOSTS, seed=1, edit=_second_run)  # same seed: same noise draws
    (root / "latest").symlink_to(root / NEW)  # what verify.yml leaves: ignored, not a run
    return root


def changes_by_host(report):
    found = {}
    for change in report.data.changes:
        found.setdefault(change.host, []).append(change)
    return found


def test_the_latest_run_is_shown_and_compared_with_the_previous(history):
    report = build(FleetOptions(history))
    data = report.data
    assert (data.history.layout, data.history.run, data.history.baseline) == ("runs", NEW, OLD)
    assert data.history.runs == [OLD, NEW]
    assert len(data.rows) == HOSTS and data.summary["unreachable"] == 1
    assert report.exit_code == ExitCode.NOT_READY


def test_each_change_is_named_on_its_host_and_nothing_else(history):
    found = changes_by_host(build(FleetOptions(history)))
    assert set(found) == {"gpu-0003", "gpu-0004", "gpu-0005", "gpu-0006"}  # not 7: noise

    (torch,) = found["gpu-0004"]
    assert (torch.kind, torch.subject, torch.before, torch.after, torch.effect) == (
        "framework", "torch", "2.13.0", "not installed", "worse")

    lost = {c.kind: c for c in found["gpu-0005"]}
    masked = gpu.mask_id("GPU-gpu-0005-1")
    assert (lost["gpu"].subject, lost["gpu"].after, lost["gpu"].detail) == (masked, None, "lost")
    assert (lost["driver"].before, lost["driver"].after) == ("580.95.05", "580.105.08")

    slower = found["gpu-0006"]
    assert {c.kind for c in slower} == {"bench"} and len(slower) == 6
    assert all(c.effect == "worse" and "no overlap" in c.detail for c in slower)

    (cleared,) = found["gpu-0003"]
    assert (cleared.kind, cleared.subject, cleared.before, cleared.after, cleared.effect) == (
        "check", "persistence_mode_off", "WARN", None, "better")


def test_a_host_that_became_unreachable_shows_its_state_not_every_fact_lost(tmp_path):
    write_fleet(tmp_path / OLD, 3, seed=1)

    def gone(index, files):
        if index == 2:
            files.clear()
            files["status.json"] = {"host": "gpu-0002", "state": "unreachable", "message": "x"}

    write_fleet(tmp_path / NEW, 3, seed=1, edit=gone)
    (change,) = build(FleetOptions(tmp_path)).data.changes
    assert (change.host, change.kind, change.before, change.after, change.effect) == (
        "gpu-0002", "state", "cpu_only", "unreachable", "worse")


def test_a_benchmark_on_a_busy_machine_is_not_judged(tmp_path):
    write_fleet(tmp_path / OLD, 1, seed=1)

    def busy_and_slow(index, files):
        files["bench.json"] = bench_rows(random.Random(0), slow=2.0)
        files["bench.json"]["notes"] = ["the machine was busy before the run (load average "
                                        "10.3 on 2 cores; children use 1 thread(s)): ..."]

    write_fleet(tmp_path / NEW, 1, seed=1, edit=busy_and_slow)
    report = build(FleetOptions(tmp_path))
    assert report.data.rows[0].bench_busy and report.data.changes == []


def test_a_run_folder_without_hosts_yet_is_left_out_and_named(tmp_path):
    write_fleet(tmp_path / OLD, 2, seed=1)
    write_fleet(tmp_path / NEW, 2, seed=1)
    (tmp_path / "20261203T020000Z").mkdir()  # verify.yml just started, or died at once
    history = build(FleetOptions(tmp_path)).data.history
    assert (history.run, history.baseline) == (NEW, OLD)
    assert history.note == "left out 20261203T020000Z: no host folders in it yet"


def test_hosts_joining_and_leaving_the_inventory(tmp_path):
    write_fleet(tmp_path / OLD, 4, seed=1)
    write_fleet(tmp_path / NEW, 6, seed=1)
    (tmp_path / NEW / "gpu-0003").rename(tmp_path / "away")
    changes = {(c.host, c.detail) for c in build(FleetOptions(tmp_path)).data.changes}
    assert changes == {("gpu-0003", "not in this run"), ("gpu-0004", "new in this run"),
                       ("gpu-0005", "new in this run")}  # fmt: skip


def test_json_carries_history_and_changes_and_matches_its_schema(history):
    result = invoke(["fleet", "--json", str(history)])
    body = json.loads(result.stdout)
    schema.validate("fleet", body)  # fastjsonschema, as dlcheck reads reports
    jsonschema.validate(body, schema.load("fleet"))  # the reference validator agrees
    data = body["data"]
    assert data["history"] == {"layout": "runs", "run": NEW, "runs": [OLD, NEW],
                               "baseline": OLD, "since": None, "note": None}  # fmt: skip
    torch = [c for c in data["changes"] if c["host"] == "gpu-0004"]
    assert torch == [{"host": "gpu-0004", "kind": "framework", "subject": "torch",
                      "before": "2.13.0", "after": "not installed", "effect": "worse",
                      "detail": "removed"}]  # fmt: skip
    host = next(h for h in data["hosts"] if h["host"] == "gpu-0005")
    assert [g["id"] for g in host["gpu_list"]] == [gpu.mask_id("GPU-gpu-0005-0")]
    assert host["versions"]["torch"] == "2.13.0"


def test_table_lists_the_changes_after_the_hosts(history):
    out = invoke(["fleet", str(history)]).stdout
    assert f"dlcheck fleet: run {NEW}" in out
    tail = out[out.index(f"Changes since {OLD}"):]
    line = next(line for line in tail.splitlines() if line.startswith("gpu-0004"))
    assert line.split()[:5] == ["gpu-0004", "framework", "torch", "2.13.0", "not"]
    assert "10 changes on 4 hosts (8 for the worse)" in tail


def _runs(*ids: str) -> list[Run]:
    return [Run(i, Path(i)) for i in ids]


NOW = datetime(2026, 12, 3, 3, 0, tzinfo=timezone.utc)
RUNS = _runs("20261130T020000Z", "20261201T020000Z", "20261202T020000Z", "20261203T020000Z")


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        (None, "20261202T020000Z"),  # the previous run
        ("1d", "20261202T020000Z"),  # newest run at least a day before now (03:00)
        ("25h", "20261202T020000Z"),
        ("26h", "20261201T020000Z"),
        ("2d12h", "20261130T020000Z"),
        ("20261201T020000Z", "20261201T020000Z"),  # a run id
        ("20261201", "20261130T020000Z"),  # a day: its start, so the run before it
        ("2026-12-01T02:00:00Z", "20261201T020000Z"),
        ("20261201T23", "20261201T020000Z"),
    ],
)
def test_since_picks_the_newest_run_old_enough(since, expected):
    base, note = baseline(RUNS, since, NOW)
    assert base.id == expected and note is None


def test_since_older_than_every_run_uses_the_oldest_and_says_so():
    base, note = baseline(RUNS, "4w", NOW)
    assert base.id == "20261130T020000Z" and "no run is as old as --since 4w" in note


@pytest.mark.parametrize("since", ["yesterday", "1x", "-1d", "2026-13-01", "1d; rm -rf /"])
def test_since_that_means_nothing_is_refused(since):
    with pytest.raises(SinceError, match="give a run id"):
        baseline(RUNS, since, NOW)


def test_since_before_the_first_run_uses_the_first_and_says_so():
    base, note = baseline(RUNS, "20261101", NOW)
    assert base.id == "20261130T020000Z" and "oldest run, 20261130T020000Z" in note


def test_one_run_has_nothing_to_compare():
    base, note = baseline(RUNS[:1], "1d", NOW)
    assert base is None and "only one run" in note


def test_durations():
    assert parse_duration("1w2d3h4m5s") == timedelta(weeks=1, days=2, hours=3, minutes=4,
                                                     seconds=5)  # fmt: skip
    assert parse_duration("") is None and parse_duration("d") is None


def test_since_in_the_cli_is_a_usage_error_with_the_fix(history, tmp_path):
    bad = invoke(["fleet", "--since", "soon", str(history)])
    assert bad.code == ExitCode.USAGE and "give a run id" in bad.stderr
    (tmp_path / "h1").mkdir()
    single = invoke(["fleet", "--since", "1d", str(tmp_path)])
    assert single.code == ExitCode.USAGE and "no history" in single.stderr
    ok = invoke(["fleet", "--json", "--since", OLD[:11], str(history)])  # 20261201T02
    assert json.loads(ok.stdout)["data"]["history"]["baseline"] == OLD


def test_run_folders_are_found_and_everything_else_left_alone(history, tmp_path):
    assert [run.id for run in find_runs(history)] == [OLD, NEW]
    (tmp_path / "20261399T000000Z").mkdir()  # run-id shaped, but no date
    (tmp_path / "host-a").mkdir()
    assert find_runs(tmp_path) == []


@pytest.mark.parametrize(
    ("old", "new", "old_range", "new_range", "expected"),
    [
        (1.0, 1.5, (0.98, 1.02), (1.45, 1.55), "worse"),  # slower, ranges apart
        (1.0, 1.5, (0.9, 1.6), (1.45, 1.55), None),  # ranges overlap: noise
        (1.0, 1.06, (0.99, 1.01), (1.05, 1.07), None),  # apart, but under the 10 % floor
        (1.0, 0.5, (0.98, 1.02), (0.49, 0.51), "better"),
        (1.0, 1.2, (None, None), (None, None), None),  # no spread: 25 % floor
        (1.0, 1.3, (None, None), (None, None), "worse"),
    ],
)
def test_beyond_noise_for_seconds(old, new, old_range, new_range, expected):
    verdict = _beyond_noise(old, new, old_range, new_range, higher_is_better=False)
    assert (verdict[0] if verdict else None) == expected


def test_beyond_noise_for_throughput_is_the_other_way_round():
    effect, why = _beyond_noise(700.0, 300.0, (690, 710), (295, 305), higher_is_better=True)
    assert effect == "worse" and why.startswith("-57%")
