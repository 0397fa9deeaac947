"""Read one run's fetched reports (<run>/<host>/...) into one row per host.

`playbooks/verify.yml` leaves, per inventory host, a folder with:
  status.json  written by the controller: {"host", "state": ok|failed|unreachable, ...}
  check.json   `dlcheck --json`          bench.json  `dlcheck bench --json` (optional)
  smoke.json   the smoke tests' summary  junit.xml   the smoke tests' JUnit XML
  perf.json    `dlcheck perf --json` (optional)
Every folder becomes a row, whatever is missing or broken in it: a fleet report that silently
drops a host is worse than none. The files come from other machines, so they are untrusted:
each is read only if it is a regular file of sane size, must be UTF-8 JSON, must match its
schema (dlcheck/schemas/), and every string shown is cleaned of control characters.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcheck import schema
from dlcheck.models import ExitCode, Status
from dlcheck.text import clean

# Host states, best to worst. "cpu_only" is a working host without a usable GPU.
READY, CPU_ONLY, NOT_READY, FAILED, UNREACHABLE, NO_REPORT = (
    "ready", "cpu_only", "not_ready", "failed", "unreachable", "no_report")  # fmt: skip
STATES = (READY, CPU_ONLY, NOT_READY, FAILED, UNREACHABLE, NO_REPORT)
PROBLEM_STATES = (NOT_READY, FAILED, UNREACHABLE, NO_REPORT)
STATE_STATUS = {READY: Status.PASS, CPU_ONLY: Status.INFO}  # every other state is a FAIL
REPORT_FILES = ("check.json", "bench.json", "perf.json", "smoke.json", "junit.xml")
MAX_REPORT_BYTES = 16 * 1024 * 1024  # a check.json is ~20 kB, a book-protocol bench.json ~200 kB
TEXT_LIMIT = 300  # characters of any one string from a report that reach a row
BUSY_NOTE = "the machine was busy before the run"  # dlcheck bench's own words (commands/bench)
FIX_LIMIT = 600  # a fix is a command to paste: longer, but still bounded


@dataclass
class HostRow:
    """One host in one run: what the table shows, and the facts a later run is compared on."""

    host: str
    state: str  # one of STATES
    gpus: list[str] = field(default_factory=list)  # GPU names, one per device
    driver: str | None = None
    cuda: str | None = None  # CUDA version the driver supports
    frameworks: dict[str, str] = field(default_factory=dict)  # name -> "2.13.0 (cuda 12.8)"
    verdict: str | None = None  # dlcheck's own verdict, as reported
    speedup: dict[str, float | None] = field(default_factory=dict)
    smoke: dict[str, int] = field(default_factory=dict)  # passed/failed/skipped/error counts
    problems: list[str] = field(default_factory=list)  # one line each, why the host is not ready
    warnings: list[str] = field(default_factory=list)  # "code: message" of each WARN check
    perf: str | None = None  # one line from perf.json: a slow GPU stands out (dlcheck.perf.fleet)
    perf_status: str | None = None
    # The facts runs are compared on (dlcheck.fleet.changes) and the HTML report shows.
    gpu_list: list[dict[str, Any]] = field(default_factory=list)  # index, name, id, memory_mib
    versions: dict[str, str | None] | None = None  # framework -> version, None = not installed
    checks: list[dict[str, Any]] = field(default_factory=list)  # code, status, message, fix
    bench: list[dict[str, Any]] = field(default_factory=list)  # impl, device, epoch seconds
    bench_busy: bool = False  # dlcheck bench said the machine was busy: its times are not judged
    perf_tests: list[dict[str, Any]] = field(default_factory=list)  # device, test, measured
    smoke_failed: list[str] = field(default_factory=list)  # node ids that failed or errored

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": self.state,
            "gpu_count": len(self.gpus),
            "gpus": self.gpus,
            "gpu_list": self.gpu_list,
            "driver": self.driver,
            "cuda": self.cuda,
            "frameworks": self.frameworks,
            "versions": self.versions,
            "verdict": self.verdict,
            "speedup": self.speedup,
            "best_speedup": self.best_speedup,
            "bench": self.bench,
            "bench_busy": self.bench_busy,
            "smoke": self.smoke,
            "smoke_failed": self.smoke_failed,
            "problems": self.problems,
            "warnings": self.warnings,
            "warning_codes": self.warning_codes,
            "checks": self.checks,
            "perf": self.perf,
            "perf_status": self.perf_status,
            "perf_tests": self.perf_tests,
        }

    @property
    def warning_codes(self) -> list[str]:
        return list(dict.fromkeys(w.split(":", 1)[0] for w in self.warnings))

    @property
    def best_speedup(self) -> float | None:
        values = [v for v in self.speedup.values() if isinstance(v, (int, float))]
        return max(values) if values else None

    @property
    def status(self) -> Status:
        return STATE_STATUS.get(self.state, Status.FAIL)


class ReportError(Exception):
    """A report file exists but cannot be used; the message names file and cause."""


def read_report(path: Path, schema_name: str) -> dict[str, Any] | None:
    """The validated document in `path`; None when absent; ReportError when unusable."""
    name = path.name
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ReportError(f"{name}: cannot read it ({error.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        raise ReportError(f"{name}: is a symbolic link; not followed (reports are plain files)")
    if not stat.S_ISREG(info.st_mode):
        raise ReportError(f"{name}: is not a regular file")
    if info.st_size > MAX_REPORT_BYTES:
        raise ReportError(f"{name}: {info.st_size} bytes, over the {MAX_REPORT_BYTES} limit")
    try:
        # O_NOFOLLOW|O_NONBLOCK: a file swapped for a link or FIFO since lstat is refused,
        # never followed or waited on.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            # Its own size (+1 to see growth), never the limit: a 16 MiB buffer per small file
            # doubled the read time of a 1,000-host fleet.
            size = os.fstat(handle.fileno()).st_size
            raw = handle.read(min(size, MAX_REPORT_BYTES) + 1)
    except OSError as error:
        raise ReportError(f"{name}: cannot read it ({error.strerror})") from None
    if len(raw) > MAX_REPORT_BYTES:
        raise ReportError(f"{name}: over the {MAX_REPORT_BYTES} byte limit")
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise ReportError(f"{name}: not UTF-8 text (binary or corrupted)") from None
    except (ValueError, RecursionError) as error:
        if "int_max_str_digits" in str(error):  # Python's advice to programmers: not for a user
            error = "a number longer than Python reads: 4300 digits"
        raise ReportError(f"{name}: not valid JSON ({clean(error, 120)})") from None
    if schema_name != "status":
        _known_envelope(name, body)
    try:
        schema.validate(schema_name, body)
    except schema.SchemaError as error:
        raise ReportError(f"{name}: does not match its schema: {clean(error, 200)}") from None
    return body


def _no_constant(word: str):
    raise ValueError(f"{word} is not a JSON number")


def _known_envelope(name: str, body: Any) -> None:
    version = body.get("schema") if isinstance(body, dict) else None
    known = schema.KNOWN_ENVELOPE
    if isinstance(version, str) and version.startswith("dlcheck/") and version != known:
        raise ReportError(
            f"{name}: written in schema {clean(version, 40)}, which this dlcheck does not know "
            f"(it reads {known}); use the same dlcheck version on the "
            "controller as on the hosts"
        )


def _text(value: Any) -> str:
    return clean(value, TEXT_LIMIT)


def _framework_label(record: dict[str, Any]) -> str | None:
    if not record.get("installed"):
        return None
    label = _text(record.get("version") or "?")
    details = []
    if record.get("cuda"):
        details.append(f"cuda {_text(record['cuda'])}")
    if isinstance(record.get("gpu_count"), int):
        details.append(f"{record['gpu_count']} GPU")
    if record.get("backend"):
        details.append(_text(record["backend"]))
    return f"{label} ({', '.join(details)})" if details else label


def _read_check(row: HostRow, folder: Path) -> None:
    body = read_report(folder / "check.json", "check")
    if body is None:
        row.problems.append("check.json missing: dlcheck did not run or its report was not fetched")
        return
    data = body["data"]
    row.verdict = data["verdict"]
    driver = data["driver"]
    row.driver = _text(driver["version"]) if driver["version"] else None
    row.cuda = _text(driver["cuda_driver_version"]) if driver["cuda_driver_version"] else None
    row.gpus = [_text(g["name"] or "GPU") for g in data["gpus"]]
    row.gpu_list = [
        {"index": g["index"], "name": _text(g["name"] or "GPU"), "memory_mib": g["memory.total"],
         # The masked UUID (dlcheck gpu's keyed hash) is stable per GPU: what "lost" is told by.
         "id": _text(g["uuid"]) if g["uuid"] else f"index {g['index']}"}
        for g in data["gpus"]
    ]  # fmt: skip
    row.versions = {}
    for name, record in sorted((data["frameworks"] or {}).items()):
        label = _framework_label(record)
        installed = bool(record.get("installed"))
        row.versions[_text(name)] = _text(record.get("version") or "?") if installed else None
        if label:
            row.frameworks[_text(name)] = label
    row.checks = [
        {"code": _text(c["code"]), "status": c["status"], "message": _text(c["message"]),
         "fix": clean(c["fix"], FIX_LIMIT) if c["fix"] else None}
        for c in data["checks"]
    ]  # fmt: skip
    row.warnings = [f"{_text(c['code'])}: {_text(c['message'])}"
                    for c in data["checks"] if c["status"] == "WARN"]  # fmt: skip
    if row.verdict not in (READY, CPU_ONLY):
        failing = [_text(c["code"]) for c in data["checks"] if c["status"] == "FAIL"]
        detail = f" (failed: {', '.join(failing)})" if failing else ""
        row.problems.append(f"dlcheck verdict {row.verdict}{detail}")


def _read_bench(row: HostRow, folder: Path) -> None:
    body = read_report(folder / "bench.json", "bench")
    if body is None:  # the benchmark is optional
        return
    data = body["data"]
    row.speedup = {_text(k): v for k, v in data["speedup"].items()}
    row.bench_busy = any(str(note).startswith(BUSY_NOTE) for note in data["notes"])
    for result in data["results"]:
        times = [t for t in result.get("epoch_times") or () if isinstance(t, (int, float))]
        row.bench.append({
            "impl": _text(result["impl"]),
            "device": _text(result["device"]),
            "median_epoch_s": result["median_epoch_s"],
            # The spread of one run's epochs: what "beyond noise" is measured against.
            "min_epoch_s": min(times) if times else result.get("min_epoch_s"),
            "max_epoch_s": max(times) if times else result.get("max_epoch_s"),
            "epochs": len(times),
            "verdict": result["verdict"],
            "error": clean(result["error"], TEXT_LIMIT) if result["error"] else None,
        })  # fmt: skip


def _read_perf(row: HostRow, folder: Path) -> None:
    body = read_report(folder / "perf.json", "perf")
    if body is None:  # optional
        return
    from dlcheck.perf.fleet import fleet_summary

    summary = fleet_summary(body)
    row.perf, row.perf_status = _text(summary["cell"]), summary["status"]
    row.perf_tests = perf_tests(body["data"])
    if summary["status"] == "FAIL":
        row.problems.append(f"perf: {row.perf}")


def _read_smoke(row: HostRow, folder: Path) -> None:
    body = read_report(folder / "smoke.json", "smoke")
    if body is None:
        row.problems.append("smoke.json missing: smoke tests did not run or were not fetched")
        return
    data = body["data"]
    row.smoke = {k: data["summary"][k] for k in ("passed", "failed", "skipped", "error")}
    broken = [t for t in data["tests"] if t["outcome"] in ("failed", "error")]
    row.smoke_failed = sorted({_short_nodeid(_text(t["nodeid"])) for t in broken})
    if row.smoke["failed"] or row.smoke["error"]:
        names = ", ".join(_short_nodeid(_text(t["nodeid"])) for t in broken[:3])
        more = f" +{len(broken) - 3}" if len(broken) > 3 else ""
        # The first failure's own words ("torch is not importable ...") say what is wrong;
        # test names alone are ambiguous (torch and TensorFlow share test names).
        reason = next((clean(t["reason"], 200) for t in broken if t.get("reason")), "")
        row.problems.append(
            f"smoke tests: {row.smoke['failed'] + row.smoke['error']} failed ({names}{more})"
            + (f"; first: {reason}" if reason else "")
        )


def perf_tests(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every measured number of a perf report: device ("gpu0", "cpu", "p2p"), test, value, the
    low/high of its timed repeats (its own noise), unit and status."""
    found = []
    groups = [(f"gpu{g['index']}", g["tests"]) for g in data["gpus"]]
    groups += [("cpu", (data["cpu"] or {}).get("tests") or ()), ("p2p", data["p2p"])]
    for device, tests in groups:
        for test in tests:
            if isinstance(test.get("measured"), (int, float)):
                found.append({"device": device, "test": _text(test["name"]),
                              "measured": test["measured"], "low": test.get("low"),
                              "high": test.get("high"), "unit": _text(test["unit"]),
                              "status": test["status"]})  # fmt: skip
    return found


def _short_nodeid(nodeid: str) -> str:
    """smoke_tests/test_torch.py::test_x -> test_torch.py::test_x (file and test, no folder)."""
    return nodeid.rsplit("/", 1)[-1]


def read_host(folder: Path) -> HostRow:
    """One host's row; never raises for bad report content."""
    row = HostRow(host=_text(folder.name), state=NO_REPORT)
    if folder.is_symlink() or not folder.is_dir():
        row.problems.append("not a host folder (a symbolic link or a file); not read")
        return row
    try:
        status = read_report(folder / "status.json", "status") or {}
    except ReportError as error:
        status = {}
        row.problems.append(str(error))
    state = status.get("state")
    if state == UNREACHABLE:
        row.state = UNREACHABLE
        row.problems.append(f"unreachable: {_text(status.get('message') or 'no connection')}")
        return row
    if state == FAILED:
        task = status.get("failed_task")
        row.problems.append(
            f"verify run failed{f' at {_text(task)!r}' if task else ''}: "
            f"{_text(status.get('message') or '?')}"
        )
    for reader in (_read_check, _read_bench, _read_perf, _read_smoke):
        try:
            reader(row, folder)
        except ReportError as error:
            row.problems.append(str(error))
    if state == FAILED:
        row.state = FAILED
    elif row.problems:
        fetched = any(os.path.lexists(folder / n) for n in REPORT_FILES)
        row.state = NOT_READY if fetched else NO_REPORT
    else:
        row.state = CPU_ONLY if row.verdict == CPU_ONLY else READY
    return row


def read_fleet(reports_dir: Path) -> list[HostRow]:
    """Rows for every host folder under reports_dir, sorted by host name."""
    entries = sorted(p for p in reports_dir.iterdir() if not p.name.startswith("."))
    return [read_host(entry) for entry in entries if entry.is_dir() or entry.is_symlink()]


def fleet_exit_code(rows: list[HostRow]) -> ExitCode:
    """NOT_READY if any host has a problem; CPU_ONLY if all work but some lack a GPU."""
    if not rows or any(r.state in PROBLEM_STATES for r in rows):
        return ExitCode.NOT_READY
    if any(r.state == CPU_ONLY for r in rows):
        return ExitCode.CPU_ONLY
    return ExitCode.READY


def summary(rows: list[HostRow]) -> dict[str, int]:
    counts = {"hosts": len(rows)}
    for state in STATES:
        counts[state] = sum(r.state == state for r in rows)
    return counts
