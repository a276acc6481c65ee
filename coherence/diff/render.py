"""``coherence diff`` as text, Markdown (a pull-request comment) and JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from coherence.diff.compare import (
    SCHEMA_VERSION,
    EarlierViolation,
    FindingChange,
    NumberChange,
    SpecDiff,
)


def _fmt(v: Any) -> str:
    from coherence.reports.text import fmt_cell

    if v is None:
        return "-"
    if v == "":
        return "(empty)"
    if isinstance(v, float | int | bool | str):
        return fmt_cell(v)
    return json.dumps(v)


def _number_line(n: NumberChange) -> str:
    key = "spectral radius (coupled)" if n.key == "spectral_radius" else n.key
    text = f"{key}: {_fmt(n.old)} -> {_fmt(n.new)}"
    d, r = n.delta, n.relative
    if d is not None:
        text += f" ({d:+.4g}" + (f", {r:+.1%}" if r is not None else "") + ")"
    return text


def _finding_line(c: FindingChange) -> str:
    f = c.finding
    s = f.span
    mark = "+" if c.change == "appeared" else "-"
    return f"{mark} {f.level}[{f.code}] {s.path}:{s.line}:{s.column}: {f.message}"


def _earlier_line(e: EarlierViolation) -> str:
    f = e.finding
    return (
        f"{f.code} ({f.key or f.message}): violated at t={e.new_time:g}s, "
        f"was t={e.old_time:g}s ({e.new_time - e.old_time:+g}s)"
    )


def _result(regressions: int, relaxed: int) -> str:
    """``1 regression; 2 relaxed objectives or requirements (review: ...)``."""
    parts = []
    if regressions:
        parts.append(f"{regressions} regression{'s' if regressions != 1 else ''}")
    if relaxed:
        parts.append(
            f"{relaxed} relaxed objective{'s' if relaxed != 1 else ''} or requirement"
            f"{'s' if relaxed != 1 else ''} (it asks less of the system: review it, it is "
            "not a pass)"
        )
    return "; ".join(parts) if parts else "no regression, nothing relaxed"


def _spec_title(d: SpecDiff) -> str:
    if d.status == "added":
        return f"{d.new}: new spec"
    if d.status == "deleted":
        return f"{d.old}: deleted"
    return f"{d.old} -> {d.new}"


def _render_spec(console: Any, d: SpecDiff) -> None:
    from rich.text import Text

    console.print(Text(f"coherence diff: {_spec_title(d)}", style="bold"), soft_wrap=True)
    if not d.changed:
        console.print(Text("no change in verdicts, findings, margins or objectives"))
    for name in d.systems_added:
        console.print(Text(f"system {name}: added"))
    for name in d.systems_removed:
        console.print(Text(f"system {name}: removed"))
    for name, a, b in d.coherence:
        console.print(Text(f"system {name}: control coherence {a.upper()} -> {b.upper()}"))
    if d.verdicts:
        console.print(Text("verdicts", style="bold"))
        for v in d.verdicts:
            line = f"  {v.system}: {v.requirement} [{v.analysis}]: {v.old or '-'} -> {v.new or '-'}"
            style = "bold red" if v.regression else ""
            console.print(
                Text(line + ("  REGRESSION" if v.regression else ""), style=style), soft_wrap=True
            )
    if d.relaxed:
        console.print(Text("relaxed (asks less of the system than before)", style="bold"))
        for r in d.relaxed:
            console.print(
                Text(f"  {r.system}: {r.subject}: {r.change}  RELAXED", style="bold yellow"),
                soft_wrap=True,
            )
    if d.earlier:
        console.print(Text("violations that moved earlier", style="bold"))
        for e in d.earlier:
            console.print(
                Text(f"  {e.system}: {_earlier_line(e)}  REGRESSION", style="bold red"),
                soft_wrap=True,
            )
    if d.findings:
        console.print(Text("findings", style="bold"))
        for c in d.findings:
            line = "  " + _finding_line(c) + ("  REGRESSION" if c.regression else "")
            console.print(Text(line, style="bold red" if c.regression else ""), soft_wrap=True)
    if d.numbers:
        console.print(Text("stability, margins and alignment", style="bold"))
        for n in d.numbers:
            console.print(Text(f"  {n.system}: {_number_line(n)}"), soft_wrap=True)


def diff_text(d: SpecDiff, stream: TextIO, color: bool | None = None) -> None:
    from rich.text import Text

    from coherence.reports.text import make_console

    console = make_console(stream, color)
    _render_spec(console, d)
    bad = d.regressions or d.relaxed
    console.print(
        Text(
            f"result: {_result(d.regressions, len(d.relaxed))}",
            style="bold red" if bad else "bold green",
        ),
        soft_wrap=True,
    )


def diff_set_text(diffs: Sequence[SpecDiff], stream: TextIO, color: bool | None = None) -> None:
    """Every spec that changed, then how many did not and the result."""
    from rich.text import Text

    from coherence.reports.text import make_console

    console = make_console(stream, color)
    changed = [d for d in diffs if d.changed]
    for d in changed:
        _render_spec(console, d)
        console.print()
    same = len(diffs) - len(changed)
    if same:
        console.print(Text(f"{same} spec{'s' if same != 1 else ''} unchanged"))
    regressions = sum(d.regressions for d in diffs)
    relaxed = sum(len(d.relaxed) for d in diffs)
    console.print(
        Text(
            f"result: {_result(regressions, relaxed)}",
            style="bold red" if regressions or relaxed else "bold green",
        ),
        soft_wrap=True,
    )


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>") or " "


def diff_markdown(diffs: Sequence[SpecDiff], old: str, new: str) -> str:
    """A pull-request comment: the result first, a table of the specs that changed, then
    per spec its verdicts, relaxed objectives, earlier violations, findings and numbers."""
    regressions = sum(d.regressions for d in diffs)
    relaxed = sum(len(d.relaxed) for d in diffs)
    changed = [d for d in diffs if d.changed]
    icon = ":x:" if regressions else (":warning:" if relaxed else ":white_check_mark:")
    out = [
        f"## coherence diff: `{old}` -> `{new}`",
        "",
        f"{icon} **{_result(regressions, relaxed)}**",
        "",
    ]
    if changed:
        out += [
            "| spec | coherence | regressions | relaxed | findings +/- |",
            "|---|---|---|---|---|",
        ]
        for d in changed:
            verdicts = ", ".join(f"`{s}` {a.upper()} -> {b.upper()}" for s, a, b in d.coherence)
            plus = sum(1 for c in d.findings if c.change == "appeared")
            minus = len(d.findings) - plus
            status = {"added": " (new)", "deleted": " (deleted)"}.get(d.status, "")
            out.append(
                f"| `{d.new if d.status != 'deleted' else d.old}`{status} | "
                f"{_md_cell(verdicts) if verdicts else 'unchanged'} | {d.regressions} | "
                f"{len(d.relaxed)} | +{plus} / -{minus} |"
            )
        out.append("")
    same = len(diffs) - len(changed)
    if same:
        out += [f"{same} spec{'s' if same != 1 else ''} unchanged.", ""]
    for d in changed:
        out += [f"### {_md_cell(_spec_title(d))}", ""]
        for name in d.systems_added:
            out.append(f"- system `{name}` added")
        for name in d.systems_removed:
            out.append(f"- system `{name}` removed")
        for v in d.verdicts:
            mark = " **regression**" if v.regression else ""
            out.append(
                f"- `{v.system}`: `{v.requirement}` ({v.analysis}): "
                f"{v.old or '-'} -> **{v.new or '-'}**{mark}"
            )
        for r in d.relaxed:
            out.append(f"- :warning: **relaxed**: `{r.system}`: {r.subject}: {_md_cell(r.change)}")
        for e in d.earlier:
            out.append(f"- **regression**: `{e.system}`: {_md_cell(_earlier_line(e))}")
        for c in d.findings:
            f = c.finding
            mark = " **regression**" if c.regression else ""
            word = "new" if c.change == "appeared" else "gone"
            out.append(
                f"- {word}: {f.level}[{f.code}] `{f.span.path}:{f.span.line}`: "
                f"{_md_cell(f.message)}{mark}"
            )
        if d.numbers:
            out += ["", "| system | what | old | new | change |", "|---|---|---|---|---|"]
            for n in d.numbers:
                key = "spectral radius (coupled)" if n.key == "spectral_radius" else n.key
                delta = ""
                if n.delta is not None:
                    delta = f"{n.delta:+.4g}" + (
                        f" ({n.relative:+.1%})" if n.relative is not None else ""
                    )
                out.append(
                    f"| `{n.system}` | {_md_cell(key)} | {_md_cell(_fmt(n.old))} | "
                    f"{_md_cell(_fmt(n.new))} | {delta} |"
                )
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def diff_json(d: SpecDiff) -> dict[str, Any]:
    from coherence.reports._common import jsonable
    from coherence.reports.json import finding_json

    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "diff",
        "old": d.old,
        "new": d.new,
        "status": d.status,
        "regressions": d.regressions,
        "systems": {"added": list(d.systems_added), "removed": list(d.systems_removed)},
        "coherence": [{"system": s, "old": a, "new": b} for s, a, b in d.coherence],
        "verdicts": [
            {
                "system": v.system,
                "requirement": v.requirement,
                "analysis": v.analysis,
                "old": v.old,
                "new": v.new,
                "regression": v.regression,
            }
            for v in d.verdicts
        ],
        "numbers": [
            {
                "system": n.system,
                "analysis": n.analysis,
                "key": n.key,
                "old": jsonable(n.old),
                "new": jsonable(n.new),
                "delta": jsonable(n.delta),
                "relative": jsonable(n.relative),
            }
            for n in d.numbers
        ],
        "findings": [
            {"change": c.change, "regression": c.regression, "finding": finding_json(c.finding)}
            for c in d.findings
        ],
        "earlier": [
            {
                "system": e.system,
                "finding": finding_json(e.finding),
                "old_time_s": e.old_time,
                "new_time_s": e.new_time,
            }
            for e in d.earlier
        ],
        "relaxed": [
            {"system": r.system, "subject": r.subject, "change": r.change} for r in d.relaxed
        ],
    }


def diff_set_json(diffs: Sequence[SpecDiff], old: str, new: str) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "diff-set",
        "old": old,
        "new": new,
        "regressions": sum(d.regressions for d in diffs),
        "relaxed": sum(len(d.relaxed) for d in diffs),
        "specs": [diff_json(d) for d in diffs],
    }
