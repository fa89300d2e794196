"""Plain-text tables, the one renderer behind every table sigcnn prints."""

from __future__ import annotations

from typing import Sequence

__all__ = ["render_table"]


def render_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """Left-aligned plain-text table with a header rule.

    Args:
      header: column titles.
      rows: rows, each with as many cells as `header` (cells are passed
        through ``str``).

    Returns:
      the table as one string, lines joined by newlines (no trailing newline).

    Raises:
      ValueError: if a row has a different number of cells than `header`.

    Examples:
      >>> print(render_table(("name", "value"), [("a", 1), ("bb", 0.25)]))
      name  value
      ----  -----
      a     1
      bb    0.25
    """
    table = [[str(c) for c in header]]
    for i, r in enumerate(rows):
        r = [str(c) for c in r]
        if len(r) != len(table[0]):
            raise ValueError(f"`rows[{i}]` has {len(r)} cells; the header has "
                             f"{len(table[0])}.")
        table.append(r)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]

    def line(r):
        return "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(table[0]), rule] + [line(r) for r in table[1:]])
