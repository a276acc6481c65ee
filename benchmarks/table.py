"""The plain-text tables the benchmarks print."""

from __future__ import annotations

from collections.abc import Sequence


def print_table(rows: Sequence[Sequence[str]], rule: bool = False) -> None:
    """``rows`` (the first is the header) in columns as wide as their widest cell, two
    spaces apart; with ``rule``, a line of dashes under the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = list(rows)
    if rule:
        lines.insert(1, ["-" * w for w in widths])
    for r in lines:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
