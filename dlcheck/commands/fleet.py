"""`dlcheck fleet REPORTS_DIR`: one table (or JSON) for every host verify.yml reported on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from dlcheck.commands.common import UsablePath, command
from dlcheck.fleet import HostRow
from dlcheck.models import Report, envelope_status


@dataclass(frozen=True)
class FleetReport:
    rows: list[HostRow]
    summary: dict[str, int]
    exit_code: int

    def to_dict(self) -> dict[str, Any]:
        return {"hosts": self.rows, "summary": self.summary, "exit_code": self.exit_code}


def build(reports_dir: Path) -> Report:
    from dlcheck.fleet import fleet_exit_code, read_fleet, summary

    if not reports_dir.is_dir():
        raise click.UsageError(
            f"{reports_dir} is not a directory. Fix: run "
            "`ansible-playbook -i INVENTORY playbooks/verify.yml` first, then pass its "
            "reports folder (default: reports/)."
        )
    try:
        rows = read_fleet(reports_dir)
    except OSError as error:
        raise click.UsageError(f"cannot list {reports_dir}: {error.strerror}") from None
    if not rows:
        raise click.UsageError(
            f"{reports_dir} holds no host folders. Fix: point at the folder verify.yml "
            "fetched into (it has one sub-folder per host)."
        )
    code = fleet_exit_code(rows)
    data = FleetReport(rows, summary(rows), int(code))
    return Report("fleet", data, code, envelope_status(r.status for r in rows))


@command("fleet", renderer="dlcheck.render.fleet:render")
@click.argument("reports_dir", type=UsablePath(path_type=Path))
def fleet(reports_dir: Path) -> Report:
    """Summarise reports/<host>/ folders fetched by playbooks/verify.yml.

    Exits 0 when every host is ready, 3 when all work but some have no GPU,
    1 when any host is not ready, failed, unreachable or sent an unreadable report.
    """
    return build(reports_dir)
