"""Symbolic derivatives of templates: IR -> SymPy, structurally, then NumPy functions.

Each template (:mod:`coherence.linear.program`) is converted node by node to a SymPy
expression (never through text), differentiated with respect to the placeholders that stand
for states and lets, and compiled once with ``sympy.lambdify`` into one NumPy function that
returns every partial derivative and the arguments of every *switching site*, vectorised over
the template's instances. The cache is per template, so a thousand loops of one shape cost
one conversion.

The nonlinear pieces are linearized on the branch that is active at the operating point:
``min``/``max``/``abs`` become ``Piecewise`` selections whose conditions are evaluated with
the operating point's values (the first minimal argument wins a tie), ``if-then-else`` keeps
its condition, comparisons and boolean connectives have zero derivative, and the quantizers
``round``/``floor``/``ceil`` have unit derivative (a quantizer with unit gain). A switching
site is a place where a small move of the operating point could switch the branch: a
``min``/``max``/``abs`` in numeric position and every ordering comparison. Their arguments
come back with the derivatives so that :mod:`coherence.linear.linearize` can tell whether the
operating point sits on one (COH307).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from coherence.ir.nodes import Binary, Call, Expr, Ite, Unary, Var
from coherence.linear.program import Template

_BOOL_BINARY = ("<", "<=", ">", ">=", "==", "!=", "and", "or")


@dataclass(frozen=True, slots=True)
class Site:
    """A switching site of a template: ``kind`` is min, max, abs or cmp; ``op`` the
    comparison; ``path`` the child indices from the root to the node."""

    kind: str
    op: str
    path: tuple[int, ...]
    n_args: int


@dataclass(frozen=True, slots=True)
class Derivatives:
    """The compiled derivatives of one template.

    ``fn(*placeholders)`` returns a list: the partial derivative with respect to each
    variable placeholder in ``wrt`` (by position in :attr:`Template.var_names`), then the
    arguments of each site in order.
    """

    template: Template
    wrt: tuple[int, ...]
    sites: tuple[Site, ...]
    fn: Callable[..., list[Any]]

    @property
    def n_outputs(self) -> int:
        return len(self.wrt) + sum(s.n_args for s in self.sites)


@functools.cache
def _sympy() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """SymPy (imported on first use: it is slow to import), the quantizer functions with unit
    derivative, and their NumPy implementations for lambdify."""
    import sympy as sp

    class coh_round(sp.Function):  # type: ignore[misc]  # noqa: N801
        """round(x) = floor(x + 1/2), linearized as a quantizer with unit gain."""

        def fdiff(self, argindex: int = 1) -> Any:
            return sp.S.One

    class coh_floor(sp.Function):  # type: ignore[misc]  # noqa: N801
        def fdiff(self, argindex: int = 1) -> Any:
            return sp.S.One

    class coh_ceil(sp.Function):  # type: ignore[misc]  # noqa: N801
        def fdiff(self, argindex: int = 1) -> Any:
            return sp.S.One

    funcs = {"round": coh_round, "floor": coh_floor, "ceil": coh_ceil}
    numpy_impl = {
        "coh_round": lambda x: np.floor(np.asarray(x, dtype=float) + 0.5),
        "coh_floor": np.floor,
        "coh_ceil": np.ceil,
    }
    return sp, funcs, numpy_impl


class _Converter:
    """One template to SymPy; collects the switching sites on the way."""

    def __init__(self, symbols: dict[str, Any]) -> None:
        self.sp, self.funcs, _ = _sympy()
        self.symbols = symbols
        self.sites: list[tuple[Site, list[Any]]] = []

    def num(self, e: Expr, path: tuple[int, ...], record: bool = True) -> Any:
        """``e`` as a number. ``record`` is false inside comparison operands, where a kink
        does not reach any derivative."""
        sp = self.sp
        match e:
            case Var(name):
                return self.symbols[name]
            case Unary("neg", a):
                return -self.num(a, (*path, 0), record)
            case Binary(op, left, right) if op in ("+", "-", "*", "/", "^"):
                a = self.num(left, (*path, 0), record)
                b = self.num(right, (*path, 1), record)
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
                vals = [self.num(x, (*path, i), record) for i, x in enumerate(args)]
                if record:
                    self.sites.append((Site(fn, "", path, len(vals)), vals))
                return _select(sp, vals, fn)
            case Call("abs", (arg,)):
                v = self.num(arg, (*path, 0), record)
                if record:
                    self.sites.append((Site("abs", "", path, 1), [v]))
                return sp.Piecewise((v, v >= 0), (-v, True))
            case Call(fn, (arg,)) if fn in self.funcs:
                return self.funcs[fn](self.num(arg, (*path, 0), record))
            case Call("sqrt", (arg,)):
                return sp.sqrt(self.num(arg, (*path, 0), record))
            case Call("exp", (arg,)):
                return sp.exp(self.num(arg, (*path, 0), record))
            case Call("log", (arg,)):
                return sp.log(self.num(arg, (*path, 0), record))
            case Ite(c, a, b):
                cond = self.cond(c, (*path, 0))
                return sp.Piecewise(
                    (self.num(a, (*path, 1), record), cond),
                    (self.num(b, (*path, 2), record), True),
                )
            case Unary("not", _) | Binary():
                # a condition in numeric position: 1 or 0, with zero derivative
                return sp.Piecewise((sp.S.One, self.cond(e, path)), (sp.S.Zero, True))
        raise ValueError(f"cannot convert {e!r}")

    def cond(self, e: Expr, path: tuple[int, ...]) -> Any:
        """``e`` as a condition."""
        sp = self.sp
        match e:
            case Binary("and", left, right):
                return sp.And(self.cond(left, (*path, 0)), self.cond(right, (*path, 1)))
            case Binary("or", left, right):
                return sp.Or(self.cond(left, (*path, 0)), self.cond(right, (*path, 1)))
            case Unary("not", a):
                return sp.Not(self.cond(a, (*path, 0)))
            case Binary(op, left, right) if op in ("<", "<=", ">", ">=", "==", "!="):
                a = self.num(left, (*path, 0), record=False)
                b = self.num(right, (*path, 1), record=False)
                self.sites.append((Site("cmp", op, path, 2), [a, b]))
                rel = {
                    "<": sp.Lt,
                    "<=": sp.Le,
                    ">": sp.Gt,
                    ">=": sp.Ge,
                    "==": sp.Eq,
                    "!=": sp.Ne,
                }[op]
                return rel(a, b)
            case _:
                return sp.Ne(self.num(e, path, record=False), 0)


def _select(sp: Any, vals: list[Any], fn: str) -> Any:
    """min/max as a Piecewise choosing the first extreme argument."""
    if len(vals) == 1:
        return vals[0]
    better = sp.Le if fn == "min" else sp.Ge
    pieces = []
    for i, v in enumerate(vals[:-1]):
        conds = [better(v, w) for w in vals[i + 1 :]]
        pieces.append((v, sp.And(*conds)))
    pieces.append((vals[-1], True))
    return sp.Piecewise(*pieces)


def is_condition(e: Expr) -> bool:
    """Whether an expression is boolean at its root (its derivative is zero)."""
    return (isinstance(e, Binary) and e.op in _BOOL_BINARY) or (
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
    sp, _, numpy_impl = _sympy()
    names = t.placeholders
    symbols = {n: sp.Symbol(n, real=True) for n in names}
    conv = _Converter(symbols)
    outputs: list[Any] = []
    wrt: list[int] = []
    if is_condition(t.expr):
        conv.cond(t.expr, ())
    else:
        value = conv.num(t.expr, ())
        for k, (name, kind) in enumerate(zip(t.var_names, t.var_kinds, strict=True)):
            if kind not in ("s", "l"):
                continue
            d = sp.diff(value, symbols[name])
            if d != 0:
                wrt.append(k)
                outputs.append(d)
    sites = []
    for site, args in conv.sites:
        sites.append(site)
        outputs += args
    args_syms = [symbols[n] for n in names]
    if outputs:
        fn = sp.lambdify(
            args_syms, outputs, modules=[numpy_impl, "numpy"], docstring_limit=0
        )
    else:
        fn = _no_outputs
    out = Derivatives(t, tuple(wrt), tuple(sites), fn)
    _CACHE[t.expr] = out
    return out


def _no_outputs(*_args: Any) -> list[Any]:
    return []
