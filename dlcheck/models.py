"""What every command returns and how it leaves the process: statuses, exit codes, the report
and its versioned JSON envelope. One file, so the rules stay side by side."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

SCHEMA = "dlcheck/1"


class Status(str, enum.Enum):
    """Outcome of one judged item (a check, a benchmark row, a host), best to worst by `rank`."""

    PASS = "PASS"
    INFO = "INFO"  # a fact worth knowing; never a problem
    SKIP = "SKIP"  # not applicable here (e.g. an all-reduce on one GPU)
    WARN = "WARN"
    FAIL = "FAIL"

    @property
    def rank(self) -> int:
        return _STATUS_RANK[self]

    @classmethod
    def worst(cls, statuses: Iterable[Status]) -> Status:
        return max(statuses, key=lambda s: s.rank, default=cls.PASS)


_STATUS_RANK = {Status.PASS: 0, Status.INFO: 0, Status.SKIP: 0, Status.WARN: 1, Status.FAIL: 2}


def envelope_status(statuses: Iterable[Status]) -> Status:
    """The one rule for the envelope's `status`, for every command: the worst judged status,
    INFO and SKIP counting as PASS. So it is always PASS, WARN or FAIL; the exit code says
    the rest (CPU-only, usage, internal)."""
    worst = Status.worst(statuses)
    return worst if worst in (Status.WARN, Status.FAIL) else Status.PASS


class ExitCode(enum.IntEnum):
    """Process exit codes; documented in the README. Scripts and playbooks rely on them."""

    READY = 0  # every check passed (warnings allowed unless --strict)
    NOT_READY = 1  # at least one check failed
    USAGE = 2  # bad flags or arguments (click's own code for usage errors)
    CPU_ONLY = 3  # no usable NVIDIA GPU; nothing else failed
    INTERNAL = 4  # dlcheck itself broke; please report
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT), after cleanup
    TERMINATED = 143  # SIGTERM (128 + SIGTERM), after cleanup


class MachineError(Exception):
    """Something about this machine, not a bug in dlcheck, stops the command (no room for a
    temp folder, an interpreter that will not start): one line, exit NOT_READY."""


@dataclass(frozen=True)
class CheckResult:
    """One readiness check: what was found, and what to do about it."""

    code: str  # stable identifier, e.g. "driver_too_old_for_torch"
    status: Status
    message: str  # one line, for a person
    fix: str | None = None  # a command or step a person can paste
    evidence: dict[str, Any] = field(default_factory=dict)  # raw values behind the verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "status": self.status.value,
            "message": self.message,
            "fix": self.fix,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Report:
    """What a command's build() returns: never printed by the command itself.

    `data` is the command's record (to_dict() or a plain dict); `status` follows
    envelope_status(); `errors` are one-line problems worth listing apart (a lost GPU, a
    crashed child).
    """

    command: str
    data: Any
    exit_code: ExitCode
    status: Status = Status.PASS
    errors: tuple[str, ...] = ()

    def envelope(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "command": self.command,
            "status": self.status.value,
            "data": plain(self.data),
            "errors": list(self.errors),
        }

    def to_json(self) -> str:
        return json.dumps(self.envelope(), sort_keys=True, indent=2, allow_nan=False)


def envelope(command: str, status: str, data: Any, errors: list[str] | None = None) -> str:
    """The JSON envelope for data that is not a Report (the smoke tests' summary)."""
    report = Report(command, data, ExitCode.READY, Status(status), tuple(errors or ()))
    return report.to_json()


def plain(value: Any) -> Any:
    """Records, enums and non-finite floats as JSON-safe values (NaN -> null)."""
    if hasattr(value, "to_dict"):
        return plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
