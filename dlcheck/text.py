"""Strings from outside (NVML names, process names, report files, paths) made safe to print.

A GPU process can be named anything, and a report file can hold anything: ESC sequences would
clear the screen or retitle the window, other control characters garble the table, bidi
overrides make text read differently from what it is, and a lone surrogate (a non-UTF-8 file
name, a `\\ud800` escape in JSON) cannot be written to a UTF-8 terminal at all. clean()
keeps printable text only; rich markup is escaped where rich renders (render.console).
"""

from __future__ import annotations

import re
from typing import Any

# C0 controls but tab/newline, DEL, and C1 controls (0x80-0x9f: CSI and friends in 8-bit form).
# Bidi embeddings, overrides and isolates (the "Trojan Source" characters) go too.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")


def clean(value: Any, limit: int | None = None, one_line: bool = True) -> str:
    """`value` as printable text: escape sequences, control and bidi characters removed, lone
    surrogates shown as U+FFFD, newlines folded to spaces when `one_line`, cut to `limit`
    characters (with an ellipsis)."""
    text = value if isinstance(value, str) else str(value)
    text = _SURROGATE.sub("\ufffd", _CONTROL.sub("", _ANSI.sub("", text)))
    if one_line:
        text = " ".join(text.split()) if ("\n" in text or "\t" in text) else text
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text


def clean_or_none(value: Any, limit: int | None = None) -> str | None:
    return None if value is None else clean(value, limit)
