"""JSON Schemas of dlcheck's outputs and report files (dlcheck/schemas/), and checking against them.

Schemas refer to shared pieces in common.schema.json; load() inlines those references, so each
schema handed out is self-contained (draft-07), for fastjsonschema here and any other validator.
Validation is compiled once per schema: `dlcheck fleet` checks thousands of files with it.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

SCHEMAS = Path(__file__).with_name("schemas")
KNOWN_ENVELOPE = "dlcheck/1"


class SchemaError(Exception):
    """A document does not match its schema; the message says where, in one line."""


@functools.cache
def load(name: str) -> dict[str, Any]:
    """The schema for `name` (check, gpu, bench, fleet, allreduce, smoke, status, ...)."""
    return _inline(_read(f"{name}.schema.json"))


def names() -> list[str]:
    return sorted(p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")
                  if p.name != "common.schema.json")  # fmt: skip


@functools.cache
def _read(file_name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / file_name).read_text(encoding="utf-8"))


def _inline(node: Any) -> Any:
    if isinstance(node, dict):
        target = node.get("$ref")
        if isinstance(target, str) and "#/definitions/" in target:
            file_name, _, definition = target.partition("#/definitions/")
            return _inline(copy.deepcopy(_read(file_name)["definitions"][definition]))
        return {key: _inline(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item) for item in node]
    return node


@functools.cache
def _validator(name: str):
    import fastjsonschema

    return fastjsonschema.compile(load(name))


def validate(name: str, document: Any) -> None:
    """Raise SchemaError (one line: where and what) unless `document` matches schema `name`."""
    import fastjsonschema

    try:
        _validator(name)(document)
    except fastjsonschema.JsonSchemaValueException as error:
        where = str(error.message)
        raise SchemaError(where[5:] if where.startswith("data.") else where) from None
