"""`dlcheck gpu --query-gpu=FIELDS --format=csv[,noheader][,nounits]`, as nvidia-smi prints it.

Header: the fields as asked, with the unit in brackets (`memory.used [MiB]`); rows: values
with their unit (`12 MiB`, `65.38 W`, `3 %`), `[N/A]` where the GPU does not say; fields
joined by ", ". Field names are nvidia-smi's (`nvidia-smi --help-query-gpu`), with its aliases.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dlcheck.gpu import GpuInventory, GpuRecord


@dataclass(frozen=True)
class QueryField:
    key: str  # the record key (or a special: driver_version, count)
    unit: str = ""  # shown in the header as [unit] and after each value
    number: str = ""  # format spec for numbers, e.g. ".2f"


_RECORD = {
    "index": QueryField("index"),
    "name": QueryField("name"),
    "uuid": QueryField("uuid"),
    "serial": QueryField("serial"),
    "pci.bus_id": QueryField("pci.bus_id"),
    "compute_cap": QueryField("compute_cap"),
    "driver_version": QueryField("driver_version"),
    "count": QueryField("count"),
    "memory.total": QueryField("memory.total", "MiB"),
    "memory.used": QueryField("memory.used", "MiB"),
    "memory.free": QueryField("memory.free", "MiB"),
    "utilization.gpu": QueryField("utilization.gpu", "%"),
    "utilization.memory": QueryField("utilization.memory", "%"),
    "utilization.encoder": QueryField("utilization.encoder", "%"),
    "utilization.decoder": QueryField("utilization.decoder", "%"),
    "temperature.gpu": QueryField("temperature.gpu"),
    "fan.speed": QueryField("fan.speed", "%"),
    "power.draw": QueryField("power.draw", "W", ".2f"),
    "enforced.power.limit": QueryField("enforced.power.limit", "W", ".2f"),
    "power.default_limit": QueryField("power.default_limit", "W", ".2f"),
    "pstate": QueryField("pstate"),
    "clocks.current.sm": QueryField("clocks.current.sm", "MHz"),
    "clocks.current.memory": QueryField("clocks.current.memory", "MHz"),
    "clocks.max.sm": QueryField("clocks.max.sm", "MHz"),
    "clocks.max.memory": QueryField("clocks.max.memory", "MHz"),
    "pcie.link.gen.current": QueryField("pcie.link.gen.current"),
    "pcie.link.gen.max": QueryField("pcie.link.gen.max"),
    "pcie.link.gen.gpumax": QueryField("pcie.link.gen.gpumax"),
    "pcie.link.width.current": QueryField("pcie.link.width.current"),
    "pcie.link.width.max": QueryField("pcie.link.width.max"),
    "persistence_mode": QueryField("persistence_mode"),
    "mig.mode.current": QueryField("mig.mode.current"),
    "mig.mode.pending": QueryField("mig.mode.pending"),
    "ecc.mode.current": QueryField("ecc.mode.current"),
    "ecc.mode.pending": QueryField("ecc.mode.pending"),
    "ecc.errors.uncorrected.volatile.total": QueryField("ecc.errors.uncorrected.volatile.total"),
    "ecc.errors.uncorrected.aggregate.total": QueryField(
        "ecc.errors.uncorrected.aggregate.total"
    ),
    "retired_pages.sbe": QueryField("retired_pages.sbe"),
    "retired_pages.dbe": QueryField("retired_pages.dbe"),
    "retired_pages.pending": QueryField("retired_pages.pending"),
    "clocks_event_reasons.active": QueryField("clocks_event_reasons.active"),
}
ALIASES = {
    "gpu_name": "name", "gpu_uuid": "uuid", "gpu_serial": "serial", "gpu_bus_id": "pci.bus_id",
    "clocks.sm": "clocks.current.sm", "clocks.mem": "clocks.current.memory",
    "clocks.max.mem": "clocks.max.memory", "clocks.max.memory": "clocks.max.memory",
    "power.limit": "enforced.power.limit", "persistence.mode": "persistence_mode",
    "clocks_throttle_reasons.active": "clocks_event_reasons.active",
    "temperature": "temperature.gpu", "utilization": "utilization.gpu",
}  # fmt: skip
FIELDS = {**_RECORD, **{alias: _RECORD[target] for alias, target in ALIASES.items()}}


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    header: bool = True
    units: bool = True


def parse_fields(text: str) -> tuple[str, ...]:
    """'index,name' -> ('index', 'name'); ValueError naming the first unknown field."""
    names = tuple(f.strip() for f in text.split(",") if f.strip())
    if not names:
        raise ValueError("give at least one field, e.g. --query-gpu=index,name,memory.used")
    for name in names:
        if name.lower() not in FIELDS:
            raise ValueError(
                f'Field "{name}" is not a valid field to query. Known: {", ".join(_RECORD)}'
            )
    return tuple(n.lower() for n in names)


def parse_format(text: str) -> tuple[bool, bool]:
    """'csv[,noheader][,nounits]' -> (header, units)."""
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    if not parts or parts[0] != "csv" or set(parts[1:]) - {"noheader", "nounits"}:
        raise ValueError(f"--format {text!r}: use csv, optionally with ,noheader and ,nounits")
    return "noheader" not in parts, "nounits" not in parts


def csv(data: GpuInventory, query: Query) -> str:
    lines = []
    if query.header:
        lines.append(", ".join(_title(name, query.units) for name in query.fields))
    for record in data.gpus:
        lines.append(", ".join(_cell(data, record, name, query.units) for name in query.fields))
    return "\n".join(lines) + "\n"


def _title(name: str, units: bool) -> str:
    unit = FIELDS[name].unit
    return f"{name} [{unit}]" if unit and units else name


def _cell(data: GpuInventory, record: GpuRecord, name: str, units: bool) -> str:
    field = FIELDS[name]
    value = _SPECIAL.get(field.key, lambda d, r: r.get(field.key))(data, record)
    if value is None:
        return "[N/A]"
    if isinstance(value, bool):
        text = "Yes" if value else "No"
    elif isinstance(value, (int, float)) and field.number:
        text = format(value, field.number)
    else:
        text = str(value)
    return f"{text} {field.unit}" if field.unit and units else text


_SPECIAL: dict[str, Callable[[GpuInventory, Any], Any]] = {
    "driver_version": lambda data, record: data.driver.version,
    "count": lambda data, record: len(data.gpus),
}
