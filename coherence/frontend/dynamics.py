"""Plant dynamics written in continuous time: ``lag``, ``delay`` and ``continuous`` blocks.

The checks here type the constructs and reduce them to numbers and IR expressions; lowering
(:mod:`coherence.ir.lower`) turns them into hidden states with plain updates, so every
backend reads them through the one transition system:

- ``lag(u, tau [, init])``: a first-order lag ``tau y' = u - y``, discretised exactly with
  a zero-order hold on ``u``: ``y[k+1] = a y[k] + (1 - a) u[k]``, ``a = exp(-tick / tau)``;
- ``delay(u, d [, init])``: a dead time of ``d / tick`` ticks, a shift register;
- ``continuous { der(x) = ... }``: linear state equations ``x' = A x + w``, where ``A`` is
  constant and ``w`` (everything that is not a state of a block) is held over the tick;
  lowering discretises them with the matrix exponential (:mod:`coherence.ir.continuous`).

Hidden states are named ``__lag<k>_<signal>`` and ``__delay<k>_<signal>.r<j>``: names that
begin with ``__``, which a spec cannot declare.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from coherence.frontend import ast
from coherence.frontend.types import AnyDim, Boolean, Type, tname
from coherence.frontend.units import DIMENSIONLESS, TIME, Dim
from coherence.ir import nodes as ir
from coherence.ir.evaluate import EvalError, eval_scalar
from coherence.source import Span

# a dead time is one hidden state per tick: the same bound as a sensor's delay and window
MAX_DELAY_TICKS = 3600

if TYPE_CHECKING:
    from coherence.frontend.exprs import ExprTyper
    from coherence.frontend.scope import Checker


@dataclass(frozen=True, slots=True)
class Hidden:
    """A state that ``lag`` or ``delay`` adds to the system (lowering builds it).

    lag: one state ``name`` with update ``coef * name + (1 - coef) * signal``;
    delay: ``length`` registers ``name.r1 .. name.r<length>``, the last one read.
    ``init`` is the declared initial value (canonical units) or None: the signal's value
    at the initial state with inputs at nominal (the plant at rest before tick 0).
    """

    name: str
    kind: str  # lag | delay
    signal: ir.Expr
    coef: ir.Expr | None
    length: int
    init: float | None
    unit: str
    scale: float
    span: Span

    @property
    def output(self) -> str:
        """The state an expression reads: the lag's, or the delay's last register."""
        return self.name if self.kind == "lag" else f"{self.name}.r{self.length}"


@dataclass(frozen=True, slots=True)
class Continuous:
    """The continuous-time equations of a system, ``x' = A x + w``, checked.

    ``states`` in the order of their equations; ``A`` in canonical units (1/s); ``inputs``
    the part of each right-hand side that reads no state of the block (``None`` when it is
    zero): held constant over each tick.
    """

    states: tuple[str, ...]
    A: tuple[tuple[float, ...], ...]
    inputs: tuple[ir.Expr | None, ...]
    spans: tuple[Span, ...]


def uncertain_params(ck: Checker) -> frozenset[str]:
    """Parameters whose value an analysis may vary: declared with a range or a binding."""
    return frozenset(
        d.name
        for d in ck.system.items
        if isinstance(d, ast.ParamDecl) and (d.range is not None or d.bind is not None)
    )


def _constant(ck: Checker, e: ast.Expr, want: Dim, what: str) -> tuple[ir.Expr, float] | None:
    """A number or an expression over parameters, of dimension ``want``: its IR and value."""
    from coherence.frontend.exprs import ExprTyper

    if isinstance(e, ast.Num) and e.unit is None and want == TIME:
        return ir.Const(e.value * ck.tick, e.span), e.value * ck.tick  # ticks, as elsewhere
    before = len(ck.diags)
    expr, t = ExprTyper(ck, True).visit(e)
    if len(ck.diags) > before:
        return None
    if isinstance(t, Boolean) or (isinstance(t, Dim) and t != want):
        ck.error(
            "COH207",
            f"{what} must be {tname(want)}, but this is {tname(t)}",
            e.span,
            label=f"this is {tname(t)}",
            help="write it with a unit: `30s`" if want == TIME else "",
        )
        return None
    try:
        return expr, eval_scalar(expr, ck.param_values)
    except EvalError as exc:
        ck.error("COH213", f"cannot compute {what}: {exc}", e.span)
        return None


def dynamic_call(
    typer: ExprTyper, fn: str, args: tuple[ast.Expr, ...], span: Span
) -> tuple[ir.Expr, Type]:
    """``lag(u, tau [, init])`` or ``delay(u, d [, init])``: a read of a hidden state."""
    ck = typer.ck
    if typer.only_params:
        ck.error(
            "COH215",
            f"`{fn}` has memory; a parameter's value cannot use it",
            span,
            help="use it in a `let`, a `next` update or a control law",
        )
        return ir.Const(0.0, span), DIMENSIONLESS
    signal, t = typer.visit(args[0])
    if isinstance(t, Boolean):
        ck.error("COH216", f"`{fn}` acts on a number, not a condition", args[0].span)
        return ir.Const(0.0, span), DIMENSIONLESS
    dim = DIMENSIONLESS if isinstance(t, AnyDim) else t
    what = "the time constant of `lag`" if fn == "lag" else "the dead time of `delay`"
    dur = _constant(ck, args[1], TIME, what)
    init: float | None = None
    if len(args) > 2:
        got = _constant(ck, args[2], dim, f"the initial value of `{fn}`")
        init = None if got is None else got[1]
    if dur is None:
        return ir.Const(0.0, span), dim
    dur_expr, seconds = dur
    base = args[0].name if isinstance(args[0], ast.Name) else ""
    unit, scale = _display(ck, args[0], dim)
    fixed = not (ir.names_in(dur_expr) & uncertain_params(ck))
    if fn == "lag":
        if not seconds > 0 or not math.isfinite(seconds):
            ck.error(
                "COH213",
                f"the time constant of `lag` must be a positive duration, not {seconds:g}s",
                args[1].span,
            )
            return ir.Const(0.0, span), dim
        coef: ir.Expr = (
            ir.Const(math.exp(-ck.tick / seconds))
            if fixed
            else ir.Call("exp", (ir.Unary("neg", ir.Binary("/", ir.Const(ck.tick), dur_expr)),))
        )
        return _hidden(ck, "lag", base, signal, coef, 0, init, unit, scale, span), dim
    if not fixed:
        ck.error(
            "COH213",
            "the dead time of `delay` must be fixed: it reads a parameter with a range "
            "or a binding",
            args[1].span,
            help="a dead time is a number of hidden states; give it a fixed value",
        )
        return ir.Const(0.0, span), dim
    ticks = seconds / ck.tick
    n = round(ticks)
    if abs(ticks - n) > 1e-9 * max(1.0, abs(ticks)):
        ck.error(
            "COH209",
            f"the dead time of `delay` ({seconds:g}s) is not a whole number of ticks",
            args[1].span,
            label=f"{ticks:g} ticks",
            help=f"the tick is {ck.tick:g}s; use a multiple of it",
        )
        return ir.Const(0.0, span), dim
    if n < 0:
        ck.error("COH213", "the dead time of `delay` must be non-negative", args[1].span)
        return ir.Const(0.0, span), dim
    if n > MAX_DELAY_TICKS:
        ck.error(
            "COH213",
            f"the dead time of `delay` ({n:,} ticks) is beyond the limit of "
            f"{MAX_DELAY_TICKS:,} ticks",
            args[1].span,
            notes=("each tick of a dead time is one hidden state",),
            help="use a shorter dead time or a longer tick",
        )
        return ir.Const(0.0, span), dim
    if n == 0:
        return signal, dim
    return _hidden(ck, "delay", base, signal, None, n, init, unit, scale, span), dim


def _display(ck: Checker, e: ast.Expr, dim: Dim) -> tuple[str, float]:
    if isinstance(e, ast.Name):
        sym = ck.symbols.get(e.name)
        if sym is not None and sym.dim == dim:
            return sym.unit, sym.scale
    return str(dim), 1.0


def _hidden(
    ck: Checker,
    kind: str,
    base: str,
    signal: ir.Expr,
    coef: ir.Expr | None,
    length: int,
    init: float | None,
    unit: str,
    scale: float,
    span: Span,
) -> ir.Expr:
    """The read of a hidden state; the same call twice shares one state."""
    for h in ck.hidden.values():
        if (h.kind, h.signal, h.coef, h.length, h.init) == (kind, signal, coef, length, init):
            return ir.Var(h.output, span)
    k = 1 + sum(1 for h in ck.hidden.values() if h.kind == kind)
    name = f"__{kind}{k}_{base}" if base else f"__{kind}{k}"
    h = Hidden(name, kind, signal, coef, length, init, unit, scale, span)
    ck.hidden[name] = h
    return ir.Var(h.output, span)


# ---- continuous blocks ---------------------------------------------------------------------


class _NotLinear(Exception):
    def __init__(self, node: ir.Expr, why: str) -> None:
        super().__init__(why)
        self.node = node
        self.why = why


def check_continuous(
    ck: Checker,
    blocks: list[ast.ContinuousDecl],
    nexts: Mapping[str, ir.Expr],
    lets: list[ir.Let],
) -> Continuous | None:
    """Type every ``der(x) = ...`` and split it into ``A x + w`` (COH230 when it is not)."""
    eqs: list[tuple[ast.DerEq, ir.Expr]] = []
    seen: dict[str, Span] = {}
    for block in blocks:
        for q in block.equations:
            sym = ck.symbols.get(q.state)
            e, t = ck.expr(q.expr)
            if sym is None:
                if q.state not in ck.broken:
                    ck.undefined(q.state, q.name_span, "a state")
                continue
            if sym.kind != "state":
                ck.error(
                    "COH215",
                    f"`der` gives the derivative of a state; `{q.state}` is a {sym.kind}",
                    q.name_span,
                    help="declare it with `state`",
                )
                continue
            if q.state in seen:
                ck.error(
                    "COH202",
                    f"state `{q.state}` has two `der` equations",
                    q.span,
                    notes=(f"first at {seen[q.state]}",),
                )
                continue
            seen[q.state] = q.span
            if q.state in nexts:
                ck.error(
                    "COH210",
                    f"state `{q.state}` has a `next` update and a `der` equation",
                    q.span,
                    help="a state follows one update: write either `next` or `der`",
                )
                continue
            decl = next(
                d for d in ck.system.items if isinstance(d, ast.StateDecl) and d.name == q.state
            )
            if decl.integer:
                ck.error(
                    "COH219",
                    f"integer state `{q.state}` cannot follow a continuous equation",
                    q.span,
                    help="a continuous state takes real values; round it in a `let`",
                )
                continue
            ck.expect(q.expr.span, sym.dim / TIME, t, f"`der({q.state})`")
            eqs.append((q, e))
    if not eqs:
        return None
    names = tuple(q.state for q, _ in eqs)
    index = {n: i for i, n in enumerate(names)}
    let_exprs = {d.name: d.expr for d in lets}
    uncertain = uncertain_params(ck)
    rows: list[tuple[float, ...]] = []
    inputs: list[ir.Expr | None] = []
    failed = False
    for q, e in eqs:
        try:
            coefs, rest = _affine(e, index, let_exprs, ck.param_values, uncertain)
        except _NotLinear as exc:
            ck.error(
                "COH230",
                f"`der({q.state})` is not linear in the continuous states: {exc.why}",
                exc.node.span if exc.node.span.path == q.expr.span.path else q.expr.span,
                help="write it as a sum of constant coefficients times states of the "
                "block, plus terms that read no state of the block",
            )
            failed = True
            continue
        row = [0.0] * len(names)
        for n, c in coefs.items():
            row[index[n]] = c
        rows.append(tuple(row))
        inputs.append(rest)
    if failed:
        return None
    return Continuous(names, tuple(rows), tuple(inputs), tuple(q.span for q, _ in eqs))


_Affine = tuple[dict[str, float], ir.Expr | None]


def _depends(e: ir.Expr, states: Mapping[str, int], lets: Mapping[str, ir.Expr]) -> bool:
    for n in ir.names_in(e):
        if n in states:
            return True
        if n in lets and _depends(lets[n], states, lets):
            return True
    return False


def _affine(
    e: ir.Expr,
    states: Mapping[str, int],
    lets: Mapping[str, ir.Expr],
    params: Mapping[str, float],
    uncertain: frozenset[str],
) -> _Affine:
    """``e`` as (coefficient of each block state, the rest); raises :class:`_NotLinear`."""
    if not _depends(e, states, lets):
        return {}, (None if isinstance(e, ir.Const) and e.value == 0 else e)
    match e:
        case ir.Var(name) if name in states:
            return {name: 1.0}, None
        case ir.Var(name):  # a let that reads a state of the block: its definition
            return _affine(lets[name], states, lets, params, uncertain)
        case ir.Unary("neg", a):
            c, r = _affine(a, states, lets, params, uncertain)
            return {k: -v for k, v in c.items()}, None if r is None else ir.Unary("neg", r)
        case ir.Binary("+" | "-" as op, a, b):
            ca, ra = _affine(a, states, lets, params, uncertain)
            cb, rb = _affine(b, states, lets, params, uncertain)
            sign = 1.0 if op == "+" else -1.0
            out = dict(ca)
            for k, v in cb.items():
                out[k] = out.get(k, 0.0) + sign * v
            if rb is None:
                rest = ra
            elif ra is None:
                rest = rb if op == "+" else ir.Unary("neg", rb)
            else:
                rest = ir.Binary(op, ra, rb)
            return out, rest
        case ir.Binary("*", a, b):
            for lin, const in ((a, b), (b, a)):
                if not _depends(const, states, lets):
                    f = _coefficient(const, params, uncertain)
                    c, r = _affine(lin, states, lets, params, uncertain)
                    rest = None if r is None else ir.Binary("*", r, ir.Const(f))
                    return {n: f * v for n, v in c.items()}, rest
            raise _NotLinear(e, "a product of two terms that both read states of the block")
        case ir.Binary("/", a, b) if not _depends(b, states, lets):
            f = _coefficient(b, params, uncertain)
            if f == 0:
                raise _NotLinear(b, "a division by zero")
            c, r = _affine(a, states, lets, params, uncertain)
            rest = None if r is None else ir.Binary("/", r, ir.Const(f))
            return {n: v / f for n, v in c.items()}, rest
    raise _NotLinear(e, "a state of the block is divided by, or inside a function or condition")


def _coefficient(e: ir.Expr, params: Mapping[str, float], uncertain: frozenset[str]) -> float:
    """The value of a coefficient: numbers and parameters with a fixed value only."""
    names = ir.names_in(e)
    if names - set(params):
        raise _NotLinear(e, "a coefficient reads a value that changes (an input, a let or a state)")
    if names & uncertain:
        raise _NotLinear(
            e,
            "a coefficient reads a parameter with a range or a binding "
            f"(`{sorted(names & uncertain)[0]}`); the discretisation needs fixed values",
        )
    try:
        return eval_scalar(e, params)
    except EvalError as exc:
        raise _NotLinear(e, str(exc)) from None
