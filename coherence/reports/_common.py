"""Helpers shared by the renderers: plain-text findings and traces, JSON-safe values.

Nothing here computes a result: these functions only turn the data model into text or into
JSON-compatible values, the same way for every report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any
from urllib.parse import quote

from coherence.diagnostics import REGISTRY, Severity, render
from coherence.policy import Decision, Unknown
from coherence.results import Cell, Finding, TraceView
from coherence.source import SourceFile

CATEGORIES = {
    "COH1": "syntax",
    "COH2": "semantics",
    "COH3": "stability",
    "COH4": "coupling",
    "COH5": "bounded-properties",
    "COH9": "inconclusive",
}


def category(code: str) -> str:
    """The family a code belongs to (DESIGN section 6), for tags and grouping."""
    return CATEGORIES.get(code[:4], "other")


def rule_name(code: str) -> str:
    rule = REGISTRY.get(code)
    return rule.name if rule is not None else ""


def count_levels(findings: tuple[Finding, ...]) -> dict[Severity, int]:
    counts = {Severity.ERROR: 0, Severity.WARNING: 0, Severity.NOTE: 0}
    for f in findings:
        counts[f.level] += 1
    return counts


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def number(v: float) -> float | str:
    """A float as JSON allows it: finite floats as they are, the others as strings."""
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def jsonable(value: Any) -> Any:
    """Any value an analysis may put in its data, as plain JSON values.

    Tuples and arrays become lists, NumPy scalars Python numbers, complex numbers
    ``{"re": .., "im": ..}``, non-finite floats the strings ``nan``, ``inf``, ``-inf``;
    mappings keep their order with string keys; anything else becomes its ``str``.
    """
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return number(value)
    if isinstance(value, complex):
        return {"re": number(value.real), "im": number(value.imag)}
    if hasattr(value, "tolist") and callable(value.tolist):  # NumPy arrays and scalars
        return jsonable(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    return str(value)


def cell(c: Cell) -> Cell:
    """A table cell as JSON allows it (NumPy scalars become Python values)."""
    value = jsonable(c)
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def uri(path: str) -> str:
    """A spec path as a relative URI (``/``-separated, percent-encoded)."""
    posix = PurePath(path).as_posix()
    if PurePath(path).is_absolute():
        return "file://" + quote(posix)
    return quote(posix)


def trace_groups(view: TraceView) -> list[tuple[str, bool]]:
    """The trace as one text block per shown tick (the tick line and what each loop did)."""
    from coherence.reports.text import trace_lines

    groups: list[tuple[str, bool]] = []
    for line, violated in trace_lines(view):
        if line.startswith("t=") or not groups or line.lstrip().startswith("..."):
            groups.append((line.strip(), violated))
        else:
            text, flag = groups[-1]
            groups[-1] = (f"{text}\n{line.strip()}", flag or violated)
    return groups


def trace_text(view: TraceView) -> str:
    """A trace as plain text, the way the terminal report shows it (without colour)."""
    from coherence.reports.text import trace_lines, trace_notes

    lines = [view.title]
    lines += [line for line, _ in trace_lines(view)]
    lines.append(trace_notes(view))
    return "\n".join(lines)


def finding_text(f: Finding, source: SourceFile | None = None, traces: bool = True) -> str:
    """A finding rustc-style (location, source line, notes, help), then its trace."""
    text = render(f.as_diagnostic(), source)
    if traces and f.trace is not None:
        text += "\n" + trace_text(f.trace)
    return text


def message_text(f: Finding) -> str:
    """The message with its notes and help, for formats that show one block of text."""
    parts = [f.message]
    parts += [f"note: {n}" for n in f.notes]
    if f.help:
        parts.append(f"help: {f.help}")
    return "\n".join(parts)


def counts_text(d: Decision) -> str:
    """``1 error, 2 warnings, 0 notes``: the shown findings, at the level they are shown at."""
    c = d.counts
    return (
        f"{plural(c.errors, 'error')}, {plural(c.warnings, 'warning')}, {plural(c.notes, 'note')}"
    )


def silenced_text(d: Decision) -> str:
    """`` (3 suppressed: 2 inline, 1 baseline)``, or nothing when nothing was silenced."""
    c = d.counts
    if not c.suppressed + c.baselined:
        return ""
    return (
        f" ({c.suppressed + c.baselined} suppressed: {c.suppressed} inline, {c.baselined} baseline)"
    )


_UNKNOWN_NOTE = {
    Unknown.FAIL: "",
    Unknown.WARN: ", a warning, not a pass",
    Unknown.IGNORE: ", ignored, not a pass",
}


def result_text(d: Decision) -> str:
    """The run's result, the same words in every format:
    ``result: FAILED: 1 requirement verdict failing; 1 unknown [--fail-level error --unknown warn]``.
    """
    c = d.counts
    parts = []
    if c.failing_verdicts:
        parts.append(f"{plural(c.failing_verdicts, 'requirement verdict')} failing")
    if c.failing_findings:
        parts.append(f"{plural(c.failing_findings, 'finding')} failing")
    if c.unknown:
        parts.append(f"{c.unknown} unknown{_UNKNOWN_NOTE[d.policy.unknown]}")
    if c.accepted:
        parts.append(
            f"{c.accepted} falsified or unknown accepted (suppressed, baselined or deselected)"
        )
    details = f": {'; '.join(parts)}" if parts else ""
    return f"result: {d.result.upper()}{details} [{d.policy.describe()}]"
