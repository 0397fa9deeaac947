"""The versioned JSON envelope every `--json` output uses."""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from typing import Any

SCHEMA = "dlcheck/1"


def _plain(value: Any) -> Any:
    """Turn records, enums and non-finite floats into JSON-safe values (NaN -> null)."""
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def envelope(command: str, status: str, data: Any, errors: list[str] | None = None) -> str:
    """Serialise `data` inside {schema, command, status, data, errors}, keys sorted."""
    body = {
        "schema": SCHEMA,
        "command": command,
        "status": status,
        "data": _plain(data),
        "errors": list(errors or []),
    }
    return json.dumps(body, sort_keys=True, indent=2, allow_nan=False)
