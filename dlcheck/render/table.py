"""One rule for every table dlcheck prints.

- On a terminal, a table fits its width: whole columns are dropped by priority (least important
  first) rather than cutting a cell; only columns marked `fold` (free text: names, messages,
  commands) may break across lines, and never inside a word when a word fits. A column marked
  `split_words` (a command line, whose paths are long) folds a word wider than the room left
  rather than lose the whole column to it.
- Piped or redirected, a table is plain text: every column, nothing wrapped or cut, two spaces
  between columns, no trailing blanks, so `grep`, `cut` and `awk` see whole values.
- Numbers, field names and fixes are never cut: numbers and names sit in non-folding columns,
  fixes are printed after the table, one per line (render.fixes).
"""

from __future__ import annotations

from dataclasses import dataclass

GAP = 2  # spaces between columns
SPLIT_MIN = 12  # a split_words column is kept down to this width


@dataclass(frozen=True)
class Column:
    header: str
    priority: int = 0  # 0 = never dropped; higher numbers are dropped first when narrow
    right: bool = False  # numbers
    fold: bool = False  # may break across lines (free text)
    split_words: bool = False  # a folding column that may also break inside a too-long word
    style: str | None = None  # rich style on a terminal


def plain(columns: list[Column], rows: list[list[str]], title: str | None = None) -> str:
    """Every column, unwrapped: for pipes and files."""
    widths = _widths(columns, rows)
    lines = [title] if title else []
    for cells in ([c.header for c in columns], *rows):
        parts = [
            cell.rjust(width) if column.right else cell.ljust(width)
            for column, cell, width in zip(columns, cells, widths, strict=True)
        ]
        lines.append((" " * GAP).join(parts).rstrip())
    return "\n".join(lines) + "\n"


def fit(columns: list[Column], rows: list[list[str]], width: int) -> list[int]:
    """Indices of the columns that fit `width` whole: drop by priority, highest number first,
    until they do. What still does not fit when only priority-0 columns are left is folded
    (the `fold` columns only) by the terminal table."""
    keep = list(range(len(columns)))
    # A folding column needs only its longest word: it breaks between the others.
    least = [
        _least(column, rows, i) if column.fold else natural
        for i, (column, natural) in enumerate(zip(columns, _widths(columns, rows), strict=True))
    ]
    for priority in sorted({c.priority for c in columns if c.priority > 0}, reverse=True):
        if sum(least[i] for i in keep) + GAP * (len(keep) - 1) <= width:
            break
        keep = [i for i in keep if columns[i].priority != priority]
    return keep


def terminal(columns: list[Column], rows: list[list[str]], width: int, title: str | None = None,
             styles: list[str | None] | None = None):  # fmt: skip
    """A rich Table of the columns that fit `width` (cells are plain text, escaped here)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    keep = fit(columns, rows, width)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                  collapse_padding=True, show_edge=False)  # fmt: skip
    for i in keep:
        column = columns[i]
        # A folding column breaks between words, never inside one (its longest word fits), but
        # for a split_words column whose longest word is wider than SPLIT_MIN.
        least = _least(column, rows, i) if column.fold else None
        table.add_column(column.header, justify="right" if column.right else "left",
                         no_wrap=not column.fold, overflow="fold" if column.fold else "ellipsis",
                         style=column.style, min_width=least)  # fmt: skip
    for number, cells in enumerate(rows):
        style = styles[number] if styles else None
        table.add_row(*(Text(cells[i]) for i in keep), style=style)
    return table


def _least(column: Column, rows: list[list[str]], index: int) -> int:
    longest = _longest_word(column, rows, index)
    return min(longest, SPLIT_MIN) if column.split_words else longest


def _longest_word(column: Column, rows: list[list[str]], index: int) -> int:
    words = [w for cells in rows for w in cells[index].split()] + column.header.split()
    return max((len(w) for w in words), default=1)


def _widths(columns: list[Column], rows: list[list[str]]) -> list[int]:
    return [max([len(c.header)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]

