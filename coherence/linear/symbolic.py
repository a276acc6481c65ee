"""Symbolic derivatives of templates: IR -> SymPy, structurally, then NumPy functions.

Each template (:mod:`coherence.linear.program`) is converted node by node to a SymPy
expression (never through text), differentiated with respect to the placeholders that stand
for states and lets, and compiled once with ``sympy.lambdify`` into one NumPy function that
returns every partial derivative, vectorised over the template's instances. The cache is per
template, so a thousand loops of one shape cost one conversion.

The nonlinear pieces are resolved to the branch active at the operating point *before*
differentiating: every ``min``/``max``/``abs``/``if-then-else`` (and a condition used as a
number) in numeric position becomes a *selector* symbol, and the SymPy expression picks its
branch by the selector (``Piecewise((a, Eq(s, 0)), (b, True))``) or multiplies by it (``abs``
is ``s * x`` with ``s = sign``). Selectors are constants to the differentiation: their values
are computed numerically at the operating point by the reference evaluator (the first
minimal argument wins a tie, ``abs`` has slope +1 at 0). Comparisons and boolean connectives
have zero derivative; the quantizers ``round``/``floor``/``ceil`` have unit derivative (a
quantizer with unit gain).

A *switching site* is where a small move of the operating point could switch a branch: a
``min``/``max``/``abs`` in numeric position and every comparison. Their argument values come
back with the selectors, so that :mod:`coherence.linear.linearize` can tell whether the
operating point sits on one (COH307).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import Binary, Call, Expr, Ite, Unary, Var, sum_terms
from coherence.linear.program import Template
from coherence.simulate.engine import Env, Fn

_CMP = ("<", "<=", ">", ">=", "==", "!=")
_FLAT_SUM = 8  # chains of at least this many terms convert in one step


@dataclass(frozen=True, slots=True)
class Node:
    """A node of interest in a template.

    ``kind``: min, max, abs, ite, bool (a condition in numeric position; these are
    selectors) or cmp (a comparison: a switching site only). ``path`` gives the child indices
    from the root. ``args`` evaluate the node's arguments (min/max/abs), its condition
    (ite/bool) or its two operands (cmp) with the reference semantics.
    """

    kind: str
    op: str
    path: tuple[int, ...]
    args: tuple[Fn, ...]
    selector: bool
    ranks: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Derivatives:
    """The compiled derivatives of one template.

    ``fn(*placeholders, *selectors)`` returns the partial derivative with respect to each
    variable placeholder listed in ``wrt`` (positions in :attr:`Template.var_names`).
    """

    template: Template
    wrt: tuple[int, ...]
    nodes: tuple[Node, ...]
    fn: Callable[..., list[Any]]

    @property
    def selectors(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.selector)

    def evaluate(
        self, env: Env, count: int
    ) -> tuple[list[NDArray[Any]], list[tuple[Node, list[NDArray[np.float64]]]]]:
        """Derivatives (one array of ``count`` per ``wrt``) and the evaluated nodes."""
        evaluated: list[tuple[Node, list[NDArray[np.float64]]]] = []
        selectors: list[NDArray[Any]] = []
        with np.errstate(all="ignore"):
            for node in self.nodes:
                vals = [_row(f(env), count) for f in node.args]
                evaluated.append((node, vals))
                if node.selector:
                    selectors.append(_selector(node, vals))
            if not self.wrt:
                return [], evaluated
            args = [env[n] for n in self.template.placeholders]
            out = self.fn(*args, *selectors)
        return [_row(v, count) for v in out], evaluated


def _row(v: object, count: int) -> NDArray[np.float64]:
    a = np.asarray(v, dtype=float)
    if a.ndim == 2:  # [1, count] from a single scenario
        a = a[0]
    return np.broadcast_to(a, (count,))


TIE = 1e-9


def _selector(node: Node, vals: list[NDArray[np.float64]]) -> NDArray[Any]:
    """The active branch of a selector node for every instance.

    min/max: among the arguments within a relative 1e-9 of the extreme (a tie), the one that
    acts: an expression or a let before a bare state before a constant, then the first. So a
    clamp whose argument sits exactly on its limit, or a stabilization window at rest, is
    linearized on the branch through which the loop's law acts (conservative); the tie is a
    switching site and COH307 says so.
    """
    kind = node.kind
    if kind in ("min", "max"):
        v = np.stack(vals)
        ext = np.min(v, axis=0) if kind == "min" else np.max(v, axis=0)
        tied = np.abs(v - ext) <= TIE * np.abs(ext) + 1e-12
        ranks = np.asarray(node.ranks, dtype=float)[:, None] * 1e3 + np.arange(len(vals))[:, None]
        score = np.where(tied, ranks, np.inf)
        pick = np.argmin(score, axis=0)
        fallback = np.argmin(v, axis=0) if kind == "min" else np.argmax(v, axis=0)
        out = np.where(np.all(np.isinf(score), axis=0), fallback, pick)
        return np.asarray(out, dtype=float)
    if kind == "abs":
        return np.asarray(np.where(vals[0] >= 0, 1.0, -1.0), dtype=float)
    return np.asarray(vals[0] != 0, dtype=float)  # ite, bool


def _rank(e: Expr) -> int:
    if isinstance(e, Var):
        if e.name.startswith("c"):
            return 2
        if e.name.endswith("s"):
            return 1
    return 0


@functools.cache
def _sympy() -> Any:
    """SymPy, imported on first use (it is slow to import)."""
    import sympy

    return sympy


class _Converter:
    """One template to a SymPy expression with selector symbols; collects the nodes."""

    def __init__(self, symbols: dict[str, Any]) -> None:
        self.sp = _sympy()
        self.symbols = symbols
        self.nodes: list[Node] = []
        self.selector_symbols: list[Any] = []

    def _selector(self, kind: str, path: tuple[int, ...], args: tuple[Expr, ...]) -> Any:
        from coherence.simulate.engine import compile_expr

        sym = self.sp.Symbol(f"s{len(self.selector_symbols)}", real=True)
        self.selector_symbols.append(sym)
        ranks = tuple(_rank(a) for a in args) if kind in ("min", "max") else ()
        self.nodes.append(Node(kind, "", path, tuple(compile_expr(a) for a in args), True, ranks))
        return sym

    def num(self, e: Expr, path: tuple[int, ...]) -> Any:
        sp = self.sp
        match e:
            case Var(name):
                return self.symbols[name]
            case Unary("neg", a):
                return -self.num(a, (*path, 0))
            case Binary("+", _, _) if len(sum_terms(e)) >= _FLAT_SUM:
                # a long chain (a window's sum) as one Add: the expression ``a + b + ...``
                # builds, without re-flattening the partial sums (quadratic in the length)
                terms = sum_terms(e)
                vals = []
                for i, x in enumerate(terms):
                    depth = len(terms) - 1 - max(i, 1)  # left steps down to the term's sum
                    vals.append(self.num(x, (*path, *(0,) * depth, 0 if i == 0 else 1)))
                return sp.Add(*vals)
            case Binary(op, left, right) if op in ("+", "-", "*", "/", "^"):
                a = self.num(left, (*path, 0))
                b = self.num(right, (*path, 1))
                if op == "+":
                    return a + b
                if op == "-":
                    return a - b
                if op == "*":
                    return a * b
                if op == "/":
                    return a / b
                return a**b
            case Call(fn, args) if fn in ("min", "max"):
                vals = [self.num(x, (*path, i)) for i, x in enumerate(args)]
                s = self._selector(fn, path, args)
                pieces = [(v, sp.Eq(s, i)) for i, v in enumerate(vals[:-1])]
                return sp.Piecewise(*pieces, (vals[-1], True))
            case Call("abs", (arg,)):
                v = self.num(arg, (*path, 0))
                return self._selector("abs", path, (arg,)) * v
            case Call(fn, (arg,)) if fn in ("round", "floor", "ceil"):
                return self.num(arg, (*path, 0))  # a quantizer with unit gain
            case Call("sqrt", (arg,)):
                return sp.sqrt(self.num(arg, (*path, 0)))
            case Call("exp", (arg,)):
                return sp.exp(self.num(arg, (*path, 0)))
            case Call("log", (arg,)):
                return sp.log(self.num(arg, (*path, 0)))
            case Ite(c, a, b):
                self.cond(c, (*path, 0))
                s = self._selector("ite", path, (c,))
                return sp.Piecewise(
                    (self.num(a, (*path, 1)), sp.Ne(s, 0)), (self.num(b, (*path, 2)), True)
                )
            case Unary("not", _) | Binary():
                self.cond(e, path)
                return self._selector("bool", path, (e,))  # a condition as a number
        raise ValueError(f"cannot convert {e!r}")

    def cond(self, e: Expr, path: tuple[int, ...]) -> None:
        """Collect the comparisons of a condition (its derivative is zero)."""
        from coherence.simulate.engine import compile_expr

        match e:
            case Binary("and" | "or", left, right):
                self.cond(left, (*path, 0))
                self.cond(right, (*path, 1))
            case Unary("not", a):
                self.cond(a, (*path, 0))
            case Binary(op, left, right) if op in _CMP:
                self.nodes.append(
                    Node("cmp", op, path, (compile_expr(left), compile_expr(right)), False)
                )
            case Ite(c, a, b):
                self.cond(c, (*path, 0))
                self.cond(a, (*path, 1))
                self.cond(b, (*path, 2))
            case _:
                pass


def is_condition(e: Expr) -> bool:
    """Whether an expression is boolean at its root (its derivative is zero)."""
    return (isinstance(e, Binary) and e.op in (*_CMP, "and", "or")) or (
        isinstance(e, Unary) and e.op == "not"
    )


_CACHE: dict[Expr, Derivatives] = {}


def derivatives(t: Template) -> Derivatives:
    """The compiled derivatives of a template (cached per template).

    >>> from coherence.ir.nodes import Binary, Var
    >>> from coherence.linear.program import canonicalize
    >>> t, *_ = canonicalize(Binary("*", Var("x"), Var("x")), lambda n: "s")
    >>> d = derivatives(t)
    >>> d.wrt, [float(v) for v in d.fn(3.0)]
    ((0,), [6.0])
    """
    hit = _CACHE.get(t.expr)
    if hit is not None:
        return hit
    sp = _sympy()
    names = t.placeholders
    symbols = {n: sp.Symbol(n, real=True) for n in names}
    conv = _Converter(symbols)
    outputs: list[Any] = []
    wrt: list[int] = []
    if is_condition(t.expr):
        conv.cond(t.expr, ())
    else:
        value = conv.num(t.expr, ())
        free: dict[Any, Any] = {}
        for k, (name, kind) in enumerate(zip(t.var_names, t.var_kinds, strict=True)):
            if kind not in ("s", "l"):
                continue
            d = _diff(sp, value, symbols[name], free)
            if d != 0:
                wrt.append(k)
                outputs.append(d)
    fn: Callable[..., list[Any]] = _no_outputs
    if outputs:
        args = [symbols[n] for n in names] + conv.selector_symbols
        fn = sp.lambdify(args, outputs, modules="numpy", docstring_limit=0)
    out = Derivatives(t, tuple(wrt), tuple(conv.nodes), fn)
    _CACHE[t.expr] = out
    return out


def _no_outputs(*_args: Any) -> list[Any]:
    return []


def _diff(sp: Any, e: Any, x: Any, free: dict[Any, Any] | None = None) -> Any:
    """d e / d x, visiting only the terms and factors of sums and products that mention x
    (SymPy's own ``diff`` visits all of them: quadratic for a long window average).

    ``free`` remembers the free symbols of the subexpressions, for the next variable."""
    free = {} if free is None else free

    def symbols_of(t: Any) -> Any:
        hit = free.get(t)
        if hit is None:
            hit = t.free_symbols
            free[t] = hit
        return hit

    if x not in symbols_of(e):
        return sp.S.Zero
    if e.is_Add:
        return sp.Add(*[_diff(sp, t, x, free) for t in e.args if x in symbols_of(t)])
    if e.is_Mul:
        terms = []
        for i, f in enumerate(e.args):
            if x in symbols_of(f):
                rest = e.args[:i] + e.args[i + 1 :]
                terms.append(sp.Mul(_diff(sp, f, x, free), *rest))
        return sp.Add(*terms)
    return sp.diff(e, x)
