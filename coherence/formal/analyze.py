"""The formal analysis of one transition system, in independent pieces.

:func:`analyze` runs, for the requirements the spec states:

- ``always`` / ``response`` / ``flapping``: the bounded strategy
  (:data:`coherence.formal.bounded.BOUNDED`: input patterns, interval reachability, the
  localization and dwell proofs, k-induction, BMC, auxiliary invariants);
- ``coherent``: conflict witnesses for every coupled pair of loops,
  :mod:`coherence.formal.conflicts` (the objective-alignment matrix is reported for every
  system with two or more loops; findings only when the spec requires coherence);
- ``no bad equilibrium``: fixed points that violate a keep-objective at nominal input and
  the smallest trigger into them, :mod:`coherence.formal.equilibria`.

Each is a piece (:func:`parts`) that answers as a function of the system and the options
alone, so the pieces may run in any order or in separate processes; :func:`assemble` puts
their results together. Their words are :mod:`coherence.formal.findings`.

Every trace in a finding is a simulator trace (the solver's scenario replayed, or a
simulated input pattern); nothing the solver proposes is shown unless the simulator
reproduced it. ``unknown`` is reported as COH901 and never passes.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from coherence.formal import conflicts, equilibria, findings
from coherence.formal.bounded import check_bounded
from coherence.ir.deps import influence_cycles
from coherence.ir.dump import format_expr
from coherence.ir.limits import LIMIT_CODE, MAX_CONFLICT_LOOPS, TooLarge, beyond_limits
from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.results import AnalysisResult, Cell, Finding, PieceTime, Status, Table, Verdict
from coherence.search.equilibria import stay_ticks
from coherence.smt.options import SmtOptions
from coherence.smt.solver import SolverStats, isolated, own_context
from coherence.smt.terms import EncodeError

BOUNDED = ("always", "response", "flapping")


@dataclass(frozen=True, slots=True)
class Part:
    """What one independent piece of the formal analysis found (one bounded requirement,
    the conflict search, the equilibria): each runs in a Z3 context of its own and answers
    as a function of the system and the options alone, so the pieces may run in any order,
    or in separate processes, and :func:`assemble` gives the same result."""

    verdicts: tuple[Verdict, ...] = ()
    findings: tuple[Finding, ...] = ()
    rows: tuple[tuple[Cell, ...], ...] = ()
    tables: tuple[Table, ...] = ()
    data: tuple[tuple[str, Any], ...] = ()
    stats: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)  # calls, sat, unsat, unknown, rlimit
    seconds: float = 0.0
    name: str = ""  # the requirement's key ("always:latency<=30"), "conflicts", "equilibria"
    guarded: int = 0  # solver calls the wall-clock guard stopped (a machine-dependent answer)


def _counts(stats: SolverStats) -> tuple[int, int, int, int, int]:
    return (stats.calls, stats.sat, stats.unsat, stats.unknown, stats.rlimit)


def _guarded(fn: Callable[..., Part]) -> Callable[..., Part]:
    """A piece that cannot encode its system for the solver (a constant that is not finite:
    :class:`~coherence.smt.terms.EncodeError`), or that asks for more than a stated limit
    (:class:`~coherence.ir.limits.TooLarge`), leaves its requirements unknown with the
    reason (COH901, or COH905 for a limit), never an internal error. Defence in depth: the
    front end rejects non-finite numbers and absurd sizes where they are written."""

    @functools.wraps(fn)
    def run(ts: TransitionSystem, opts: SmtOptions, *index: int) -> Part:
        start = time.perf_counter()
        try:
            return fn(ts, opts, *index)
        except (EncodeError, TooLarge) as exc:
            limit = isinstance(exc, TooLarge)
            why = f"{'' if limit else 'cannot encode the system for the solver: '}{exc}"
            code = LIMIT_CODE if limit else "COH901"
            if index:
                reqs = [ts.requirements[index[0]]]
                name = req_key(reqs[0]) if fn.__name__ == "_bounded_part" else "equilibria"
            else:
                reqs, name = [r for r in ts.requirements if r.kind == "coherent"], "conflicts"
            verdicts = tuple(
                Verdict(r.text, r.kind, Status.UNKNOWN, r.span, "smt", None, why, (code,))
                for r in reqs
            )
            found = tuple(
                Finding(code, f"`{r.text or r.kind}` is unknown: {why}", r.span, key=f"{name}:x")
                for r in reqs
            )
            return Part(
                verdicts, found, tuple(findings.row(v) for v in verdicts), (), (),
                (0, 0, 0, 0, 0), time.perf_counter() - start, name, 0,
            )  # fmt: skip

    return run


@_guarded
def _bounded_part(ts: TransitionSystem, opts: SmtOptions, index: int) -> Part:
    start = time.perf_counter()
    req = ts.requirements[index]
    stats = SolverStats()
    with own_context():  # each part answers as a function of itself alone
        res = check_bounded(ts, req, opts, stats)
    v, fs = findings.bounded(ts, req, res, req_key(req))
    seconds = time.perf_counter() - start
    return Part(
        (v,), tuple(fs), (findings.row(v),), (), (), _counts(stats), seconds, req_key(req),
        stats.guarded,
    )  # fmt: skip


@_guarded
def _conflicts_part(ts: TransitionSystem, opts: SmtOptions) -> Part:
    start = time.perf_counter()
    stats = SolverStats()
    if len(ts.loops) > MAX_CONFLICT_LOOPS:
        return _conflicts_limited(ts, start)
    with own_context():
        pairs = conflicts.check_all(ts, opts, stats)
    cycles = influence_cycles(ts)
    data = (("influence_cycles", tuple(" -> ".join((*c, c[0])) for c in cycles)),)
    found: list[Finding] = [findings.influence_cycle(ts, c) for c in cycles] if opts.cycles else []
    verdicts: list[Verdict] = []
    for req in ts.requirements:
        if req.kind == "coherent":
            v, fs = findings.coherent(ts, req, pairs)
            verdicts.append(v)
            found += fs
    return Part(
        tuple(verdicts),
        tuple(found),
        tuple(findings.row(v) for v in verdicts),
        (findings.matrix(ts, pairs),),
        data,
        _counts(stats),
        time.perf_counter() - start,
        "conflicts",
        stats.guarded,
    )


def _limited_part(ts: TransitionSystem, opts: SmtOptions) -> Part:
    """Every requirement of a system beyond the engine's limits (:func:`beyond_limits`):
    unknown, with the limit (COH905)."""
    why = beyond_limits(ts)
    verdicts = tuple(
        Verdict(r.text, r.kind, Status.UNKNOWN, r.span, "smt", None, why, (LIMIT_CODE,))
        for r in ts.requirements
        if r.kind != "stable"
    )
    f = Finding(LIMIT_CODE, f"the smt analysis did not run: {why}", ts.span, key="limit:smt")
    return Part(
        verdicts, (f,), tuple(findings.row(v) for v in verdicts), (), (), (0, 0, 0, 0, 0),
        0.0, "limits", 0,
    )  # fmt: skip


def _conflicts_limited(ts: TransitionSystem, start: float) -> Part:
    """The conflict analysis of a system beyond :data:`MAX_CONFLICT_LOOPS` loops: not run;
    ``require coherent`` is unknown, with the limit as its reason (COH905)."""
    why = (
        f"the conflict analysis takes at most {MAX_CONFLICT_LOOPS} loops ({len(ts.loops)} "
        f"here: {len(ts.loops) * (len(ts.loops) - 1):,} ordered pairs); no pair was searched"
    )
    found = [
        Finding(
            LIMIT_CODE,
            f"the conflict analysis did not run: {why}",
            ts.span,
            help="check the loops that share a resource in a system of their own",
            key="limit:conflicts",
        )
    ]
    verdicts = tuple(
        Verdict(r.text, r.kind, Status.UNKNOWN, r.span, "smt", None, why, (LIMIT_CODE,))
        for r in ts.requirements
        if r.kind == "coherent"
    )
    return Part(
        verdicts, tuple(found), tuple(findings.row(v) for v in verdicts), (), (),
        (0, 0, 0, 0, 0), time.perf_counter() - start, "conflicts", 0,
    )  # fmt: skip


@_guarded
def _equilibria_part(ts: TransitionSystem, opts: SmtOptions, index: int) -> Part:
    start = time.perf_counter()
    req = ts.requirements[index]
    stats = SolverStats()
    with own_context():
        eq = equilibria.find(ts, opts, stats)
    v, fs = findings.equilibrium(ts, req, eq, _sustaining(ts, eq))
    seconds = time.perf_counter() - start
    return Part(
        (v,), tuple(fs), (findings.row(v),), (), (), _counts(stats), seconds, "equilibria",
        stats.guarded,
    )  # fmt: skip


def _has_conflicts(ts: TransitionSystem, opts: SmtOptions) -> bool:
    has_global = any(o.owner is None for o in ts.objectives)
    return "conflicts" in opts.analyses and (len(ts.loops) >= 2 or (bool(ts.loops) and has_global))


def _equilibria_indices(ts: TransitionSystem, opts: SmtOptions) -> list[int]:
    if "equilibria" not in opts.analyses:
        return []
    return [i for i, r in enumerate(ts.requirements) if r.kind == "no_bad_equilibrium"]


def shares_operating_point(ts: TransitionSystem, options: SmtOptions) -> bool:
    """Whether a piece of :func:`parts` reads the operating point (the nominal run from the
    initial state): the conflict search and the equilibria do."""
    return _has_conflicts(ts, options) or bool(_equilibria_indices(ts, options))


def parts(ts: TransitionSystem, options: SmtOptions | None = None) -> list[Callable[[], Part]]:
    """The independent pieces of :func:`analyze`, in the order their results are reported."""
    opts = options or SmtOptions()
    out: list[Callable[[], Part]] = []
    if beyond_limits(ts):  # every piece would lift or settle an astronomical hyperperiod
        return [functools.partial(_limited_part, ts, opts)]
    if "requirements" in opts.analyses:
        for i, req in enumerate(ts.requirements):
            if req.kind in BOUNDED:
                out.append(functools.partial(_bounded_part, ts, opts, i))
    if _has_conflicts(ts, opts):
        out.append(functools.partial(_conflicts_part, ts, opts))
    for i in _equilibria_indices(ts, opts):
        out.append(functools.partial(_equilibria_part, ts, opts, i))
    return out


def piece_name(piece: Callable[[], Part]) -> str:
    """The name a piece of :func:`parts` reports (:attr:`Part.name`), known before it runs."""
    assert isinstance(piece, functools.partial)
    if piece.func is _bounded_part:
        ts, _, index = piece.args
        return req_key(ts.requirements[index])
    if piece.func is _limited_part:
        return "limits"
    return "conflicts" if piece.func is _conflicts_part else "equilibria"


def assemble(options: SmtOptions | None, done: list[Part], seconds: float) -> AnalysisResult:
    """The analysis result from its pieces (:func:`parts`, run in their order)."""
    opts = options or SmtOptions()
    found = [f for p in done for f in p.findings]
    rows = [r for p in done for r in p.rows]
    tables = [t for p in done for t in p.tables]
    data: list[tuple[str, Any]] = [("mode", opts.mode), ("rlimit", opts.rlimit)]
    data += [d for p in done for d in p.data]
    if rows:
        tables.insert(
            0,
            Table("Requirements", ("requirement", "status", "depth", "detail"), tuple(rows)),
        )
    totals = [sum(p.stats[i] for p in done) for i in range(5)]
    names = ("calls", "sat", "unsat", "unknown", "rlimit")
    data.append(("solver", tuple(zip(names, totals, strict=True))))
    pieces = tuple(
        PieceTime(
            p.name,
            p.seconds,
            p.stats[0],
            p.stats[3],
            p.stats[4],
            ", ".join(v.status.value for v in p.verdicts),
        )
        for p in done
    )
    return AnalysisResult(
        "smt",
        tuple(sorted(found, key=Finding.sort_key)),
        tuple(v for p in done for v in p.verdicts),
        tuple(tables),
        tuple(data),
        seconds,
        pieces,
        sum(p.guarded for p in done),
    )


@isolated
def analyze(ts: TransitionSystem, options: SmtOptions | None = None) -> AnalysisResult:
    """The formal analysis of ``ts``: verdicts, findings and tables.

    >>> from coherence.compile import compile_text
    >>> ts = compile_text("a.coh", "system s { tick 1s input u in [0, 1] nominal 0 "
    ...                   "state x in [0, 10] init 0 next x = min(x + u, 5) "
    ...                   "require always x <= 5 for 20 ticks }").systems[0]
    >>> [(v.kind, v.status.value) for v in analyze(ts).verdicts]
    [('always', 'proved')]
    """
    start = time.perf_counter()
    done = [part() for part in parts(ts, options)]
    return assemble(options, done, time.perf_counter() - start)


def req_key(req: Requirement) -> str:
    """A line-independent subject: ``always:latency<=10``, ``flapping:replicas``, ..."""
    if req.kind == "always" and req.cond is not None:
        return "always:" + format_expr(req.cond).replace(" ", "")
    if req.kind == "response" and req.cond is not None and req.trigger is not None:
        return (
            "response:"
            + format_expr(req.trigger).replace(" ", "")
            + "->"
            + format_expr(req.cond).replace(" ", "")
        )
    if req.kind == "flapping":
        return f"flapping:{req.state}"
    return req.kind


# ---- bad equilibria -------------------------------------------------------------------------


def sustainers(
    ts: TransitionSystem, eq: equilibria.EquilibriumResult, obj: Any
) -> list[tuple[str, float, float]]:
    """Which loops sustain a bad equilibrium: from the bad state at nominal input, each loop
    in turn is released (its actuators put back at their values at the good operating point
    and held there, :func:`hold_loop`) while every other loop acts; a loop sustains it when
    the objective's violation after ``stay_ticks`` is then materially smaller than on the bad
    orbit. Returns (loop, violation on the orbit, violation with the loop released), the
    largest drop first; simulator runs only."""
    from coherence.ir import meaning
    from coherence.ir.transform import hold_loop
    from coherence.search.conflicts import values
    from coherence.simulate.engine import simulate

    if eq.state is None or eq.good is None or obj.bound is None:
        return []
    T = stay_ticks(ts)

    def violation(system: TransitionSystem, init: dict[str, float]) -> float:
        with np.errstate(all="ignore"):
            tr = simulate(system, T, init=init)
        v, b = values(obj.expr, tr)[0], values(obj.bound, tr)[0]
        return float(meaning.violation(obj, v[-1:], b[-1:])[0])

    base = violation(ts, dict(eq.state))
    if not np.isfinite(base) or base <= 0:
        return []
    floor = meaning.default_floor(obj, np.array([base]), np.array([base]))
    out = []
    for lp in ts.loops:
        init = dict(eq.state)
        for a in lp.actions:
            init[a.state] = eq.good.get(a.state, init[a.state])
        after = violation(hold_loop(ts, lp.name), init)
        if np.isfinite(after) and base - after > max(0.1 * base, floor):
            out.append((lp.name, base, after))
    return sorted(out, key=lambda x: (x[2] - x[1], x[0]))


def _sustaining(ts: TransitionSystem, eq: equilibria.EquilibriumResult) -> findings.Sustainers:
    """:func:`sustainers` of a bad equilibrium found, for its help line; none when the
    search fails (a help line must not take the finding down)."""
    if eq.status is not Status.FALSIFIED or eq.state is None:
        return []
    obj = ts.objective(eq.objective)
    try:
        return sustainers(ts, eq, obj)
    except Exception:  # a help line must not take the finding down
        return []
