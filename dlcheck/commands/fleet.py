"""`dlcheck fleet REPORTS_DIR`: one table (or JSON) for every host verify.yml reported on."""

from __future__ import annotations

from pathlib import Path

import click

from dlcheck import jsonout
from dlcheck.fleet import fleet_exit_code, read_fleet, summary
from dlcheck.models import ExitCode, Status


@click.command()
@click.argument("reports_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the dlcheck/1 JSON envelope.")
def fleet(reports_dir: Path, as_json: bool) -> ExitCode:
    """Summarise reports/<host>/ folders fetched by playbooks/verify.yml.

    Exits 0 when every host is ready, 3 when all work but some have no GPU,
    1 when any host is not ready, failed or unreachable.
    """
    if not reports_dir.is_dir():
        raise click.UsageError(
            f"{reports_dir} is not a directory. Fix: run "
            "`ansible-playbook -i INVENTORY playbooks/verify.yml` first, then pass its "
            "reports folder (default: reports/)."
        )
    rows = read_fleet(reports_dir)
    if not rows:
        raise click.UsageError(
            f"{reports_dir} holds no host folders. Fix: point at the folder verify.yml "
            "fetched into (it has one sub-folder per host)."
        )
    code = fleet_exit_code(rows)
    counts = summary(rows)
    if as_json:
        statuses = {ExitCode.READY: Status.PASS, ExitCode.CPU_ONLY: Status.WARN}
        status = statuses.get(code, Status.FAIL)
        data = {"hosts": [r.to_dict() for r in rows], "summary": counts, "exit_code": int(code)}
        click.echo(jsonout.envelope("fleet", status.value, data))
    else:
        from dlcheck.fleet_render import render_table

        render_table(rows, counts)
    return code
