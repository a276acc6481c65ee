"""The one place a Z3 query is answered: resource limits and honest outcomes.

Every check in :mod:`coherence.smt` goes through :func:`check`. It sets Z3's deterministic
``rlimit`` for the call (a result reproduces on every machine), and maps Z3's answer to an
:class:`Outcome` without ever turning ``unknown`` into ``sat`` or ``unsat`` (the CrossHair
rule): ``unknown`` carries Z3's ``reason_unknown``.

Some of Z3's nonlinear work is not charged to the rlimit (nlsat's root isolation over
polynomials with large coefficients, for one): such a call can run for hours within its
rlimit. A wall-clock guard (:data:`GUARD_S`) stops it as a last resort; it is far above what
any call of the shipped specs takes, so it never decides their results, and a call it stops
answers ``unknown`` with a reason that names the guard, so that a result that depended on it
says so.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ParamSpec, TypeVar

import z3

from coherence.cache import GUARD_NOTE

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(slots=True)
class _Scope:
    ctx: Any
    cache: dict[Any, Any] = field(default_factory=dict)


_SCOPES: list[_Scope] = []
_MAIN = _Scope(None)


@contextmanager
def fresh_context() -> Iterator[Any]:
    """A Z3 context of its own for one analysis; nested uses share the outer one.

    Z3 hash-conses terms per context, and the order in which terms were first created steers
    its search: in a shared context, an analysis' answers (within the same rlimit) could
    depend on what ran before it in the process. A fresh context per analysis makes every
    answer a function of the analysis alone.
    """
    if _SCOPES:
        yield _SCOPES[-1].ctx
        return
    with own_context() as c:
        yield c


@contextmanager
def own_context() -> Iterator[Any]:
    """A Z3 context of its own even inside another analysis: one part of an analysis (a
    requirement, the conflict search, the equilibria) answers as a function of itself
    alone, whatever ran before it. Nothing built in it may be used after it closes."""
    scope = _Scope(z3.Context())
    _SCOPES.append(scope)
    try:
        yield scope.ctx
    finally:
        _SCOPES.pop()


def isolated(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` in :func:`fresh_context` (its own Z3 context unless one is active)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with fresh_context():
            return fn(*args, **kwargs)

    return wrapper


def ctx() -> Any:
    """The Z3 context terms are built in now."""
    return _SCOPES[-1].ctx if _SCOPES else z3.main_ctx()


def scope_cache() -> dict[Any, Any]:
    """A cache that lives as long as the current context (for constant terms)."""
    if _SCOPES:
        return _SCOPES[-1].cache
    if _MAIN.ctx is not z3.main_ctx():
        _MAIN.ctx = z3.main_ctx()
        _MAIN.cache = {}
    return _MAIN.cache


class Outcome(enum.Enum):
    SAT = "sat"  # a model exists: a candidate, to be replayed before anyone believes it
    UNSAT = "unsat"  # no model: a proof (over the encoding's semantics)
    UNKNOWN = "unknown"  # the solver gave up; never a pass


@dataclass(frozen=True, slots=True)
class Answer:
    """What one solver call returned."""

    outcome: Outcome
    reason: str = ""
    model: Any = field(default=None, compare=False, repr=False)
    rlimit_used: int = 0
    # the typed facts of an unknown, for the code that acts on them (the reason is for people)
    limit_hit: bool = False  # the call spent its rlimit
    guarded: bool = False  # the wall-clock guard stopped it: an answer that depends on the machine

    @property
    def sat(self) -> bool:
        return self.outcome is Outcome.SAT

    @property
    def unsat(self) -> bool:
        return self.outcome is Outcome.UNSAT

    @property
    def unknown(self) -> bool:
        return self.outcome is Outcome.UNKNOWN


@dataclass(slots=True)
class SolverStats:
    """Counts over one analysis, reported in the result's data."""

    calls: int = 0
    sat: int = 0
    unsat: int = 0
    unknown: int = 0
    rlimit: int = 0
    guarded: int = 0  # calls the wall-clock guard stopped (their answers depend on the machine)


GUARD_S = 30.0  # seconds one call may run whatever its rlimit (see the module docstring)


def new_solver() -> Any:
    """A fresh solver with deterministic settings (fixed seeds, model completion on eval)."""
    s = z3.Solver(ctx=ctx())
    s.set("random_seed", 0)
    # Groebner-basis passes of the nonlinear solver are not charged to the rlimit, so they
    # would break the link between the limit and the time a call takes: off.
    s.set("arith.nl.grobner", False)
    # Likewise the nonlinear solver's check of a candidate assignment against nlsat: on the
    # fixed-point query of an earlier specs/conflicts/power_cap_fixed.coh (maxReplicas 72) one
    # call under rlimit 1M took 20 s with it and 0.3 s without, with the same answer.
    s.set("arith.nl.nra_check_assignment", False)
    return s


def assert_all(solver: Any, terms: Sequence[Any]) -> None:
    """``solver.add(*terms)`` for terms the encoder built (Z3 booleans of the solver's
    context), without the per-term conversions of ``add`` (the same assertions, in the same
    order): queries bring thousands."""
    ref, native = solver.ctx.ref(), solver.solver
    for t in terms:
        if z3.is_expr(t):
            z3.Z3_solver_assert(ref, native, t.as_ast())
        else:  # pragma: no cover - defensive: a Python boolean
            solver.add(t)


def _rlimit_count(solver: Any) -> int:
    st = solver.statistics()
    try:
        return int(st.get_key_value("rlimit count"))
    except z3.Z3Exception:
        return 0


def check(
    solver: Any,
    rlimit: int,
    assumptions: Sequence[Any] = (),
    stats: SolverStats | None = None,
) -> Answer:
    """Check ``solver`` (with ``assumptions``) under the resource limit ``rlimit``.

    The limit applies to this call alone. ``sat`` returns the model; ``unknown`` returns the
    solver's reason (``max. resource limit exceeded``, ``incomplete (nonlinear arithmetic)``,
    ...). Exceptions from Z3 become ``unknown`` with the exception text as the reason.
    """
    solver.set("rlimit", int(rlimit))
    solver.set("timeout", max(1, int(GUARD_S * 1000)))
    before = _rlimit_count(solver)
    try:
        res = solver.check(*assumptions)
    except z3.Z3Exception as exc:  # pragma: no cover - defensive: z3 internal errors
        res = None
        reason = f"z3 error: {exc}"
    used = max(0, _rlimit_count(solver) - before)
    if stats is not None:
        stats.calls += 1
        stats.rlimit += used
    if res == z3.sat:
        if stats is not None:
            stats.sat += 1
        return Answer(Outcome.SAT, "", solver.model(), used)
    if res == z3.unsat:
        if stats is not None:
            stats.unsat += 1
        return Answer(Outcome.UNSAT, "", None, used)
    limit_hit = guarded = False
    if res is not None:
        reason = solver.reason_unknown() or "unknown"
        if reason in ("canceled", "timeout") and used < rlimit:
            guarded = True
            reason = (
                f"{GUARD_NOTE} ({GUARD_S:g} s) after {used} of its rlimit {rlimit} "
                "(nonlinear work Z3 does not charge to the rlimit)"
            )
        elif reason in ("max. resource limit exceeded", "canceled", "resource limits reached"):
            limit_hit = True
            reason = f"resource limit exceeded (rlimit {rlimit})"
    if stats is not None:
        stats.unknown += 1
        stats.guarded += guarded
    return Answer(Outcome.UNKNOWN, reason, None, used, limit_hit, guarded)


def to_float(value: Any) -> float:
    """A Z3 numeral (integer, rational or algebraic) as the nearest float.

    Rationals are converted exactly through :class:`~fractions.Fraction` and rounded once;
    algebraic numbers (from nonlinear models) through a 40-digit decimal approximation.
    """
    if z3.is_true(value):
        return 1.0
    if z3.is_false(value):
        return 0.0
    if z3.is_int_value(value):
        return float(value.as_long())
    if z3.is_rational_value(value):
        return float(Fraction(value.numerator_as_long(), value.denominator_as_long()))
    if z3.is_algebraic_value(value):
        text = value.as_decimal(40).rstrip("?")
        return float(text)
    raise ValueError(f"not a numeral: {value}")
