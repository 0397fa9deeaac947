"""Battery: malformed report files of every kind for `dlcheck fleet`, mixed with good hosts.

Every case is a reports folder with two good hosts and one bad one. Whatever is wrong with the
bad one, `dlcheck fleet` must show both good hosts, and a row for the bad host that says what
is wrong with its report; the --json output must match fleet.schema.json. Exit 1 (a host is
not ready) unless the case says otherwise. Run in this process (fleet starts no child).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dlcheck import models
from tests.battery.harness import judge, run_inside
from tests.fakes.reports import bench_data, check_data, smoke_data, write_host

GOOD = ("good-a", "good-b")
BAD = "bad-host"


def envelope(command: str, data) -> str:
    return models.envelope(command, "PASS", data)


def check_with(**changes) -> str:
    """A real check.json body with some of its data fields replaced."""
    data = check_data()
    for dotted, value in changes.items():
        *path, key = dotted.split(".")
        target = data
        for step in path:
            target = target[int(step)] if isinstance(target, list) else target[step]
        target[int(key) if isinstance(target, list) else key] = value
    return envelope("check", data)


def body_of(text: str):
    return lambda folder: (folder / "check.json").write_text(text)


def raw(data: bytes):
    return lambda folder: (folder / "check.json").write_bytes(data)


def good_check_text() -> str:
    return envelope("check", check_data())


def _truncated(folder):
    text = good_check_text()
    (folder / "check.json").write_text(text[: len(text) // 2])


def _huge(folder):
    with open(folder / "check.json", "wb") as handle:  # sparse: 17 MiB of nothing, instantly
        handle.truncate(17 * 1024 * 1024)


def _symlink_to_good(folder):
    (folder / "check.json").rename(folder / "real.json")
    os.symlink(folder / "real.json", folder / "check.json")


def _symlink_to(target):
    def breaks(folder):
        (folder / "check.json").unlink()
        os.symlink(target, folder / "check.json")

    return breaks


def _fifo(folder):
    (folder / "check.json").unlink()
    os.mkfifo(folder / "check.json")


def _directory(folder):
    (folder / "check.json").unlink()
    (folder / "check.json").mkdir()
    (folder / "check.json" / "check.json").write_text(good_check_text())


def _status(text: str):
    return lambda folder: (folder / "status.json").write_text(text)


def _smoke(text: str):
    return lambda folder: (folder / "smoke.json").write_text(text)


def _bench(text: str):
    return lambda folder: (folder / "bench.json").write_text(text)


ESC = "\x1b[2J\x1b]0;pwned\x07\x1b[31m"
HUGE_TEXT = "x" * 1_000_000

# (id, how the bad host's files are broken, words its row must say)
CASES = [
    ("truncated", _truncated, "not valid JSON"),
    ("empty-file", body_of(""), "not valid JSON"),
    ("binary", raw(bytes(range(256)) * 20), "not UTF-8"),
    ("utf16", raw(good_check_text().encode("utf-16")), "not UTF-8"),
    ("nul-bytes", raw(b"\0" * 4096), "not valid JSON"),
    ("json-list", body_of("[]"), "schema"),
    ("json-null", body_of("null"), "schema"),
    ("json-string", body_of('"ready"'), "schema"),
    ("json-number", body_of("1"), "schema"),
    ("data-not-object", body_of(envelope("check", ["ready"])), "schema"),
    ("verdict-int", body_of(check_with(verdict=3)), "schema"),
    ("verdict-unknown", body_of(check_with(verdict="exploded")), "schema"),
    ("gpus-string", body_of(check_with(gpus="four")), "schema"),
    ("gpu-name-int", body_of(check_with(**{"gpus.0.name": 42})), "schema"),
    ("gpu-record-null", body_of(check_with(**{"gpus.0": None})), "schema"),
    ("checks-dict", body_of(check_with(checks={"a": 1})), "schema"),
    ("check-status-bogus", body_of(check_with(**{"checks.0.status": "MAYBE"})), "schema"),
    ("driver-version-number", body_of(check_with(**{"driver.version": 580.95})), "schema"),
    ("frameworks-list", body_of(check_with(frameworks=["torch"])), "schema"),
    ("framework-version-dict",
     body_of(check_with(**{"frameworks.torch.version": {"x": 1}})), "schema"),  # fmt: skip
    ("missing-data", body_of('{"schema": "dlcheck/1", "command": "check"}'), "schema"),
    ("command-mismatch", body_of(envelope("gpu", {"driver": {}, "gpus": [], "nvml": {}})),
     "schema"),  # fmt: skip
    ("schema-version-int", body_of(json.dumps({"schema": 1, "command": "check"})), "schema"),
    ("schema-version-list", body_of(json.dumps({"schema": ["dlcheck/1"]})), "schema"),
    ("schema-old", body_of(good_check_text().replace("dlcheck/1", "dlcheck/0")), "dlcheck/0"),
    ("schema-future", body_of(good_check_text().replace("dlcheck/1", "dlcheck/2")),
     "dlcheck/2, which this dlcheck does not know"),  # fmt: skip
    ("schema-foreign", body_of(good_check_text().replace("dlcheck/1", "other/1")), "schema"),
    ("nan-literal", body_of('{"schema": "dlcheck/1", "x": NaN}'), "not a JSON number"),
    ("infinity-literal", body_of('{"schema": "dlcheck/1", "x": Infinity}'), "not a JSON number"),
    ("minus-infinity", body_of('{"schema": "dlcheck/1", "x": -Infinity}'), "not a JSON number"),
    ("nan-in-data", body_of(good_check_text().replace('"exit_code": 0', '"exit_code": NaN')),
     "not a JSON number"),  # fmt: skip
    ("deep-nesting", body_of("[" * 100_000 + "]" * 100_000), "not valid JSON"),
    ("deep-object", body_of('{"a":' * 50_000 + "1" + "}" * 50_000), "not valid JSON"),
    ("int-100k-digits", body_of('{"schema": "dlcheck/1", "n": ' + "9" * 100_000 + "}"),
     "a number longer than Python reads"),  # fmt: skip
    ("float-1e400", body_of(good_check_text().replace('"exit_code": 0', '"exit_code": 1e400')),
     "schema"),  # fmt: skip
    ("huge-file", _huge, "over the"),
    ("symlink-to-report", _symlink_to_good, "symbolic link"),
    ("symlink-to-dev-zero", _symlink_to("/dev/zero"), "symbolic link"),
    ("symlink-loop", lambda f: _symlink_to(f / "check.json")(f), "symbolic link"),
    ("symlink-dangling", _symlink_to("/nonexistent/check.json"), "symbolic link"),
    ("fifo", _fifo, "not a regular file"),
    ("directory-named-check-json", _directory, "not a regular file"),
    ("status-garbage", _status("{{{"), "status.json: not valid JSON"),
    ("status-wrong-types", _status('{"host": 3, "state": ["ok"]}'), "status.json"),
    ("status-unknown-state", _status('{"state": "exploded"}'), "status.json"),
    ("status-fifo", lambda f: (os.unlink(f / "status.json"), os.mkfifo(f / "status.json")),
     "status.json: is not a regular file"),  # fmt: skip
    ("smoke-summary-strings", _smoke(envelope("smoke", {
        "summary": {"passed": "ten", "failed": 0, "skipped": 0, "error": 0}, "tests": []})),
     "smoke.json"),  # fmt: skip
    ("smoke-tests-not-list", _smoke(envelope("smoke", {
        "summary": {"passed": 1, "failed": 0, "skipped": 0, "error": 0}, "tests": {}})),
     "smoke.json"),  # fmt: skip
    ("bench-speedup-string", _bench(envelope("bench", {**bench_data({}), "speedup": "fast"})),
     "bench.json"),  # fmt: skip
    ("bench-speedup-values", _bench(envelope("bench", bench_data({"torch": "9000x"}))),
     "bench.json"),  # fmt: skip
    ("bench-binary", lambda f: (f / "bench.json").write_bytes(b"\x89PNG\r\n\x1a\n" * 100),
     "bench.json: not UTF-8"),  # fmt: skip
]

# Good reports whose strings are hostile: they must show, cleaned and escaped (exit 1: the
# verdict in them is not_ready, so the row names the failing check).
HOSTILE = [
    ("markup-in-gpu-name", {"gpus.0.name": "[/][bold]A10G[/bold][link=http://x]y"}, "[/][bold]"),
    ("esc-in-gpu-name", {"gpus.0.name": f"A10G{ESC}"}, "A10G"),
    ("markup-in-driver", {"driver.version": "[/]580"}, "[/]580"),
    ("esc-in-framework", {"frameworks.torch.version": f"2.13{ESC}[/]"}, "2.13"),
    ("lone-surrogate", {"gpus.0.name": "A10G\ud800"}, "A10G"),
    ("bidi-override", {"gpus.0.name": "A10G\u202egnp.exe"}, "A10G"),
    ("huge-string", {"gpus.0.name": HUGE_TEXT}, "xxxx"),
    ("markup-in-check-code", {"verdict": "not_ready", "checks.0.status": "FAIL",
                              "checks.0.code": "[/]\x1b[2Jcode[bold]"}, "code"),  # fmt: skip
]


def _fleet(tmp_path: Path, breaks, host=BAD) -> Path:
    reports = tmp_path / "reports"
    for name in GOOD:
        write_host(reports, name, check=check_data(), smoke=smoke_data(),
                   bench=bench_data({"torch": 3.0}))  # fmt: skip
    folder = write_host(reports, host, check=check_data(), smoke=smoke_data())
    breaks(folder)
    return reports


def _assert_rows(outcome_json, outcome_text, bad_host: str, words: str, bad_state=None):
    hosts = {h["host"]: h for h in json.loads(outcome_json.stdout)["data"]["hosts"]}
    for name in GOOD:
        assert hosts[name]["state"] == "ready", hosts[name]
        assert name in outcome_text.stdout
    bad = hosts[bad_host]
    assert bad["state"] in (bad_state or ("not_ready", "no_report", "failed")), bad
    problems = " ".join(bad["problems"])
    assert words in problems, problems
    assert "sys." not in problems, "advice for programmers is not for the user: " + problems
    assert words in outcome_text.stdout or len(words) > 60, outcome_text.stdout
    for text in (outcome_json.stdout, outcome_text.stdout):
        assert "\x1b" not in text and "\x07" not in text


@pytest.mark.parametrize("name, breaks, words", CASES, ids=[c[0] for c in CASES])
def test_malformed_report_is_a_row_and_the_others_still_show(name, breaks, words, tmp_path):
    reports = _fleet(tmp_path, breaks)
    as_json = run_inside(["fleet", str(reports), "--json"], tmp_path / "json")
    judge(as_json, 1, "fleet")
    as_text = run_inside(["fleet", str(reports)], tmp_path / "text")
    judge(as_text, 1)
    _assert_rows(as_json, as_text, BAD, words)


@pytest.mark.parametrize("name, changes, shown", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_strings_in_a_valid_report_are_cleaned(name, changes, shown, tmp_path):
    reports = _fleet(tmp_path, body_of(check_with(**changes)))
    as_json = run_inside(["fleet", str(reports), "--json"], tmp_path / "json")
    as_text = run_inside(["fleet", str(reports)], tmp_path / "text")
    ready = "verdict" not in changes
    judge(as_json, 1 if not ready else 0, "fleet")
    judge(as_text, 1 if not ready else 0)
    for text in (as_json.stdout, as_text.stdout):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert len(text) < 100_000  # a 1 MB string from a report is cut, not printed whole
    assert shown in as_text.stdout


# Host folder names are untrusted too: markup, ESC, non-UTF-8 bytes, the longest allowed name.
FOLDERS = [
    ("folder-markup", "host[bold]red[blink]x[link=x]", "host[bold]red[blink]x[link=x]"),
    ("folder-esc", f"host{ESC}x", "hostx"),
    ("folder-bidi", "host\u202ex", "hostx"),
    ("folder-newline", "host\nname\ttab", "host"),
    ("folder-non-utf8", os.fsdecode(b"host\xff\xfe"), "host"),
    ("folder-255-bytes", "h" * 255, "hhhh"),
]


@pytest.mark.parametrize("name, folder, shown", FOLDERS, ids=[c[0] for c in FOLDERS])
def test_hostile_host_folder_names(name, folder, shown, tmp_path):
    reports = _fleet(tmp_path, lambda f: None, host=folder)
    as_json = run_inside(["fleet", str(reports), "--json"], tmp_path / "json")
    as_text = run_inside(["fleet", str(reports)], tmp_path / "text")
    judge(as_json, 0, "fleet")
    judge(as_text, 0)
    hosts = json.loads(as_json.stdout)["data"]["hosts"]
    assert len(hosts) == 3 and all(h["state"] == "ready" for h in hosts), hosts
    for text in (as_json.stdout, as_text.stdout):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert shown in as_text.stdout


def test_a_broken_fleet_of_every_kind_at_once(tmp_path):
    """All the bad hosts above in one folder, with the good ones: one row each, exit 1."""
    reports = tmp_path / "reports"
    for name in GOOD:
        write_host(reports, name, check=check_data(), smoke=smoke_data())
    for name, breaks, _ in CASES:
        breaks(write_host(reports, name, check=check_data(), smoke=smoke_data()))
    as_json = run_inside(["fleet", str(reports), "--json"], tmp_path / "json")
    judge(as_json, 1, "fleet")
    hosts = {h["host"]: h for h in json.loads(as_json.stdout)["data"]["hosts"]}
    assert set(hosts) == {*GOOD, *(c[0] for c in CASES)}
    assert all(hosts[name]["state"] == "ready" for name in GOOD)
    assert all(hosts[c[0]]["problems"] for c in CASES)
