"""Read a fleet's fetched reports (reports/<host>/...) into one row per host.

`playbooks/verify.yml` leaves, per inventory host, a folder with:
  status.json  written by the controller: {"host", "state": ok|failed|unreachable, ...}
  check.json   `dlcheck --json`          bench.json  `dlcheck bench --json` (optional)
  smoke.json   the smoke tests' summary  junit.xml   the smoke tests' JUnit XML
Every folder becomes a row, whatever is missing or broken in it: a fleet
report that silently drops a host is worse than none.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlcheck.models import ExitCode

# Host states, best to worst. "cpu_only" is a working host without a usable GPU.
READY, CPU_ONLY, NOT_READY, FAILED, UNREACHABLE, NO_REPORT = (
    "ready",
    "cpu_only",
    "not_ready",
    "failed",
    "unreachable",
    "no_report",
)
PROBLEM_STATES = (NOT_READY, FAILED, UNREACHABLE, NO_REPORT)


@dataclass
class HostRow:
    host: str
    state: str  # one of the states above
    gpus: list[str] = field(default_factory=list)  # GPU names, one per device
    driver: str | None = None
    cuda: str | None = None  # CUDA version the driver supports
    frameworks: dict[str, str] = field(default_factory=dict)  # name -> "2.13.0 (cuda 12.8)"
    verdict: str | None = None  # dlcheck's own verdict, as reported
    speedup: dict[str, float | None] = field(default_factory=dict)
    smoke: dict[str, int] = field(default_factory=dict)  # passed/failed/skipped/error counts
    problems: list[str] = field(default_factory=list)  # one line each, why the host is not ready

    def to_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "state": self.state,
            "gpu_count": len(self.gpus),
            "gpus": self.gpus,
            "driver": self.driver,
            "cuda": self.cuda,
            "frameworks": self.frameworks,
            "verdict": self.verdict,
            "speedup": self.speedup,
            "best_speedup": self.best_speedup,
            "smoke": self.smoke,
            "problems": self.problems,
        }

    @property
    def best_speedup(self) -> float | None:
        values = [v for v in self.speedup.values() if isinstance(v, (int, float))]
        return max(values) if values else None


class ReportError(Exception):
    """A report file exists but cannot be used; the message names file and cause."""


def _load_json(path: Path) -> dict[str, Any] | None:
    """The parsed JSON object, None when absent; ReportError when unreadable."""
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"{path.name}: not valid JSON ({error})") from None
    if not isinstance(body, dict):
        raise ReportError(f"{path.name}: expected a JSON object, got {type(body).__name__}")
    return body


def _envelope_data(body: dict[str, Any], name: str) -> dict[str, Any]:
    data = body.get("data")
    if not isinstance(data, dict):
        raise ReportError(f"{name}: no 'data' object (not a dlcheck/1 envelope)")
    return data


def _framework_label(name: str, record: dict[str, Any]) -> str | None:
    if not isinstance(record, dict) or not record.get("installed"):
        return None
    label = str(record.get("version") or "?")
    details = []
    if record.get("cuda"):
        details.append(f"cuda {record['cuda']}")
    if isinstance(record.get("gpu_count"), int):
        details.append(f"{record['gpu_count']} GPU")
    if record.get("backend"):
        details.append(str(record["backend"]))
    return f"{label} ({', '.join(details)})" if details else label


def _read_check(row: HostRow, folder: Path) -> None:
    body = _load_json(folder / "check.json")
    if body is None:
        row.problems.append("check.json missing: dlcheck did not run or its report was not fetched")
        return
    data = _envelope_data(body, "check.json")
    row.verdict = data.get("verdict")
    driver = data.get("driver") or {}
    row.driver = driver.get("version")
    row.cuda = driver.get("cuda_driver_version")
    row.gpus = [str(g.get("name") or "GPU") for g in data.get("gpus") or [] if isinstance(g, dict)]
    for name, record in sorted((data.get("frameworks") or {}).items()):
        label = _framework_label(name, record)
        if label:
            row.frameworks[name] = label
    if row.verdict not in (READY, CPU_ONLY):
        failing = [
            c.get("code", "?")
            for c in data.get("checks") or []
            if isinstance(c, dict) and c.get("status") == "FAIL"
        ]
        detail = f" (failed: {', '.join(failing)})" if failing else ""
        row.problems.append(f"dlcheck verdict {row.verdict or 'missing'}{detail}")


def _read_bench(row: HostRow, folder: Path) -> None:
    body = _load_json(folder / "bench.json")
    if body is None:  # the benchmark is optional
        return
    data = _envelope_data(body, "bench.json")
    speedup = data.get("speedup") or {}
    row.speedup = {k: v for k, v in speedup.items() if v is None or isinstance(v, (int, float))}


def _read_smoke(row: HostRow, folder: Path) -> None:
    body = _load_json(folder / "smoke.json")
    if body is None:
        row.problems.append("smoke.json missing: smoke tests did not run or were not fetched")
        return
    data = _envelope_data(body, "smoke.json")
    summary = data.get("summary") or {}
    row.smoke = {k: int(summary.get(k, 0)) for k in ("passed", "failed", "skipped", "error")}
    broken = [
        t
        for t in data.get("tests") or []
        if isinstance(t, dict) and t.get("outcome") in ("failed", "error")
    ]
    if row.smoke["failed"] or row.smoke["error"]:
        names = ", ".join(_short_nodeid(str(t.get("nodeid", "?"))) for t in broken[:3])
        more = f" +{len(broken) - 3}" if len(broken) > 3 else ""
        # The first failure's own words ("torch is not importable ...") say what is wrong;
        # test names alone are ambiguous (torch and TensorFlow share test names).
        reason = next((str(t["reason"]) for t in broken if t.get("reason")), "")
        row.problems.append(
            f"smoke tests: {row.smoke['failed'] + row.smoke['error']} failed ({names}{more})"
            + (f"; first: {reason[:200]}" if reason else "")
        )


def _short_nodeid(nodeid: str) -> str:
    """smoke_tests/test_torch.py::test_x -> test_torch.py::test_x (file and test, no folder)."""
    return nodeid.rsplit("/", 1)[-1]


def read_host(folder: Path) -> HostRow:
    """One host's row; never raises for bad report content."""
    row = HostRow(host=folder.name, state=NO_REPORT)
    try:
        status = _load_json(folder / "status.json") or {}
    except ReportError as error:
        status = {}
        row.problems.append(str(error))
    state = status.get("state")
    if state == UNREACHABLE:
        row.state = UNREACHABLE
        row.problems.append(f"unreachable: {status.get('message') or 'no connection'}")
        return row
    if state == FAILED:
        task = status.get("failed_task")
        row.problems.append(
            f"verify run failed{f' at {task!r}' if task else ''}: {status.get('message') or '?'}"
        )
    for reader in (_read_check, _read_bench, _read_smoke):
        try:
            reader(row, folder)
        except ReportError as error:
            row.problems.append(str(error))
    if state == FAILED:
        row.state = FAILED
    elif row.problems:
        row.state = NOT_READY if any((folder / n).exists() for n in _REPORT_FILES) else NO_REPORT
    else:
        row.state = CPU_ONLY if row.verdict == CPU_ONLY else READY
    return row


_REPORT_FILES = ("check.json", "bench.json", "smoke.json", "junit.xml")


def read_fleet(reports_dir: Path) -> list[HostRow]:
    """Rows for every host folder under reports_dir, sorted by host name."""
    folders = sorted(p for p in reports_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    return [read_host(folder) for folder in folders]


def fleet_exit_code(rows: list[HostRow]) -> ExitCode:
    """NOT_READY if any host has a problem; CPU_ONLY if all work but some lack a GPU."""
    if not rows or any(r.state in PROBLEM_STATES for r in rows):
        return ExitCode.NOT_READY
    if any(r.state == CPU_ONLY for r in rows):
        return ExitCode.CPU_ONLY
    return ExitCode.READY


def summary(rows: list[HostRow]) -> dict[str, int]:
    counts = {"hosts": len(rows)}
    for state in (READY, CPU_ONLY, NOT_READY, FAILED, UNREACHABLE, NO_REPORT):
        counts[state] = sum(r.state == state for r in rows)
    return counts
