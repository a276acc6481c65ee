"""Markdown: a summary for a CI job page (``$GITHUB_STEP_SUMMARY``, GitLab, Buildkite).

The run's result and counts as the policy decided them (:mod:`coherence.policy`), an
overview table of every system's verdict on control coherence with the sentence that explains
it, then per system: its requirements (with the status as shown: ``falsified
(suppressed)``), the coupling graph as a Mermaid diagram, the findings (each with its source
line, help and trace in a collapsed block), the analyses' tables and data (collapsed).

The coupling graph is drawn from the system's coupling table (see
:mod:`coherence.reports.graph`), which ``coherence check`` derives from the IR; nothing is
computed here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from coherence.diagnostics import Severity
from coherence.policy import Decision
from coherence.reports._common import (
    count_levels,
    counts_text,
    finding_text,
    jsonable,
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


def _finding(f: Finding, source: SourceFile | None) -> list[str]:
    s = f.span
    head = f"**{f.level}[{f.code}]** `{s.path}:{s.line}:{s.column}`: {f.message}"
    what = "trace and details" if f.trace is not None else "details"
    return [head, "", *_details(what, _fence(finding_text(f, source)))]


def _data_rows(data: dict[str, object]) -> list[tuple[str, str]]:
    rows = []
    for k, v in data.items():
        value = jsonable(v)
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        rows.append((k, text))
    return rows


def _status(s: SystemReport, d: Decision) -> str:
    return d.system(s).coherence.value.upper()


def _system(s: SystemReport, source: SourceFile | None, d: Decision) -> list[str]:
    out = [f"## `{s.name}` ({s.path}): {_status(s, d)}", "", d.system(s).explanation, ""]
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
    if coupling is not None and coupling.rows:
        out += ["### Coupling graph", "", *_fence(mermaid(coupling).rstrip("\n"), "mermaid")]
        if coupling.note:
            out += ["", f"_{coupling.note}_"]
        out.append("")
    if s.findings:
        out += ["### Findings", ""]
        for f in s.findings:
            out += _finding(f, source)
    tables: list[Table] = [
        d.table(s, t) for a in s.analyses for t in a.tables if not is_coupling_table(t)
    ]
    data = [(a.analysis, dict(a.data)) for a in s.analyses if a.data]
    if tables or data:
        out += ["### Analyses", ""]
        for t in tables:
            body = _table(tuple(t.columns), [tuple(fmt_cell(c) for c in r) for r in t.rows])
            if t.note:
                body += ["", f"_{t.note}_"]
            out += _details(t.title, body)
        for name, values in data:
            out += _details(f"{name}: data", _table(("key", "value"), _data_rows(values)))
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
    for fr in report.files:
        source = SourceFile(fr.path, fr.source_text) if fr.source_text else None
        out += _file_diagnostics(fr, source)
        for s in fr.systems:
            out += _system(s, source, d)
    return "\n".join(out).rstrip("\n") + "\n"


def write(decision: Decision, stream: TextIO, options: RenderOptions) -> None:
    stream.write(markdown(decision, options))
