"""Parsing: spec text to AST, with located syntax diagnostics and error recovery.

The grammar (``coherence.lark``, also at ``dsl/coherence.lark``) is compiled once per process
with Lark's LALR parser and contextual lexer (never loaded from a cache on disk: Lark's
caches are pickles). On a syntax error the
offending statement is blanked out (positions preserved) and the file is parsed again, so one run reports every
syntax error that recovery can reach.
"""

from __future__ import annotations

import difflib
import math
import re
from contextvars import ContextVar
from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from coherence.diagnostics import Diagnostic
from coherence.frontend import ast
from coherence.frontend.limits import MAX_EXPR_DEPTH
from coherence.source import SourceFile, Span

MAX_SYNTAX_ERRORS = 20

STATEMENT_KEYWORDS = (
    "system",
    "tick",
    "unit",
    "profile",
    "input",
    "param",
    "state",
    "let",
    "next",
    "loop",
    "objective",
    "require",
    "every",
    "phase",
    "senses",
    "actuates",
    "limit",
    "rate",
    "deadband",
    "cooldown",
    "stabilize",
    "when",
    "continuous",
    "der",
    "timing",
)
KEYWORDS = (
    *STATEMENT_KEYWORDS,
    "tolerance",
    "in",
    "init",
    "nominal",
    "integer",
    "to",
    "by",
    "as",
    "delay",
    "window",
    "minimize",
    "maximize",
    "keep",
    "stable",
    "coherent",
    "always",
    "for",
    "after",
    "then",
    "within",
    "no",
    "flapping",
    "of",
    "max",
    "bad",
    "equilibrium",
    "inputs",
    "held",
    "free",
    "if",
    "else",
    "and",
    "or",
    "not",
    "up",
    "down",
    "ticks",
    "from",
    "slew",
    "per",
    "combine",
    "immediate",
    "delayed",
)

_FRIENDLY = {
    "NAME": "a name",
    "NUMBER": "a number",
    "UNIT": "a unit",
    "STRING": "a string",
    "CMP": "a comparison (<, <=, >, >=, ==, !=)",
    "ADD_OP": "`+` or `-`",
    "MUL_OP": "`*` or `/`",
    "MINUS": "`-`",
    "ACT_MODE": "`to` or `by`",
    "OBJ_DIR": "`minimize` or `maximize`",
    "RATE_DIR": "`up` or `down`",
    "STAB_DIR": "`up` or `down`",
    "INPUT_MODE": "`held` or `free`",
    "COMBINE_RULE": "`sum`, `last`, `max` or `min`",
    "TIMING_MODE": "`immediate` or `delayed`",
    "INTEGER": "`integer`",
    "TICKS": "`ticks`",
    "ONE": "`1`",
    "$END": "the end of the file",
}


_REGEX_WORDS: dict[str, tuple[str, ...]] = {
    "ACT_MODE": ("to", "by"),
    "OBJ_DIR": ("minimize", "maximize"),
    "RATE_DIR": ("up", "down"),
    "STAB_DIR": ("up", "down"),
    "INPUT_MODE": ("held", "free"),
    "COMBINE_RULE": ("sum", "last", "max", "min"),
    "TIMING_MODE": ("immediate", "delayed"),
    "INTEGER": ("integer",),
    "TICKS": ("ticks",),
}


@lru_cache(maxsize=1)
def grammar_text() -> str:
    return resources.files("coherence.frontend").joinpath("coherence.lark").read_text("utf-8")


class _KeywordPrefix(Exception):
    """A keyword matched only the start of a longer word (``too`` lexed as ``to``)."""

    def __init__(self, token: Token, word: str) -> None:
        super().__init__(word)
        self.token = token
        self.word = word


_current_text: ContextVar[str] = ContextVar("_current_text", default="")
_WORD = re.compile(r"[A-Za-z_0-9]+")


def _keyword_boundary(tok: Token) -> Token:
    text = _current_text.get()
    end = tok.end_pos
    if end is not None and end < len(text) and (text[end].isalnum() or text[end] == "_"):
        m = _WORD.match(text, tok.start_pos or 0)
        raise _KeywordPrefix(tok, m.group() if m else str(tok))
    return tok


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The LALR parser, built once per process (about 0.08 s for each of the two builds). It
    is never loaded from a cache directory: Lark keeps its tables as pickles, and a directory
    others may write (a CI cache restored from another job) must never run code."""
    probe = Lark(grammar_text(), parser="lalr", lexer="contextual")
    keyword_terms = [
        t.name
        for t in probe.terminals
        if t.pattern.type == "str" and str(t.pattern.value).isalpha()
    ]
    return Lark(
        grammar_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        lexer_callbacks={name: _keyword_boundary for name in keyword_terms},
    )


def _sp(path: str, meta: Any) -> Span:
    if getattr(meta, "empty", True):
        return Span.unknown(path)
    return Span(path, meta.line, meta.column, meta.end_line, meta.end_column)


def _tsp(path: str, tok: Token) -> Span:
    line = tok.line or 1
    col = tok.column or 1
    end_line = tok.end_line or line
    end_col = tok.end_column or col + len(str(tok))
    return Span(path, line, col, end_line, end_col)


def _number(text: str) -> float:
    return float(text)


class _ToAst(Transformer[Token, Any]):
    """Lark tree to AST. Every node gets the span of the text it came from."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.errors: list[Diagnostic] = []

    def sp(self, meta: Any) -> Span:
        return _sp(self.path, meta)

    # -- top level
    def start(self, items: list[ast.System]) -> tuple[ast.System, ...]:
        return tuple(items)

    @v_args(meta=True)
    def system(self, meta: Any, items: list[Any]) -> ast.System:
        name, doc, *body = items
        return ast.System(
            str(name), _unquote(doc), tuple(body), self.sp(meta), _tsp(self.path, name)
        )

    @v_args(meta=True)
    def tick_decl(self, meta: Any, items: list[Any]) -> ast.TickDecl:
        return ast.TickDecl(items[0], self.sp(meta))

    @v_args(meta=True)
    def unit_decl(self, meta: Any, items: list[Any]) -> ast.UnitDecl:
        name, definition = items
        return ast.UnitDecl(str(name), definition, self.sp(meta), _tsp(self.path, name))

    @v_args(meta=True)
    def input_decl(self, meta: Any, items: list[Any]) -> ast.InputDecl:
        name, unit, rng, nominal, slew = items
        return ast.InputDecl(
            str(name), unit, rng, nominal, self.sp(meta), _tsp(self.path, name), slew
        )

    @v_args(meta=True)
    def slew(self, meta: Any, items: list[Any]) -> ast.Slew:
        amount, per = items
        return ast.Slew(amount, per, self.sp(meta))

    @v_args(meta=True)
    def param_decl(self, meta: Any, items: list[Any]) -> ast.ParamDecl:
        name, unit, value, rng, bind = items
        return ast.ParamDecl(
            str(name), unit, value, rng, bind, self.sp(meta), _tsp(self.path, name)
        )

    @v_args(meta=True)
    def bind(self, meta: Any, items: list[Any]) -> ast.Bind:
        profile, key, *args = items
        values: tuple[ast.Num, ...] | None = None
        if args:
            values = tuple(a for a in args if a is not None)
        return ast.Bind(str(profile), str(key), values, self.sp(meta))

    @v_args(meta=True)
    def profile_decl(self, meta: Any, items: list[Any]) -> ast.ProfileDecl:
        name, path = items
        return ast.ProfileDecl(
            str(name), _unquote(path) or "", self.sp(meta), _tsp(self.path, name)
        )

    @v_args(meta=True)
    def profile_call(self, meta: Any, items: list[Any]) -> ast.ProfileCall:
        profile, fn, *args = items
        real = tuple(a for a in args if a is not None)
        return ast.ProfileCall(str(profile), str(fn), real, self.sp(meta))

    @v_args(meta=True)
    def state_decl(self, meta: Any, items: list[Any]) -> ast.StateDecl:
        name, unit, integer, rng, init, combine = items
        return ast.StateDecl(
            str(name),
            unit,
            integer is not None,
            rng,
            init,
            self.sp(meta),
            _tsp(self.path, name),
            combine,
        )

    def combine(self, items: list[Token]) -> str:
        return str(items[0])

    @v_args(meta=True)
    def continuous_decl(self, meta: Any, items: list[Any]) -> ast.ContinuousDecl:
        return ast.ContinuousDecl(tuple(items), self.sp(meta))

    @v_args(meta=True)
    def der_eq(self, meta: Any, items: list[Any]) -> ast.DerEq:
        name, value = items
        return ast.DerEq(str(name), value, self.sp(meta), _tsp(self.path, name))

    @v_args(meta=True)
    def let_decl(self, meta: Any, items: list[Any]) -> ast.LetDecl:
        name, unit, value = items
        return ast.LetDecl(str(name), unit, value, self.sp(meta), _tsp(self.path, name))

    @v_args(meta=True)
    def next_decl(self, meta: Any, items: list[Any]) -> ast.NextDecl:
        name, value = items
        return ast.NextDecl(str(name), value, self.sp(meta), _tsp(self.path, name))

    def type_ann(self, items: list[Any]) -> str:
        return str(items[0])

    def unit_spec(self, items: list[Token]) -> str:
        return str(items[0])

    @v_args(meta=True)
    def range(self, meta: Any, items: list[ast.Num]) -> ast.Range:
        return ast.Range(items[0], items[1], self.sp(meta))

    @v_args(meta=True)
    def signed_qty(self, meta: Any, items: list[Any]) -> ast.Num:
        minus, q = items
        if minus is not None:
            return ast.Num(-q.value, q.unit, self.sp(meta))
        return ast.Num(q.value, q.unit, self.sp(meta))

    @v_args(meta=True)
    def quantity(self, meta: Any, items: list[Any]) -> ast.Num:
        num, unit = items
        # a literal beyond the largest double stays infinite in the AST (the checks leave
        # it alone, it is reported here) and the file is never lowered
        value = _number(str(num))
        if not math.isfinite(value):
            self.errors.append(_too_large(_tsp(self.path, num), str(num)))
        return ast.Num(value, None if unit is None else str(unit), self.sp(meta))

    def _count(self, tok: Token) -> float | None:
        value = _number(str(tok))
        if not math.isfinite(value):
            self.errors.append(_too_large(_tsp(self.path, tok), str(tok)))
            return None
        return value

    # -- loops
    @v_args(meta=True)
    def loop_decl(self, meta: Any, items: list[Any]) -> ast.LoopDecl:
        name, doc, *body = items
        return ast.LoopDecl(
            str(name), _unquote(doc), tuple(body), self.sp(meta), _tsp(self.path, name)
        )

    @v_args(meta=True)
    def every(self, meta: Any, items: list[Any]) -> ast.LoopClause:
        return ast.LoopClause("every", items[0], self.sp(meta))

    @v_args(meta=True)
    def phase(self, meta: Any, items: list[Any]) -> ast.LoopClause:
        return ast.LoopClause("phase", items[0], self.sp(meta))

    @v_args(meta=True)
    def deadband(self, meta: Any, items: list[Any]) -> ast.LoopClause:
        return ast.LoopClause("deadband", items[0], self.sp(meta))

    @v_args(meta=True)
    def loop_tolerance(self, meta: Any, items: list[Any]) -> ast.LoopClause:
        return ast.LoopClause("tolerance", items[0], self.sp(meta))

    @v_args(meta=True)
    def cooldown(self, meta: Any, items: list[Any]) -> ast.LoopClause:
        return ast.LoopClause("cooldown", items[0], self.sp(meta))

    @v_args(meta=True)
    def senses(self, meta: Any, items: list[Any]) -> ast.Sense:
        expr, alias, *opts = items
        delay = window = None
        for kind, value in opts:
            if kind == "delay":
                delay = value
            else:
                window = value
        return ast.Sense(expr, None if alias is None else str(alias), delay, window, self.sp(meta))

    def sense_delay(self, items: list[Any]) -> tuple[str, ast.Num]:
        return ("delay", items[0])

    def sense_window(self, items: list[Any]) -> tuple[str, ast.Num]:
        return ("window", items[0])

    @v_args(meta=True)
    def actuates(self, meta: Any, items: list[Any]) -> ast.Actuate:
        name, mode, law = items
        return ast.Actuate(str(name), str(mode), law, self.sp(meta), _tsp(self.path, name))

    @v_args(meta=True)
    def limit(self, meta: Any, items: list[Any]) -> ast.LimitClause:
        return ast.LimitClause(items[0], self.sp(meta))

    @v_args(meta=True)
    def rate(self, meta: Any, items: list[Any]) -> ast.RateLimit:
        up = down = None
        for direction, value in items:
            if direction in (None, "up"):
                up = value
            if direction in (None, "down"):
                down = value
        return ast.RateLimit(up, down, self.sp(meta))

    def rate_side(self, items: list[Any]) -> tuple[str | None, ast.Num]:
        direction, value = items
        return (None if direction is None else str(direction), value)

    @v_args(meta=True)
    def stabilize(self, meta: Any, items: list[Any]) -> ast.Stabilize:
        direction, window = items
        return ast.Stabilize("both" if direction is None else str(direction), window, self.sp(meta))

    @v_args(meta=True)
    def guard(self, meta: Any, items: list[Any]) -> ast.Guard:
        return ast.Guard(items[0], self.sp(meta))

    @v_args(meta=True)
    def timing(self, meta: Any, items: list[Any]) -> ast.Timing:
        return ast.Timing(str(items[0]), self.sp(meta))

    # -- objectives and requirements
    @v_args(meta=True)
    def objective(self, meta: Any, items: list[Any]) -> ast.Objective:
        body, tol, floor = items
        kind, name, expr, cmp, bound = body
        return ast.Objective(kind, name, expr, cmp, bound, tol, self.sp(meta), floor)

    def obj_optimize(self, items: list[Any]) -> tuple[Any, ...]:
        direction, name, expr = items
        return (str(direction), None if name is None else str(name), expr, None, None)

    def obj_keep(self, items: list[Any]) -> tuple[Any, ...]:
        name, left, cmp, right = items
        return ("keep", None if name is None else str(name), left, str(cmp), right)

    @v_args(meta=True)
    def require(self, meta: Any, items: list[Any]) -> ast.Require:
        kind, fields = items[0]
        return ast.Require(kind, span=self.sp(meta), **fields)

    def req_stable(self, items: list[Any]) -> tuple[str, dict[str, Any]]:
        return ("stable", {})

    def req_coherent(self, items: list[Any]) -> tuple[str, dict[str, Any]]:
        return ("coherent", {})

    def req_no_bad_eq(self, items: list[Any]) -> tuple[str, dict[str, Any]]:
        return ("no_bad_equilibrium", {})

    def req_always(self, items: list[Any]) -> tuple[str, dict[str, Any]]:
        cond, horizon, mode = items
        return ("always", {"cond": cond, "horizon": horizon, "inputs": mode})

    def req_response(self, items: list[Any]) -> tuple[str, dict[str, Any]]:
        trigger, cond, within, horizon, mode = items
        return (
            "response",
            {
                "trigger": trigger,
                "cond": cond,
                "within": within,
                "horizon": horizon,
                "inputs": mode,
            },
        )

    def req_flapping(self, items: list[Any]) -> tuple[str, dict[str, Any]]:
        name, count, within, horizon = items
        return (
            "flapping",
            {
                "state": str(name),
                "max_reversals": None if count is None else self._count(count),
                "within": within,
                "horizon": horizon,
            },
        )

    def input_mode(self, items: list[Token]) -> str:
        return str(items[0])

    # -- expressions
    @v_args(meta=True)
    def ite(self, meta: Any, items: list[Any]) -> ast.Ite:
        return ast.Ite(items[0], items[1], items[2], self.sp(meta))

    @v_args(meta=True)
    def or_(self, meta: Any, items: list[Any]) -> ast.BoolOp:
        return ast.BoolOp("or", items[0], items[1], self.sp(meta))

    @v_args(meta=True)
    def and_(self, meta: Any, items: list[Any]) -> ast.BoolOp:
        return ast.BoolOp("and", items[0], items[1], self.sp(meta))

    @v_args(meta=True)
    def not_(self, meta: Any, items: list[Any]) -> ast.Not:
        return ast.Not(items[0], self.sp(meta))

    @v_args(meta=True)
    def compare(self, meta: Any, items: list[Any]) -> ast.Compare:
        return ast.Compare(str(items[1]), items[0], items[2], self.sp(meta))

    @v_args(meta=True)
    def binop(self, meta: Any, items: list[Any]) -> ast.BinOp:
        return ast.BinOp(str(items[1]), items[0], items[2], self.sp(meta))

    @v_args(meta=True)
    def neg(self, meta: Any, items: list[Any]) -> ast.Expr:
        arg = items[1]
        if isinstance(arg, ast.Num):
            return ast.Num(-arg.value, arg.unit, self.sp(meta))
        return ast.Neg(arg, self.sp(meta))

    @v_args(meta=True)
    def pow_(self, meta: Any, items: list[Any]) -> ast.Pow:
        return ast.Pow(items[0], items[1], self.sp(meta))

    @v_args(meta=True)
    def var(self, meta: Any, items: list[Token]) -> ast.Name:
        return ast.Name(str(items[0]), self.sp(meta))

    @v_args(meta=True)
    def tick_ref(self, meta: Any, items: list[Any]) -> ast.TickRef:
        return ast.TickRef(self.sp(meta))

    @v_args(meta=True)
    def call(self, meta: Any, items: list[Any]) -> ast.Call:
        name, *args = items
        real = tuple(a for a in args if a is not None)
        return ast.Call(str(name), real, self.sp(meta), _tsp(self.path, name))


def _too_large(span: Span, text: str) -> Diagnostic:
    return Diagnostic(
        "COH105",
        f"the number `{text}` is too large",
        span,
        label="beyond the largest number (about 1.8e308)",
        help="write a finite number; quantities are double-precision floating point",
    )


# expression rules of the grammar: each adds one level of nesting
_EXPR_RULES = frozenset(
    {"ite", "or_", "and_", "not_", "compare", "binop", "neg", "pow_", "call", "profile_call"}
)


def _too_deep(tree: Tree[Token], path: str) -> Diagnostic | None:
    """A COH104 diagnostic at the first expression nested more than MAX_EXPR_DEPTH levels
    deep (walked without recursion, so any depth is measured), or None."""
    stack: list[tuple[Tree[Token] | Token, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, Tree):
            continue
        if node.data in _EXPR_RULES:
            depth += 1
            if depth > MAX_EXPR_DEPTH:
                return Diagnostic(
                    "COH104",
                    "expression nested too deeply",
                    _sp(path, node.meta),
                    label=f"more than {MAX_EXPR_DEPTH} levels of nesting here",
                    notes=(f"the limit is {MAX_EXPR_DEPTH} levels of operators, calls and `if`",),
                    help="split the expression into `let` definitions",
                )
        stack.extend((c, depth) for c in reversed(node.children))
    return None


def _unquote(tok: Any) -> str | None:
    if tok is None:
        return None
    text = str(tok)[1:-1]
    return re.sub(r"\\(.)", r"\1", text)


# ---- error reporting -----------------------------------------------------------------------


def _describe_expected(expected: set[str]) -> str:
    parser = _parser()
    names: set[str] = set()
    for term in expected:
        if term in _FRIENDLY:
            names.add(_FRIENDLY[term])
            continue
        try:
            pattern = parser.get_terminal(term).pattern
        except KeyError:
            names.add(term)
            continue
        if pattern.type == "str":
            names.add(f"`{pattern.value}`")
        else:
            names.add(term.lower())
    ordered = sorted(names)
    if len(ordered) > 8 and ("ADD_OP" in expected or "MUL_OP" in expected):
        return "an operator or the start of the next statement"
    if len(ordered) > 8:
        return ", ".join(ordered[:8]) + f" or {len(ordered) - 8} more"
    if len(ordered) == 1:
        return ordered[0]
    return ", ".join(ordered[:-1]) + " or " + ordered[-1]


def _token_text(tok: Token) -> str:
    if tok.type == "$END":
        return "the end of the file"
    return f"`{tok}`"


def _syntax_diagnostic(err: UnexpectedInput, source: SourceFile) -> Diagnostic:
    path = source.path
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream or 0
        ch = source.text[pos] if pos < len(source.text) else "?"
        span = source.span_at(err.line, err.column)
        help_ = "strings are written in double quotes" if ch in "'`" else ""
        return Diagnostic(
            "COH102",
            f"unexpected character `{ch}`",
            span,
            label="no token starts here",
            notes=(f"expected {_describe_expected(set(err.allowed or ()))}",)
            if err.allowed
            else (),
            help=help_ or "remove the character or see docs/language.md for the syntax",
        )
    if isinstance(err, UnexpectedEOF) or (
        isinstance(err, UnexpectedToken) and err.token.type == "$END"
    ):
        last = max(source.line_count, 1)
        span = source.span_at(last, len(source.line(last)) + 1)
        expected = set(getattr(err, "expected", ()) or ())
        return Diagnostic(
            "COH103",
            "unexpected end of file",
            span,
            label="the file ends here",
            notes=(f"expected {_describe_expected(expected)}",) if expected else (),
            help="close every `{` with `}`" if "RBRACE" in expected else "",
        )
    assert isinstance(err, UnexpectedToken)
    tok = err.token
    span = _tsp(path, tok)
    expected = set(err.expected or ())
    help_ = _hint_for(tok, expected)
    if str(tok) == "tolerance" and _AFTER_FLOOR.search(source.text, 0, tok.start_pos or 0):
        help_ = "an objective's `tolerance` comes before its `floor`: `tolerance 5% floor 50ms`"
    return Diagnostic(
        "COH101",
        f"unexpected {_token_text(tok)}",
        span,
        label=f"expected {_describe_expected(expected)}",
        help=help_,
    )


# `floor QUANTITY` right before the offending token (an objective written `floor .. tolerance ..`)
_AFTER_FLOOR = re.compile(r"\bfloor\s+[0-9.][0-9.eE+-]*\s*(?:[$%A-Za-z_][^\s]*\s*)?$")


def _hint_for(tok: Token, expected: set[str]) -> str:
    text = str(tok)
    if text in STATEMENT_KEYWORDS and ("NAME" in expected or "NUMBER" in expected):
        return "the statement before this one is incomplete"
    words = [_parser().get_terminal(t).pattern.value for t in expected if _is_str_terminal(t)]
    for t in expected:
        words += _REGEX_WORDS.get(t, ())
    close = difflib.get_close_matches(text, [w for w in words if w.isalpha()], n=1)
    if close:
        return f"did you mean `{close[0]}`?"
    if tok.type in {"NAME", "UNIT"} and text in KEYWORDS:
        return f"`{text}` is a keyword and cannot be used as a name"
    if "RBRACE" in expected and tok.type in {"NAME", "UNIT"}:
        close = difflib.get_close_matches(text, STATEMENT_KEYWORDS, n=1)
        if close:
            return f"statements start with a keyword; did you mean `{close[0]}`?"
        return "every statement starts with a keyword (let, state, loop, require, ...)"
    if "RSQB" in expected:
        return "a range is written `[lo, hi]`"
    if text == "=" and "CMP" in expected:
        return "comparison for equality is written `==`"
    return "see docs/language.md for the syntax of this statement"


def _is_str_terminal(name: str) -> bool:
    try:
        return bool(_parser().get_terminal(name).pattern.type == "str")
    except KeyError:
        return False


_STMT_RE = re.compile(r"\b(" + "|".join(STATEMENT_KEYWORDS) + r")\b")
_COMMENT_RE = re.compile(r"#[^\n]*")


def _blank_statement(text: str, offset: int) -> tuple[str, str | None]:
    """Blank the statement around ``offset``; return new text and the name it declared."""
    scrubbed = _COMMENT_RE.sub(lambda m: " " * len(m.group()), text)
    starts = [m.start() for m in _STMT_RE.finditer(scrubbed)]
    if offset in starts:
        # the error is at a statement keyword: the statement before it is incomplete
        before = [s for s in starts if s < offset]
        start = before[-1] if before else offset
        end = offset
        if start == end:
            end = min(len(text), offset + 1)
    else:
        before = [s for s in starts if s <= offset]
        after = [s for s in starts if s > offset]
        start = before[-1] if before else offset
        end = after[0] if after else len(text)
    # a closing brace between the error and the next statement ends the blanked region
    brace = scrubbed.find("}", offset, end)
    if brace != -1 and brace > offset:
        end = brace
    declared = None
    m = re.match(r"(let|state|input|param|loop|unit)\s+([A-Za-z_][A-Za-z_0-9]*)", scrubbed[start:])
    if m:
        declared = m.group(2)
    region = text[start:end]
    blank = "".join(c if c in "\n{}" else " " for c in region)
    if start < offset and region.count("{") != region.count("}"):
        # keep the braces of a half-blanked block balanced by blanking braces too
        blank = "".join("\n" if c == "\n" else " " for c in region)
    if end == start:
        end = min(len(text), offset + 1)
        blank = "".join("\n" if c == "\n" else " " for c in text[start:end])
    return text[:start] + blank + text[end:], declared


def parse_source(source: SourceFile) -> tuple[ast.Module, tuple[Diagnostic, ...], frozenset[str]]:
    """Parse a spec; returns the module, syntax diagnostics, and names of blanked declarations.

    >>> from coherence.source import SourceFile
    >>> mod, diags, _ = parse_source(SourceFile("a.coh", "system s { tick 1s }"))
    >>> mod.systems[0].name, diags
    ('s', ())
    """
    text = source.text
    diags: list[Diagnostic] = []
    broken: set[str] = set()
    seen_offsets: set[int] = set()
    while True:
        try:
            _current_text.set(text)
            tree = _parser().parse(text)
            deep = _too_deep(tree, source.path)
            if deep is not None:
                diags.append(deep)
                return ast.Module(source.path, ()), tuple(diags), frozenset(broken)
            to_ast = _ToAst(source.path)
            systems = to_ast.transform(tree)
            diags += to_ast.errors
            return ast.Module(source.path, systems), tuple(diags), frozenset(broken)
        except (UnexpectedInput, _KeywordPrefix) as err:
            if isinstance(err, _KeywordPrefix):
                tok = err.token
                start = tok.start_pos or 0
                diags.append(
                    Diagnostic(
                        "COH101",
                        f"unexpected `{err.word}`",
                        source.offset_to_span(start, start + len(err.word)),
                        label="not a keyword here",
                        help=f"did you mean `{tok}`?",
                    )
                )
                offset = start
                if offset in seen_offsets or len(diags) >= MAX_SYNTAX_ERRORS:
                    return ast.Module(source.path, ()), tuple(diags), frozenset(broken)
                seen_offsets.add(offset)
                text, declared = _blank_statement(text, offset)
                if declared:
                    broken.add(declared)
                continue
            offset = _offset_of(err, text)
            if offset in seen_offsets:
                return ast.Module(source.path, ()), tuple(diags), frozenset(broken)
            diags.append(_syntax_diagnostic(err, source))
            if (
                len(diags) >= MAX_SYNTAX_ERRORS
                or offset in seen_offsets
                or isinstance(err, UnexpectedEOF)
                or (isinstance(err, UnexpectedToken) and err.token.type == "$END")
            ):
                return ast.Module(source.path, ()), tuple(diags), frozenset(broken)
            seen_offsets.add(offset)
            text, declared = _blank_statement(text, offset)
            if declared:
                broken.add(declared)
        except (RecursionError, VisitError) as err:
            # the depth check above keeps the transformer shallow; this is the last guard
            if isinstance(err, VisitError) and not isinstance(err.orig_exc, RecursionError):
                raise
            diags.append(
                Diagnostic(
                    "COH104",
                    "expression nested too deeply",
                    source.span_at(1, 1),
                    notes=(f"the limit is {MAX_EXPR_DEPTH} levels of operators, calls and `if`",),
                    help="split the expression into `let` definitions",
                )
            )
            return ast.Module(source.path, ()), tuple(diags), frozenset(broken)


def _offset_of(err: UnexpectedInput, text: str) -> int:
    if isinstance(err, UnexpectedToken) and err.token.start_pos is not None:
        return int(err.token.start_pos)
    pos = getattr(err, "pos_in_stream", None)
    if isinstance(pos, int):
        return pos
    return len(text)
