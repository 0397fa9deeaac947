"""The two layouts `dlcheck fleet REPORTS` reads, and what `--since` means.

  REPORTS/<host>/status.json ...             one run (what verify.yml wrote before history)
  REPORTS/<run-id>/<host>/status.json ...    history: one folder per verify.yml run

A run id is the UTC time the run started, `20261202T231500Z`, so names sort by time and a
person can read them. A folder is a history when any entry in it is named like a run id; other
entries there (a `latest` link, notes) are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

RUN_ID = re.compile(r"^\d{8}T\d{6}Z$")
_DURATION = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"


class SinceError(ValueError):
    """--since names no usable run; the message says why and what would work."""


@dataclass(frozen=True)
class Run:
    id: str
    path: Path

    @property
    def time(self) -> datetime:
        return parse_run_id(self.id)


def parse_run_id(text: str) -> datetime:
    return datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=timezone.utc)


def run_id(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime(_TIME_FORMAT)


def find_runs(reports_dir: Path) -> list[Run]:
    """The run folders under reports_dir, oldest first; [] when it is a single run's folder."""
    runs = []
    for entry in reports_dir.iterdir():
        if RUN_ID.match(entry.name) and entry.is_dir() and not entry.is_symlink():
            try:
                parse_run_id(entry.name)  # 20261399T... matches the pattern but is no time
            except ValueError:
                continue
            runs.append(Run(entry.name, entry))
    return sorted(runs, key=lambda run: run.id)


def parse_duration(text: str) -> timedelta | None:
    """'1d', '12h', '1w2d', '90m', '30s' -> timedelta; None when `text` is not a duration."""
    match = _DURATION.match(text.strip().lower())
    if not match or not any(match.groups()):
        return None
    parts = zip(_DURATION_UNITS, match.groups(), strict=True)
    return timedelta(**{unit: int(n) for unit, n in parts if n})


def _as_moment(text: str) -> datetime | None:
    """A run id, or any prefix of one (20261201, 20261201T23), or the ISO spelling of either
    (2026-12-01, 2026-12-01T23:15:00Z): the start of that second/hour/day, UTC."""
    digits = text.strip().upper().replace("-", "").replace(":", "").removesuffix("Z")
    if not re.fullmatch(r"\d{8}(?:T\d{2}(?:\d{2}(?:\d{2})?)?)?", digits):
        return None
    date, _, clock = digits.partition("T")
    try:
        return parse_run_id(f"{date}T{clock.ljust(6, '0')}Z")
    except ValueError:
        return None


def baseline(runs: list[Run], since: str | None, now: datetime) -> tuple[Run | None, str | None]:
    """(the run the latest one is compared with, a note for the reader), for `--since`.

    None: the previous run. A duration: the newest run at least that long before `now`. A run
    id or time: the newest run at or before it. When no run is that old, the oldest run is used
    and the note says so. Raises SinceError for text that is neither.
    """
    latest, earlier = runs[-1], runs[:-1]
    if since is None:
        if not earlier:
            return None, f"only one run ({latest.id}): nothing to compare it with yet"
        return earlier[-1], None
    duration = parse_duration(since)
    moment = now - duration if duration is not None else _as_moment(since)
    if moment is None:
        raise SinceError(
            f"--since {since!r}: give a run id (e.g. {latest.id}), a date or time "
            "(2026-12-01, 20261201T23) or a duration (90m, 12h, 1d, 1w)"
        )
    if not earlier:
        return None, f"only one run ({latest.id}): nothing to compare it with yet"
    older = [run for run in earlier if run.time <= moment]
    if older:
        return older[-1], None
    return earlier[0], (
        f"no run is as old as --since {since}; compared with the oldest run, {earlier[0].id}"
    )
