"""Markdown: a summary for a CI job page (``$GITHUB_STEP_SUMMARY``, GitLab, Buildkite).

The run's result and counts as the policy decided them (:mod:`coherence.policy`), an
overview table of every system's verdict on control coherence with the sentence that explains
it, then per system: its requirements (with the status as shown: ``falsified
(suppressed)``), the coupling graph as a Mermaid diagram, the findings (each with its source
line, help and trace in a collapsed block), the analyses' tables (collapsed). The analyses'
raw data (eigenvalues, solver statistics) is not shown: it is in the JSON report.

A job summary takes at most 1 MiB (GitHub), so the summary stays under :data:`LIMIT` bytes:
when the whole report would be more, the least important systems are shortened first (a
coherent system loses its tables, then its traces, then all but its verdict, before an
incoherent one does), and a note at the top says what was shortened and where the full
report is.

The coupling graph is drawn from the system's coupling table (see
:mod:`coherence.reports.graph`), which ``coherence check`` derives from the IR; nothing is
computed here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from coherence.diagnostics import Severity
from coherence.policy import Decision
from coherence.reports._common import (
    count_levels,
    counts_text,
    finding_text,
    plural,
    result_text,
    silenced_text,
)
from coherence.reports.graph import coupling_table_of, is_coupling_table, mermaid
from coherence.reports.text import fmt_cell
from coherence.results import FileReport, Finding, SystemReport, Table
from coherence.source import SourceFile

if TYPE_CHECKING:
    from coherence.reports import RenderOptions


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>") or " "


def _table(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    out = ["| " + " | ".join(_cell(c) for c in columns) + " |"]
    out.append("|" + "|".join("---" for _ in columns) + "|")
    out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return out


def _details(summary: str, body: list[str]) -> list[str]:
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>", ""]


def _fence(text: str, lang: str = "text") -> list[str]:
    fence = "````" if "```" in text else "```"
    return [f"{fence}{lang}", text, fence]


def _headline(f: Finding) -> str:
    s = f.span
    return f"**{f.level}[{f.code}]** `{s.path}:{s.line}:{s.column}`: {f.message}"


def _finding(f: Finding, source: SourceFile | None) -> list[str]:
    head = _headline(f)
    what = "trace and details" if f.trace is not None else "details"
    return [head, "", *_details(what, _fence(finding_text(f, source)))]


def _status(s: SystemReport, d: Decision) -> str:
    return d.system(s).coherence.value.upper()


# how much of a system a section shows: everything; without the analyses' tables; the
# findings' headlines without their traces; the verdict and its sentence only
FULL, NO_TABLES, HEADLINES, VERDICT = 0, 1, 2, 3


def _system(
    s: SystemReport, source: SourceFile | None, d: Decision, level: int = FULL
) -> list[str]:
    out = [f"## `{s.name}` ({s.path}): {_status(s, d)}", "", d.system(s).explanation, ""]
    out += [f"_note: {note}_" for note in s.notes] + ([""] if s.notes else [])
    if level >= VERDICT:
        return out
    if s.verdicts:
        rows = [
            (
                v.requirement,
                d.verdict(s, v).label,
                v.analysis,
                v.reason or (f"depth {v.depth}" if v.depth is not None else ""),
            )
            for v in s.verdicts
        ]
        out += ["### Requirements", "", *_table(("requirement", "status", "by", "detail"), rows)]
        out.append("")
    coupling = coupling_table_of(s)
    if coupling is not None and coupling.rows and level < HEADLINES:
        out += ["### Coupling graph", "", *_fence(mermaid(coupling).rstrip("\n"), "mermaid")]
        if coupling.note:
            out += ["", f"_{coupling.note}_"]
        out.append("")
    if s.findings:
        out += ["### Findings", ""]
        for f in s.findings:
            out += _finding(f, source) if level < HEADLINES else [_headline(f), ""]
    if level >= NO_TABLES:
        return out
    tables: list[Table] = [
        d.table(s, t) for a in s.analyses for t in a.tables if t.rows and not is_coupling_table(t)
    ]
    if tables:
        out += ["### Analyses", ""]
        for t in tables:
            body = _table(tuple(t.columns), [tuple(fmt_cell(c) for c in r) for r in t.rows])
            if t.note:
                body += ["", f"_{t.note}_"]
            out += _details(t.title, body)
    return out


def _overview(d: Decision) -> list[str]:
    rows: list[tuple[str, ...]] = []
    for fr in d.report.files:
        front = count_levels(tuple(Finding.from_diagnostic(d) for d in fr.diagnostics))
        if not fr.systems:
            rows.append(
                (
                    "(none)",
                    f"`{fr.path}`",
                    "NOT ANALYSED",
                    "",
                    str(front[Severity.ERROR]),
                    str(front[Severity.WARNING]),
                    str(front[Severity.NOTE]),
                )
            )
        for s in fr.systems:
            c = count_levels(s.findings)
            passed = sum(1 for v in s.verdicts if d.verdict(s, v).passed)
            rows.append(
                (
                    f"`{s.name}`",
                    f"`{fr.path}`",
                    _status(s, d),
                    f"{passed}/{len(s.verdicts)}",
                    str(c[Severity.ERROR]),
                    str(c[Severity.WARNING]),
                    str(c[Severity.NOTE]),
                )
            )
    columns = ("system", "file", "coherence", "requirements met", "errors", "warnings", "notes")
    return _table(columns, rows)


def _file_diagnostics(fr: FileReport, source: SourceFile | None) -> list[str]:
    if not fr.diagnostics:
        return []
    out = [f"## {fr.path}: diagnostics", ""]
    for d in fr.diagnostics:
        out += _finding(Finding.from_diagnostic(d), source)
    return out


def markdown(d: Decision, options: RenderOptions) -> str:
    run = d.run
    report = run.report
    nsys = sum(len(fr.systems) for fr in report.files)
    headline = (
        f"**{plural(len(report.files), 'file')}, {plural(nsys, 'system')}: "
        f"{counts_text(d)}**{silenced_text(d)}"
    )
    out = ["# coherence", "", headline, "", f"**{result_text(d)}**", ""]
    if run.baseline is not None and run.baseline.stale:
        n = run.baseline.stale
        out += [
            f"{n} entr{'y' if n == 1 else 'ies'} of the baseline `{run.baseline.path}` "
            "no longer match a finding: regenerate it to lock in the fix.",
            "",
        ]
    out += [*_overview(d), ""]
    return _fit(out, d, options.limit if options.limit is not None else LIMIT)


# GitHub's limit on a step summary is 1 MiB; a summary is kept this much under it
LIMIT = 1_000_000
_ORDER = {"coherent": 0, "degraded": 1, "inconclusive": 2, "incoherent": 3}


def _size(lines: list[str]) -> int:
    return sum(len(line.encode("utf-8")) + 1 for line in lines)


def _fit(head: list[str], d: Decision, limit: int) -> str:
    """The head, then every file's diagnostics and systems, shortened to ``limit`` bytes:
    the least important systems first (coherent, then degraded, inconclusive, incoherent;
    later files before earlier) lose their analyses' tables, then their traces, then all but
    their verdict; what is still too much is left out. A note says what was shortened."""
    report = d.report
    parts: list[tuple[SystemReport | None, SourceFile | None, list[str]]] = []
    for fr in report.files:
        source = SourceFile(fr.path, fr.source_text) if fr.source_text else None
        diagnostics = _file_diagnostics(fr, source)
        if diagnostics:
            parts.append((None, source, diagnostics))
        for s in fr.systems:
            parts.append((s, source, _system(s, source, d)))
    levels = [FULL] * len(parts)
    note_room = 2_000
    total = _size(head) + sum(_size(p[2]) for p in parts)
    order = sorted(
        (i for i, p in enumerate(parts) if p[0] is not None),
        key=lambda i: (_ORDER[d.system(parts[i][0]).coherence.value], -i),  # type: ignore[arg-type]
    )
    for level in (NO_TABLES, HEADLINES, VERDICT):
        for i in order:
            if total + note_room <= limit:
                break
            system, source, lines = parts[i]
            assert system is not None
            shorter = _system(system, source, d, level)
            total += _size(shorter) - _size(lines)
            parts[i] = (system, source, shorter)
            levels[i] = level
    body: list[str] = []
    left_out = 0
    for part in parts:
        lines = part[2]
        if _size(head) + _size(body) + _size(lines) + note_room > limit:
            left_out += 1
            continue
        body += lines
    shortened = [i for i, lv in enumerate(levels) if lv > FULL]
    if shortened or left_out:
        what = []
        for level, words in (
            (NO_TABLES, "without the analyses' tables"),
            (HEADLINES, "without traces or the coupling graph"),
            (VERDICT, "with their verdict only"),
        ):
            n = sum(1 for lv in levels if lv == level)
            if n:
                what.append(f"{plural(n, 'system')} {words}")
        if left_out:
            what.append(f"{plural(left_out, 'section')} left out")
        head = [
            *head,
            f"> **This summary is shortened to fit the 1 MiB limit of a job summary**: "
            f"{'; '.join(what)}. The full report: `coherence check` run locally (`-v`), its "
            "JSON or SARIF output (`--output json=PATH`), or the `coherence-report` artifact "
            "that the coherence Action uploads.",
            "",
        ]
    return "\n".join(head + body).rstrip("\n") + "\n"


def write(decision: Decision, stream: TextIO, options: RenderOptions) -> None:
    stream.write(markdown(decision, options))
