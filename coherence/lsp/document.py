"""What the language server knows about one document, from its text alone.

- :func:`lint_document`: the diagnostics ``coherence lint`` reports for the text, after the
  project configuration's selection and the file's inline suppressions.
- :func:`declarations`: every name a system declares, with where and how, and its unit (as
  the front end inferred it when the spec compiles, as written otherwise).
- :func:`declaration_at`: the declaration of the name under a position, for hover and
  go to definition.

Positions here are the spec's own: 1-based lines and columns counted in characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from coherence.compile import CompileResult, compile_source
from coherence.diagnostics import CoherenceError, Diagnostic
from coherence.frontend import ast
from coherence.ir.nodes import TransitionSystem
from coherence.source import SourceFile, Span

_WORD = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


@dataclass(frozen=True, slots=True)
class Declaration:
    """A declared name: what it is, where its name and its declaration are, its unit."""

    name: str
    kind: str  # state | param | input | let | loop | objective | unit | profile | system
    system: str
    name_span: Span
    span: Span
    unit: str = ""
    doc: str = ""


def compile_document(path: str, text: str) -> CompileResult:
    """The front end on a document's text, as ``lint`` runs it on a file."""
    return compile_source(SourceFile(path, text))


def lint_document(
    path: str, text: str, result: CompileResult | None = None
) -> tuple[Diagnostic, ...]:
    """The diagnostics ``coherence lint PATH`` reports for ``text``.

    The configuration is the one ``lint`` would use for the file (found from its directory
    up); a broken configuration is reported at the top of the document, as lint would stop
    on it.
    """
    from coherence.config import load_config
    from coherence.results import FileReport, RunReport
    from coherence.suppress import Selection, front_end_only, triage

    result = result or compile_document(path, text)
    try:
        config = load_config(start=Path(path).parent)
    except CoherenceError as e:
        note = (e.hint,) if e.hint else ()
        return (
            Diagnostic("COH100", f"configuration: {e.message}", Span.unknown(path), None, "", note),
        )
    report = RunReport((FileReport(path, result.diagnostics, (), text),), "")
    run = triage(report, Selection(config.select, config.ignore), None, front_end_only)
    return tuple(d for fr in run.report.files for d in fr.diagnostics)


def _unit_of(ts: TransitionSystem | None, kind: str, name: str) -> str:
    if ts is None:
        return ""
    try:
        if kind == "state":
            return ts.state(name).unit
        if kind == "param":
            return ts.param(name).unit
        if kind == "let":
            return ts.let(name).unit
        if kind == "input":
            return next(u.unit for u in ts.inputs if u.name == name)
        if kind == "objective":
            return ts.objective(name).unit
    except (KeyError, StopIteration):
        return ""
    return ""


def declarations(result: CompileResult) -> tuple[Declaration, ...]:
    """Every declared name of every system in the document, in source order."""
    if result.module is None:
        return ()
    lowered = {ts.name: ts for ts in result.systems}
    out: list[Declaration] = []
    for system in result.module.systems:
        out += _system_declarations(system, lowered.get(system.name))
    return tuple(out)


def _system_declarations(system: ast.System, ts: TransitionSystem | None) -> list[Declaration]:
    out: list[Declaration] = []

    def add(
        name: str, kind: str, name_span: Span, span: Span, written: str | None, doc: str = ""
    ) -> None:
        unit = _unit_of(ts, kind, name) or (written or "")
        out.append(Declaration(name, kind, system.name, name_span, span, unit, doc))

    add(system.name, "system", system.name_span, system.span, None, system.doc or "")
    for item in system.items:
        match item:
            case ast.StateDecl():
                add(item.name, "state", item.name_span, item.span, item.unit)
            case ast.ParamDecl():
                add(item.name, "param", item.name_span, item.span, item.unit)
            case ast.InputDecl():
                add(item.name, "input", item.name_span, item.span, item.unit)
            case ast.LetDecl():
                add(item.name, "let", item.name_span, item.span, item.unit)
            case ast.UnitDecl():
                add(item.name, "unit", item.name_span, item.span, None)
            case ast.ProfileDecl():
                add(item.name, "profile", item.name_span, item.span, None)
            case ast.LoopDecl():
                add(item.name, "loop", item.name_span, item.span, None, item.doc or "")
                objectives = [sub for sub in item.items if isinstance(sub, ast.Objective)]
                names = _loop_objectives(ts, item.name, objectives)
                for sub, full in zip(objectives, names, strict=False):
                    if full:
                        add(full, "objective", sub.span, sub.span, None)
            case ast.Objective() if item.name:
                add(item.name, "objective", item.span, item.span, None)
            case _:
                pass
    return out


def _loop_objectives(
    ts: TransitionSystem | None, loop: str, objectives: list[ast.Objective]
) -> list[str]:
    """The names a loop's objectives have (``hpa.util``): as lowered when the spec compiles
    (an unnamed objective is named after what it keeps), else as written."""
    if ts is not None:
        try:
            lowered = list(ts.loop(loop).objectives)
        except KeyError:
            lowered = []
        if len(lowered) == len(objectives):
            return lowered
    return [f"{loop}.{o.name}" if o.name else "" for o in objectives]


def _contains(span: Span, line: int, column: int) -> bool:
    return (span.line, span.column) <= (line, column) <= (span.end_line, span.end_column)


def word_at(text: str, line: int, column: int) -> tuple[str, int, int] | None:
    """The name under (line, column), with its 1-based start and end columns; dotted
    names (``hpa.util``) are kept whole."""
    lines = text.splitlines()
    if not 1 <= line <= len(lines):
        return None
    row = lines[line - 1]
    for m in re.finditer(r"[A-Za-z_][A-Za-z_0-9]*(?:\.[A-Za-z_][A-Za-z_0-9]*)*", row):
        if m.start() <= column - 1 <= m.end():
            return m.group(), m.start() + 1, m.end() + 1
    return None


def declaration_at(
    result: CompileResult, line: int, column: int, decls: tuple[Declaration, ...] | None = None
) -> Declaration | None:
    """The declaration of the name at (line, column) of the document, if it is declared.

    A dotted name resolves as a whole (``hpa.util``, a loop's objective) or, failing that,
    by the part under the cursor (``hpa`` or ``util``). Names resolve in the system that
    encloses the position.
    """
    found = word_at(result.source.text, line, column)
    if found is None:
        return None
    word, start, _ = found
    decls = declarations(result) if decls is None else decls
    systems = [d for d in decls if d.kind == "system" and _contains(d.span, line, column)]
    here = systems[-1].system if systems else None
    candidates = [word]
    if "." in word:
        offset = column - start
        parts = word.split(".")
        pos = 0
        for part in parts:
            if pos <= offset <= pos + len(part):
                candidates.append(part)
                break
            pos += len(part) + 1
    for name in candidates:
        matches = [d for d in decls if d.name == name and d.kind != "system"]
        matches = [d for d in matches if here is None or d.system == here] or matches
        if matches:
            return matches[0]
    systems = [d for d in decls if d.kind == "system" and d.name == word]
    return systems[0] if systems else None


def hover_text(decl: Declaration, text: str) -> str:
    """Markdown for a hover: the declaration as written, its kind and unit, its doc."""
    lines = text.splitlines()
    first = decl.span.line
    last = decl.span.end_line if decl.kind not in ("loop", "system") else decl.span.line
    last = min(last, first + 5)
    written = "\n".join(lines[i - 1].rstrip() for i in range(first, last + 1) if i <= len(lines))
    written = "\n".join(_dedent(written.splitlines()))
    out = [f"```coherence\n{written}\n```", f"**{decl.kind}** `{decl.name}`"]
    if decl.unit:
        unit = "1 (dimensionless)" if decl.unit == "1" else decl.unit
        out[-1] += f" — unit: `{unit}`"
    if decl.doc:
        out.append(decl.doc)
    return "\n\n".join(out)


def _dedent(lines: list[str]) -> list[str]:
    indents = [len(s) - len(s.lstrip()) for s in lines if s.strip()]
    cut = min(indents, default=0)
    return [s[cut:] for s in lines]
