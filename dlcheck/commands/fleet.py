"""`dlcheck fleet REPORTS`: the latest verify.yml run, one row per host, and what changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from dlcheck.commands.common import Failure, UsablePath, command
from dlcheck.fleet import HostRow
from dlcheck.models import Report, envelope_status


@dataclass(frozen=True)
class FleetOptions:
    reports_dir: Path
    since: str | None = None  # a run id, a time or a duration; None: the previous run
    html_path: Path | None = None
    now: datetime | None = None  # what a duration counts back from (tests pin it)


@dataclass(frozen=True)
class History:
    """Which runs the report is about: `layout` "runs" (REPORTS/<run-id>/<host>) or "hosts"
    (REPORTS/<host>, one run)."""

    layout: str
    run: str | None = None  # the latest run's id
    runs: list[str] = field(default_factory=list)  # every run id found, oldest first
    baseline: str | None = None  # the run compared with
    since: str | None = None  # --since as given
    note: str | None = None  # why there is no baseline, or which one was used instead

    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout, "run": self.run, "runs": self.runs,
                "baseline": self.baseline, "since": self.since, "note": self.note}  # fmt: skip


@dataclass(frozen=True)
class FleetReport:
    rows: list[HostRow]
    summary: dict[str, int]
    exit_code: int
    history: History
    changes: list = field(default_factory=list)  # list[fleet.changes.Change]

    def to_dict(self) -> dict[str, Any]:
        return {"hosts": self.rows, "summary": self.summary, "exit_code": self.exit_code,
                "history": self.history, "changes": self.changes}  # fmt: skip


def build(options: FleetOptions) -> Report:
    from dlcheck.fleet import fleet_exit_code, summary
    from dlcheck.fleet.changes import compare
    from dlcheck.fleet.runs import SinceError, baseline, find_runs

    reports_dir = options.reports_dir
    if not reports_dir.is_dir():
        raise click.UsageError(
            f"{reports_dir} is not a directory. Fix: run "
            "`ansible-playbook -i INVENTORY playbooks/verify.yml` first, then pass its "
            "reports folder (default: reports/)."
        )
    runs = _listed(reports_dir, find_runs)
    changes: list = []
    skipped = []
    while len(runs) > 1 and not _has_hosts(runs[-1].path):  # a run that is starting or broke
        skipped.append(runs.pop().id)
    if runs:
        latest = runs[-1]
        now = options.now or datetime.now(timezone.utc)
        try:
            base, note = baseline(runs, options.since, now)
        except SinceError as error:
            raise click.UsageError(str(error)) from None
        if skipped:
            empty = f"left out {', '.join(skipped)}: no host folders in it yet"
            note = f"{note}; {empty}" if note else empty
        rows = _rows(latest.path)
        if base is not None:
            changes = compare(_rows(base.path), rows)
        history = History("runs", latest.id, [r.id for r in runs], base.id if base else None,
                          options.since, note)  # fmt: skip
    else:
        if options.since is not None:
            raise click.UsageError(
                f"--since: {reports_dir} holds one run (a folder per host), no history. Fix: "
                "point at the folder that holds the run folders (REPORTS/<run-id>/<host>/, "
                "as verify.yml keeps them), or leave --since out."
            )
        rows = _rows(reports_dir)
        history = History("hosts")
    code = fleet_exit_code(rows)
    data = FleetReport(rows, summary(rows), int(code), history, changes)
    report = Report("fleet", data, code, envelope_status(r.status for r in rows))
    if options.html_path is not None:
        from dlcheck.render.fleet_html import write_html

        try:
            write_html(report, options.html_path)
        except OSError as error:
            raise Failure(f"--html {options.html_path}: cannot write it: "
                          f"{error.strerror or error}") from None  # fmt: skip
    return report


def _listed(folder: Path, function):
    try:
        return function(folder)
    except OSError as error:
        raise click.UsageError(f"cannot list {folder}: {error.strerror}") from None


def _has_hosts(folder: Path) -> bool:
    try:
        return any(entry.is_dir() and not entry.name.startswith(".") for entry in folder.iterdir())
    except OSError:
        return False


def _rows(folder: Path) -> list[HostRow]:
    from dlcheck.fleet import read_fleet

    rows = _listed(folder, read_fleet)
    if not rows:
        raise click.UsageError(
            f"{folder} holds no host folders. Fix: point at the folder verify.yml "
            "fetched into (one sub-folder per host, or one per run holding those)."
        )
    return rows


def _html_path(ctx, param, value):
    if value is None:
        return None
    from dlcheck.system import folder_problem

    path = Path(value)
    problem = "it is a folder" if path.is_dir() else folder_problem(path.parent)
    if problem:
        raise click.BadParameter(f"cannot write {value} ({problem})", ctx, param)
    return path


@command("fleet", renderer="dlcheck.render.fleet:render")
@click.argument("reports_dir", type=UsablePath(path_type=Path))
@click.option(
    "--since",
    metavar="RUN|DURATION",
    help="Compare the latest run with an older one: a run id (20261202T231500Z), a date or "
    "time (2026-12-01, 20261201T23: the newest run at or before it) or a duration (12h, 1d, "
    "1w: the newest run at least that old) [default: the previous run].",
)
@click.option(
    "--html",
    "html_path",
    metavar="FILE",
    type=UsablePath(),
    callback=_html_path,
    help="Also write one self-contained HTML page (no network needed to open it): summary, "
    "sortable and filterable hosts, checks with fixes, GPUs, benchmark plot, changes.",
)
def fleet(reports_dir: Path, since: str | None, html_path: Path | None) -> Report:
    """Summarise the reports playbooks/verify.yml fetched: REPORTS/<run-id>/<host>/ (a history
    of runs: the latest is shown, with what changed since the previous one or --since) or
    REPORTS/<host>/ (one run).

    \b
    Exits 0 when every host is ready, 3 when all work but some have no GPU,
    1 when any host is not ready, failed, unreachable or sent an unreadable report.
    """
    return build(FleetOptions(reports_dir, since, html_path))
