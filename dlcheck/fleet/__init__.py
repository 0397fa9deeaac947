"""`dlcheck fleet`: a fleet's fetched reports, one run or a history of runs.

  hosts.py    one run's folder (<host>/status.json, check.json, ...) -> one HostRow per host;
              every report file is untrusted input (read_report)
  runs.py     the history layout (<run-id>/<host>/...): which runs exist, which is the latest,
              which one `--since` means
  changes.py  what changed per host between two runs, with benchmark noise taken from the data
"""

from dlcheck.fleet.hosts import (
    CPU_ONLY,
    FAILED,
    NO_REPORT,
    NOT_READY,
    PROBLEM_STATES,
    READY,
    STATES,
    UNREACHABLE,
    HostRow,
    ReportError,
    fleet_exit_code,
    read_fleet,
    read_host,
    read_report,
    summary,
)

__all__ = [
    "CPU_ONLY", "FAILED", "NO_REPORT", "NOT_READY", "PROBLEM_STATES", "READY", "STATES",
    "UNREACHABLE", "HostRow", "ReportError", "fleet_exit_code", "read_fleet", "read_host",
    "read_report", "summary",
]  # fmt: skip
