"""The terminal report (Rich): per system the verdict first, then what decided it.

Each system opens with its control-coherence verdict and the sentence that explains it,
then its requirements (once), then the findings that count, errors first, with their traces
folded to the decisive ticks. ``--verbose`` adds the notes, the full traces and the
analyses' tables; ``--quiet`` prints one line per system. Every table wraps its cells
rather than cutting them short, and an empty table is not printed.

Honours NO_COLOR and plain output when stdout is not a terminal.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

from coherence.diagnostics import Severity, render
from coherence.policy import Decision, Disposition
from coherence.reports._common import (
    count_levels,
    counts_text,
    plural,
    result_text,
    silenced_text,
)
from coherence.results import (
    Cell,
    Coherence,
    FileReport,
    Finding,
    SystemReport,
    Table,
    TraceView,
)
from coherence.source import SourceFile

if TYPE_CHECKING:
    from coherence.reports import RenderOptions

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.NOTE: "bold cyan"}
_VERDICT_STYLE = {
    Coherence.COHERENT: "bold green",
    Coherence.DEGRADED: "bold yellow",
    Coherence.INCOHERENT: "bold red",
    Coherence.INCONCLUSIVE: "bold magenta",
}
MAX_TRACE_ROWS = 40
# a trace in the default report: the first tick, the ticks around the violation and the
# eventful ticks nearest to it, and the last tick (--verbose shows MAX_TRACE_ROWS)
FOLDED_TRACE_ROWS = 6
# an analysis table that repeats the requirement verdicts, which the report shows once
VERDICT_TABLES = ("Requirements",)


def make_console(stream: TextIO, color: bool | None = None, width: int | None = None) -> Console:
    no_color = bool(os.environ.get("NO_COLOR")) if color is None else not color
    is_tty = stream.isatty() if hasattr(stream, "isatty") else False
    return Console(
        file=stream,
        no_color=no_color,
        force_terminal=bool(color) if color is not None else None,
        width=width or (None if is_tty else int(os.environ.get("COLUMNS", "100"))),
        highlight=False,
        soft_wrap=False,
        emoji=False,
    )


def fmt_cell(c: Cell) -> str:
    if c is None:
        return ""
    if isinstance(c, bool):
        return "yes" if c else "no"
    if isinstance(c, float):
        if c != c:
            return "nan"
        if abs(c) >= 1e5 or (0 < abs(c) < 1e-3):
            return f"{c:.3g}"
        return f"{c:.4g}"
    return str(c)


def render_table(console: Console, t: Table, fold: bool = True) -> None:
    """``t`` as a Rich table and its note; a table without rows is not drawn (its note, which
    says why it is empty, still is). ``fold`` (the default): a cell too wide for its column
    wraps onto more lines, between words where it can, rather than being cut short with an
    ellipsis (a path, a requirement's key, a number)."""
    if not t.rows:
        if t.note:
            console.print(Text(t.note, style="dim"))
        return
    rt = RichTable(title=Text(t.title), title_justify="left", show_lines=False, header_style="bold")
    for c in t.columns:
        # Text, not markup: "[s]" in a header is a unit, not a style
        rt.add_column(Text(c), overflow="fold" if fold else "ellipsis")
    for row in t.rows:
        rt.add_row(*(Text(fmt_cell(c)) for c in row))
    console.print(rt)
    if t.note:
        console.print(Text(t.note, style="dim"))


def select_steps(view: TraceView, rows: int = MAX_TRACE_ROWS) -> tuple[list[int], int]:
    """Indices of the steps worth showing, at most about ``rows``, and how many were left
    out: the first and last steps, the steps around the violation (two ticks either side;
    one when folded to fewer than :data:`MAX_TRACE_ROWS`), then the latest eventful ones."""
    steps = view.steps
    if len(steps) <= rows:
        return list(range(len(steps))), 0
    keep = {0, len(steps) - 1}
    if view.violation_tick is not None:
        near = 2 if rows >= MAX_TRACE_ROWS else 1
        keep |= {i for i, s in enumerate(steps) if abs(s.tick - view.violation_tick) <= near}
    eventful = [i for i, s in enumerate(steps) if s.significant]
    for i in reversed(eventful):
        if len(keep) >= rows:
            break
        keep.add(i)
    chosen = sorted(keep)
    return chosen, len(steps) - len(chosen)


def trace_lines(view: TraceView, rows: int = MAX_TRACE_ROWS) -> list[tuple[str, bool]]:
    """The trace as a log: one line per shown tick with the values that changed, then what
    each loop saw and set. Returns (line, is_violation) pairs; width-independent."""
    chosen, _ = select_steps(view, rows)
    lines: list[tuple[str, bool]] = []
    shown: dict[str, str] = {}
    previous = -1
    for i in chosen:
        s = view.steps[i]
        if previous >= 0 and i != previous + 1:
            lines.append((f"  ... {i - previous - 1} ticks", False))
        previous = i
        parts = []
        for col, v in zip(view.columns, s.values, strict=True):
            text = fmt_cell(v)
            if shown.get(col) != text:
                name, _, unit = col.partition(" [")
                unit = unit.rstrip("]")
                parts.append(f"{name}={text}" + ("" if unit in ("", "1") else f" {unit}"))
                shown[col] = text
        marker = "  <-- violated" if s.violated else ""
        lines.append(
            (f"t={s.time:g}s  " + ("  ".join(parts) or "(no change)") + marker, s.violated)
        )
        lines += [(f"    {e}", s.violated) for e in s.events]
    return lines


def render_trace(console: Console, view: TraceView, rows: int = MAX_TRACE_ROWS) -> None:
    console.print(Text(view.title, style="bold"))
    for line, violated in trace_lines(view, rows):
        console.print(Text(line, style="bold red" if violated else ""), soft_wrap=True)
    console.print(Text(trace_notes(view, rows), style="dim"))


def trace_notes(view: TraceView, rows: int = MAX_TRACE_ROWS) -> str:
    """The line under a trace: what was left out, the inputs, whether it was replayed."""
    _, left_out = select_steps(view, rows)
    notes = []
    if left_out and rows < MAX_TRACE_ROWS:
        notes.append(f"{plural(left_out, 'tick')} not shown (-v shows more)")
    elif left_out:
        notes.append(f"{left_out} uneventful ticks not shown")
    if view.inputs_note:
        notes.append(view.inputs_note)
    notes.append("replayed in the simulator" if view.replayed else "NOT reproduced in simulation")
    return "; ".join(notes)


def render_finding(
    console: Console,
    f: Finding,
    source: SourceFile | None,
    traces: bool = True,
    rows: int = MAX_TRACE_ROWS,
) -> None:
    text = render(f.as_diagnostic(), source)
    head, _, rest = text.partition("\n")
    # long lines are left whole for the terminal to wrap (never cut short); the source
    # line and its carets must not be broken by Rich
    console.print(Text(head, style=_STYLE[f.level]), soft_wrap=True)
    if rest:
        console.print(Text(rest), soft_wrap=True)
    if traces and f.trace is not None:
        render_trace(console, f.trace, rows)
    console.print()


_OUTCOME_STYLE = {
    Disposition.PASS: "green",
    Disposition.FAIL: "red",
    Disposition.WARN: "magenta",
    Disposition.IGNORED: "magenta",
    Disposition.SUPPRESSED: "yellow",
    Disposition.BASELINED: "yellow",
    Disposition.DESELECTED: "yellow",
    Disposition.SKIPPED: "dim",
}
_RESULT_STYLE = {"failed": "bold red", "inconclusive": "bold magenta", "passed": "bold green"}


def _heading(console: Console, s: SystemReport) -> None:
    title = Text(f"system {s.name}  ({s.path})", style="bold")
    if title.cell_len + 6 <= console.width:
        console.rule(title, align="left")
    else:  # a rule would cut a long path short: the title whole, the rule under it
        console.print(title, soft_wrap=True)
        console.rule()


def _without_verdict(explanation: str, coherence: Coherence) -> str:
    """The explanation without its leading ``incoherent: ``, for a line that names the
    verdict already."""
    prefix = f"{coherence.value}: "
    return explanation[len(prefix) :] if explanation.startswith(prefix) else explanation


def requirements_table(s: SystemReport, decision: Decision) -> RichTable:
    rt = RichTable(title="Requirements", title_justify="left", header_style="bold")
    for c in ("requirement", "status", "by", "detail"):
        rt.add_column(c, overflow="fold")
    for v in s.verdicts:
        vd = decision.verdict(s, v)
        detail = v.reason or (f"depth {v.depth}" if v.depth is not None else "")
        rt.add_row(
            Text(v.requirement),
            Text(vd.label, style=_OUTCOME_STYLE[vd.outcome]),
            Text(v.analysis),
            Text(detail),
        )
    return rt


def analysis_tables(s: SystemReport, decision: Decision) -> list[Table]:
    """The analyses' tables worth printing: not empty, and not the formal analysis' copy of
    the requirement verdicts (the report's own Requirements table shows them once)."""
    return [
        decision.table(s, t)
        for a in s.analyses
        for t in a.tables
        if t.rows and not (t.title in VERDICT_TABLES and s.verdicts)
    ]


def render_system(
    console: Console,
    s: SystemReport,
    source: SourceFile | None,
    verbose: bool,
    decision: Decision,
) -> None:
    """One system, verdict first: the control-coherence verdict and its sentence, the
    requirements, the findings that count (errors first; notes with ``verbose``), then with
    ``verbose`` the analyses' tables."""
    _heading(console, s)
    sd = decision.system(s)
    counts = count_levels(s.findings)
    console.print(
        Text.assemble(
            "control coherence: ",
            (sd.coherence.value.upper(), _VERDICT_STYLE[sd.coherence]),
            f"  ({plural(counts[Severity.ERROR], 'error')}, "
            f"{plural(counts[Severity.WARNING], 'warning')}, "
            f"{plural(counts[Severity.NOTE], 'note')})",
        )
    )
    console.print(Text(sd.explanation), soft_wrap=True)
    for note in s.notes:  # said before the work: an expensive requirement
        console.print(Text.assemble(("note", "bold cyan"), f": {note}"), soft_wrap=True)
    console.print()
    if s.verdicts:
        console.print(requirements_table(s, decision))
        console.print()
    # errors first; the sort keeps each level in the report's order (by line)
    findings = sorted(s.findings, key=lambda f: -f.level)
    rows = MAX_TRACE_ROWS if verbose else FOLDED_TRACE_ROWS
    for f in findings:
        if verbose or f.level > Severity.NOTE:
            render_finding(console, f, source, rows=rows)
    tables = analysis_tables(s, decision)
    if verbose:
        for t in tables:
            render_table(console, t)
        if tables:
            console.print()
    else:
        left = []
        if counts[Severity.NOTE]:
            left.append(plural(counts[Severity.NOTE], "note"))
        if tables:
            left.append(plural(len(tables), "analysis table"))
        if left:
            console.print(Text(" and ".join(left) + " not shown (shown with -v)", style="dim"))
            console.print()


def render_quiet(
    decision: Decision, stream: TextIO, color: bool | None = None, files: bool = True
) -> None:
    """One line per system (``path: system: VERDICT (n errors, m warnings) — why``), one per
    error or warning of a file's front end (a spec that does not parse has no system), then
    the run's result line (only that with ``files=False``: the specs' lines were printed as
    each was checked, :func:`render_quiet_file`)."""
    console = make_console(stream, color)
    if files:
        for fr in decision.report.files:
            render_quiet_file(console, fr, decision)
    console.print(Text(result_text(decision), style=_RESULT_STYLE[decision.result]), soft_wrap=True)


def render_quiet_file(console: Console, fr: FileReport, decision: Decision) -> None:
    """One spec's lines of the ``--quiet`` report."""
    for d in fr.diagnostics:
        f = Finding.from_diagnostic(d)
        if f.level == Severity.NOTE:
            continue
        console.print(
            Text.assemble(
                f"{fr.path}:{f.span.line}:{f.span.column}: ",
                (f"{f.level}[{f.code}]", _STYLE[f.level]),
                f": {f.message}",
            ),
            soft_wrap=True,
        )
    for s in fr.systems:
        sd = decision.system(s)
        counts = count_levels(s.findings)
        console.print(
            Text.assemble(
                f"{s.path}: {s.name}: ",
                (sd.coherence.value.upper(), _VERDICT_STYLE[sd.coherence]),
                f" ({plural(counts[Severity.ERROR], 'error')}, "
                f"{plural(counts[Severity.WARNING], 'warning')}) \u2014 "
                + _without_verdict(sd.explanation, sd.coherence),
            ),
            soft_wrap=True,
        )


def render_file(console: Console, fr: FileReport, decision: Decision, verbose: bool) -> None:
    """One spec's part of the report: its front end's diagnostics, then each system."""
    source = SourceFile(fr.path, fr.source_text) if fr.source_text else None
    for d in fr.diagnostics:
        render_finding(console, Finding.from_diagnostic(d), source)
    for s in fr.systems:
        render_system(console, s, source, verbose, decision)


def render_report(
    decision: Decision,
    stream: TextIO,
    verbose: bool = False,
    color: bool | None = None,
    width: int | None = None,
    files: bool = True,
) -> None:
    """The report; with ``files=False`` only its closing lines (the specs' parts were
    printed as each was checked: :func:`render_file`)."""
    console = make_console(stream, color, width)
    report = decision.report
    if files:
        for fr in report.files:
            render_file(console, fr, decision, verbose)
    nsys = sum(len(fr.systems) for fr in report.files)
    summary = (
        f"{plural(len(report.files), 'file')}, {plural(nsys, 'system')} analysed: "
        f"{counts_text(decision)}{silenced_text(decision)}"
    )
    console.print(Text(summary, style="bold"))
    console.print(Text(result_text(decision), style=_RESULT_STYLE[decision.result]), soft_wrap=True)


def render_lint(decision: Decision, stream: TextIO, color: bool | None = None) -> None:
    console = make_console(stream, color)
    n = 0
    for fr in decision.report.files:
        source = SourceFile(fr.path, fr.source_text) if fr.source_text else None
        for d in fr.diagnostics:
            render_finding(console, Finding.from_diagnostic(d), source)
            n += 1
    summary = (
        f"{plural(len(decision.report.files), 'file')} checked, {plural(n, 'diagnostic')}"
        f"{silenced_text(decision)}"
    )
    console.print(Text(summary, style="bold"))
    console.print(Text(result_text(decision), style=_RESULT_STYLE[decision.result]), soft_wrap=True)


def write(decision: Decision, stream: TextIO, options: RenderOptions) -> None:
    """The text format of the report registry: suppressed findings are counted, not shown."""
    if options.lint:
        render_lint(decision, stream, options.color)
    elif options.quiet:
        render_quiet(decision, stream, options.color, not options.streamed)
    else:
        render_report(
            decision, stream, options.verbose, options.color, options.width, not options.streamed
        )


def write_file(decision: Decision, stream: TextIO, options: RenderOptions) -> None:
    """The text report of the one spec of ``decision`` (printed as soon as it is checked;
    :func:`write` with ``streamed`` then prints the closing lines)."""
    for fr in decision.report.files:
        if options.quiet:
            render_quiet_file(make_console(stream, options.color), fr, decision)
        else:
            console = make_console(stream, options.color, options.width)
            render_file(console, fr, decision, options.verbose)


def render_file_summary(fr: FileReport) -> str:
    return f"{fr.path}: {len(fr.findings)} findings"
