"""Canonical formatting of the AST back to spec text (``parse(format(ast)) == ast``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from coherence.frontend import ast
from coherence.source import SourceFile, Span

_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7, "^": 8}


def _num(n: ast.Num) -> str:
    v = n.value
    if not math.isfinite(v):  # only in a module with errors (COH105): never re-parsed
        return ("-" if v < 0 else "") + "1e999" + (f" {n.unit}" if n.unit else "")
    text = repr(v) if v != int(v) or abs(v) >= 1e16 else str(int(v))
    if "e" in text or "inf" in text or "nan" in text:
        text = repr(v)
    return text + (f" {n.unit}" if n.unit else "")


def format_expr(e: ast.Expr, parent: int = 0) -> str:
    match e:
        case ast.Num():
            s = _num(e)
            return f"({s})" if e.value < 0 and parent > 0 else s
        case ast.Name(name):
            return name
        case ast.TickRef():
            return "tick"
        case ast.Neg(arg):
            return _wrap(f"-{format_expr(arg, _PREC['neg'])}", _PREC["neg"], parent)
        case ast.BinOp(op, l, r):
            p = _PREC[op]
            return _wrap(f"{format_expr(l, p)} {op} {format_expr(r, p + 1)}", p, parent)
        case ast.Pow(b, x):
            p = _PREC["^"]
            return _wrap(f"{format_expr(b, p + 1)} ^ {format_expr(x, _PREC['neg'])}", p, parent)
        case ast.Compare(op, l, r):
            p = _PREC["cmp"]
            return _wrap(f"{format_expr(l, p + 1)} {op} {format_expr(r, p + 1)}", p, parent)
        case ast.BoolOp(op, l, r):
            p = _PREC[op]
            return _wrap(f"{format_expr(l, p)} {op} {format_expr(r, p + 1)}", p, parent)
        case ast.Not(arg):
            return _wrap(f"not {format_expr(arg, _PREC['not'])}", _PREC["not"], parent)
        case ast.Call(fn, args):
            return f"{fn}({', '.join(format_expr(a) for a in args)})"
        case ast.ProfileCall(profile, fn, args):
            return f"{profile}.{fn}({', '.join(format_expr(a) for a in args)})"
        case ast.Ite(c, a, b):
            return _wrap(
                f"if {format_expr(c)} then {format_expr(a)} else {format_expr(b)}", 0, parent
            )
    raise AssertionError(e)


def _str(text: str) -> str:
    """A string literal: backslashes and quotes escaped (the parser unescapes them)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _wrap(text: str, prec: int, parent: int) -> str:
    return f"({text})" if prec < parent else text


def _range(r: ast.Range) -> str:
    return f"[{_num(r.lo)}, {_num(r.hi)}]"


def format_require(r: ast.Require) -> str:
    tail = f" inputs {r.inputs}" if r.inputs else ""
    if r.kind == "stable":
        return "require stable"
    if r.kind == "coherent":
        return "require coherent"
    if r.kind == "no_bad_equilibrium":
        return "require no bad equilibrium"
    if r.kind == "always":
        assert r.cond is not None and r.horizon is not None
        return f"require always {format_expr(r.cond)} for {_num(r.horizon)}{tail}"
    if r.kind == "response":
        assert r.cond is not None and r.trigger is not None and r.within is not None
        h = f" for {_num(r.horizon)}" if r.horizon else ""
        return (
            f"require after {format_expr(r.trigger)} then {format_expr(r.cond)} "
            f"within {_num(r.within)}{h}{tail}"
        )
    assert r.within is not None
    m = f" max {r.max_reversals:g}" if r.max_reversals is not None else ""
    h = f" for {_num(r.horizon)}" if r.horizon else ""
    return f"require no flapping of {r.state}{m} within {_num(r.within)}{h}"


def _objective(o: ast.Objective) -> str:
    name = f"{o.name} = " if o.name else ""
    tol = f" tolerance {_num(o.tolerance)}" if o.tolerance else ""
    tol += f" floor {_num(o.floor)}" if o.floor else ""
    if o.kind == "keep":
        assert o.bound is not None
        return (
            f"objective keep {name}{format_expr(o.expr, 5)} {o.cmp} {format_expr(o.bound, 5)}{tol}"
        )
    return f"objective {o.kind} {name}{format_expr(o.expr)}{tol}"


def _loop_item(i: ast.LoopItem) -> str:
    match i:
        case ast.LoopClause(kind, value):
            return f"{kind} {_num(value)}"
        case ast.Sense(expr, alias, delay, window):
            s = f"senses {format_expr(expr)}"
            s += f" as {alias}" if alias else ""
            s += f" delay {_num(delay)}" if delay else ""
            s += f" window {_num(window)}" if window else ""
            return s
        case ast.Actuate(state, mode, law):
            return f"actuates {state} {mode} {format_expr(law)}"
        case ast.LimitClause(rng):
            return f"limit {_range(rng)}"
        case ast.RateLimit(up, down):
            if up is not None and down is not None and up == down:
                return f"rate {_num(up)}"
            parts = ([f"up {_num(up)}"] if up else []) + ([f"down {_num(down)}"] if down else [])
            return "rate " + " ".join(parts)
        case ast.Stabilize(direction, window):
            d = "" if direction == "both" else f"{direction} "
            return f"stabilize {d}{_num(window)}"
        case ast.Guard(cond):
            return f"when {format_expr(cond)}"
        case ast.Timing(mode):
            return f"timing {mode}"
        case ast.Objective():
            return _objective(i)
    raise AssertionError(i)


def _ann(unit: str | None) -> str:
    return f" : {unit}" if unit else ""


def format_item(i: ast.SysItem) -> list[str]:
    match i:
        case ast.TickDecl(d):
            return [f"tick {_num(d)}"]
        case ast.UnitDecl(name, definition):
            return [f"unit {name}" + (f" = {_num(definition)}" if definition else "")]
        case ast.InputDecl(name, unit, rng, nominal, _, _, slew):
            extra = f" slew {_num(slew.amount)} per {_num(slew.per)}" if slew else ""
            return [f"input {name}{_ann(unit)} in {_range(rng)} nominal {_num(nominal)}{extra}"]
        case ast.ParamDecl(name, unit, value, rng, bind):
            r = f" in {_range(rng)}" if rng else ""
            b = ""
            if bind is not None:
                b = f" from {bind.profile}.{bind.key}"
                if bind.args is not None:
                    b += f"({', '.join(_num(a) for a in bind.args)})"
            return [f"param {name}{_ann(unit)} = {format_expr(value)}{r}{b}"]
        case ast.ProfileDecl(name, path):
            return [f"profile {name} = {_str(path)}"]
        case ast.StateDecl(name, unit, integer, rng, init, _, _, combine):
            ann = _ann(unit) if unit else (" : 1" if integer else "")
            integer_kw = " integer" if integer else ""
            rule = f" combine {combine}" if combine else ""
            return [f"state {name}{ann}{integer_kw} in {_range(rng)} init {_num(init)}{rule}"]
        case ast.LetDecl(name, unit, value):
            return [f"let {name}{_ann(unit)} = {format_expr(value)}"]
        case ast.NextDecl(name, value):
            return [f"next {name} = {format_expr(value)}"]
        case ast.ContinuousDecl(equations):
            eqs = [f"  der({q.state}) = {format_expr(q.expr)}" for q in equations]
            return ["continuous {", *eqs, "}"]
        case ast.LoopDecl(name, doc, items):
            head = f" {_str(doc)}" if doc else ""
            return [f"loop {name}{head} {{", *("  " + _loop_item(x) for x in items), "}"]
        case ast.Objective():
            return [_objective(i)]
        case ast.Require():
            return [format_require(i)]
    raise AssertionError(i)


def format_module(m: ast.Module) -> str:
    """Pretty-print a module in canonical layout."""
    out: list[str] = []
    for s in m.systems:
        d = f" {_str(s.doc)}" if s.doc else ""
        out.append(f"system {s.name}{d} {{")
        for item in s.items:
            out += ["  " + line for line in format_item(item)]
        out.append("}")
    return "\n".join(out) + "\n"


# ---- comments ------------------------------------------------------------------------------
#
# The AST has no comments, so they are read from the source text and attached to statements
# by position: a comment at the end of a line trails the statement that ends on that line; a
# comment on a line of its own leads the statement after it (or closes its block when none
# follows); a comment inside a statement that spans several lines leads that statement; a
# comment after a block's `{` trails the block's header. A blank line before a statement (or
# before its leading comments) is kept as one blank line. Inline suppressions
# (`# coherence: ignore[...]`) thus stay on, or right above, the statement they silence.


@dataclass(frozen=True, slots=True)
class Comment:
    line: int
    column: int
    text: str
    own_line: bool  # nothing but blanks before it on its line


def comments_of(text: str) -> list[Comment]:
    """Every comment of a (normalized) spec text, skipping `#` inside strings."""
    out: list[Comment] = []
    for number, line in enumerate(text.split("\n"), start=1):
        i, quoted = 0, False
        while i < len(line):
            ch = line[i]
            if quoted:
                if ch == "\\":
                    i += 1
                elif ch == '"':
                    quoted = False
            elif ch == '"':
                quoted = True
            elif ch == "#":
                out.append(Comment(number, i + 1, line[i:].rstrip(), not line[:i].strip()))
                break
            i += 1
    return out


Pos = tuple[int, int]


def _start(span: Span) -> Pos:
    return (span.line, span.column)


def _end(span: Span) -> Pos:
    return (span.end_line, span.end_column)


@dataclass(slots=True)
class _Attached:
    leading: list[Comment] = field(default_factory=list)
    trailing: list[Comment] = field(default_factory=list)


class _Layout:
    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.out: list[str] = []

    def emit_block(
        self,
        items: Sequence[Any],
        comments: list[Comment],
        indent: str,
        floor: int,
    ) -> None:
        """Lay out ``items`` (statements of one block) with the ``comments`` inside it."""
        attached = [_Attached() for _ in items]
        inner: list[list[Comment]] = [[] for _ in items]
        closing: list[Comment] = []
        for c in comments:
            pos = (c.line, c.column)
            home = next(
                (k for k, it in enumerate(items) if _start(it.span) <= pos < _end(it.span)), None
            )
            if home is not None:
                if _nested(items[home]):
                    inner[home].append(c)
                else:
                    attached[home].leading.append(c)
                continue
            ends_here = [
                k
                for k, it in enumerate(items)
                if it.span.end_line == c.line and _end(it.span) <= pos
            ]
            if not c.own_line and ends_here:
                attached[ends_here[-1]].trailing.append(c)
                continue
            after = next((k for k, it in enumerate(items) if _start(it.span) > pos), None)
            if after is None:
                closing.append(c)
            else:
                attached[after].leading.append(c)
        for k, item in enumerate(items):
            for c in sorted(attached[k].leading, key=lambda c: (c.line, c.column)):
                self.gap(c.line, floor)
                self.out.append(indent + c.text)
                floor = c.line
            self.gap(item.span.line, floor)
            trail = "".join("  " + c.text for c in attached[k].trailing)
            if _nested(item):
                self.emit_nested(item, inner[k], indent, trail)
            else:
                lines = _lines_of(item)
                self.out += [indent + line for line in lines[:-1]]
                self.out.append(indent + lines[-1] + trail)
            floor = item.span.end_line
        for c in closing:
            self.gap(c.line, floor)
            self.out.append(indent + c.text)
            floor = c.line

    def gap(self, line: int, floor: int) -> None:
        """One blank line before ``line`` if the source has one between it and ``floor``."""
        after_text = self.out and self.out[-1].strip() and not self.out[-1].endswith("{")
        if after_text and any(not self.source.line(n).strip() for n in range(floor + 1, line)):
            self.out.append("")

    def emit_nested(self, item: Any, comments: list[Comment], indent: str, trail: str) -> None:
        """A system or loop: its header, its statements with their comments, its `}`."""
        header_line = item.span.line
        doc = f" {_str(item.doc)}" if item.doc else ""
        keyword = "system" if isinstance(item, ast.System) else "loop"
        on_header = [c for c in comments if c.line == header_line and not c.own_line]
        first_item = min((_start(x.span) for x in item.items), default=_end(item.span))
        on_header = [c for c in on_header if (c.line, c.column) < first_item]
        rest = [c for c in comments if c not in on_header]
        head = f"{indent}{keyword} {item.name}{doc} {{" + "".join("  " + c.text for c in on_header)
        self.out.append(head)
        self.emit_block(item.items, rest, indent + "  ", header_line)
        self.out.append(f"{indent}}}{trail}")


def _nested(item: Any) -> bool:
    return isinstance(item, (ast.System, ast.LoopDecl))


def _lines_of(item: Any) -> list[str]:
    """The lines of a system statement, or the one line of a loop clause."""
    try:
        return format_item(item)
    except AssertionError:  # not a system statement: a clause of a loop
        return [_loop_item(item)]


def format_source(source: SourceFile, module: ast.Module) -> str:
    """``module`` (parsed from ``source``) in canonical layout, with every comment of the
    source kept next to the statement it belongs to (see the comment above)."""
    layout = _Layout(source)
    layout.emit_block(module.systems, comments_of(source.text), "", 0)
    return "\n".join(layout.out).rstrip("\n") + "\n"


def run_fmt(paths: Sequence[str], check: bool, in_place: bool, stdout: Any, stderr: Any) -> int:
    """The `fmt` command: print each spec formatted, or rewrite it (``in_place``), or report
    the files that are not formatted with a unified diff (``check``: exit 1 if any).

    Files with syntax errors are reported (exit 2) and never rewritten.
    """
    import difflib
    import os

    from coherence.compile import read_source
    from coherence.diagnostics import Diagnostic, Severity, render
    from coherence.frontend.parser import parse_source

    status = 0
    for path in paths:
        src = read_source(path)
        if isinstance(src, Diagnostic):
            stderr.write(render(src, None) + "\n")
            status = 2
            continue
        module, diags, _ = parse_source(src)
        errors = [d for d in diags if d.level == Severity.ERROR]
        if errors or not module.systems:
            for d in errors:
                stderr.write(render(d, src) + "\n\n")
            stderr.write(f"error: `{path}` has syntax errors; not formatted\n")
            status = 2
            continue
        text = format_source(src, module)
        if check:
            if text != src.text:
                diff = difflib.unified_diff(
                    src.text.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"{path} (as written)",
                    f"{path} (formatted)",
                )
                stdout.write(f"would reformat {path}\n")
                stdout.writelines(diff)
                status = max(status, 1)
        elif in_place:
            if text != src.text:
                tmp = f"{path}.{os.getpid()}.fmt-tmp"
                with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
                    fh.write(text)
                os.replace(tmp, path)
                stdout.write(f"reformatted {path}\n")
        else:
            stdout.write(text)
    return status
