"""Plain records shared by collectors, checks and renderers."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """Outcome of one check, ordered from best to worst by `rank`."""

    PASS = "PASS"
    INFO = "INFO"
    SKIP = "SKIP"
    WARN = "WARN"
    FAIL = "FAIL"

    @property
    def rank(self) -> int:
        return _STATUS_RANK[self]

    @classmethod
    def worst(cls, statuses) -> Status:
        return max(statuses, key=lambda s: s.rank, default=cls.PASS)


_STATUS_RANK = {Status.PASS: 0, Status.INFO: 0, Status.SKIP: 0, Status.WARN: 1, Status.FAIL: 2}


class ExitCode(enum.IntEnum):
    """Process exit codes; documented in the README. Scripts and playbooks rely on them."""

    READY = 0  # every check passed (warnings allowed unless --strict)
    NOT_READY = 1  # at least one check failed
    USAGE = 2  # bad flags or arguments (click's own code for usage errors)
    CPU_ONLY = 3  # no usable NVIDIA GPU; nothing else failed
    INTERNAL = 4  # dlcheck itself broke; please report


@dataclass(frozen=True)
class CheckResult:
    """One readiness check: what was found, and what to do about it."""

    code: str  # stable identifier, e.g. "driver_too_old_for_torch"
    status: Status
    message: str  # one line, for a person
    fix: str | None = None  # a command or step a person can paste
    evidence: dict[str, Any] = field(default_factory=dict)  # raw values behind the verdict

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record["status"] = self.status.value
        return record
