"""The formal analysis of one transition system: requirements, conflicts, bad equilibria.

:func:`analyze` runs, for the requirements the spec states:

- ``always`` / ``response`` / ``flapping``: bounded model checking from the initial state
  (and k-induction for ``always``), :mod:`coherence.smt.bmc`;
- ``coherent``: conflict witnesses for every coupled pair of loops,
  :mod:`coherence.smt.conflicts` (the objective-alignment matrix is reported for every
  system with two or more loops; findings only when the spec requires coherence);
- ``no bad equilibrium``: fixed points that violate a keep-objective at nominal input and
  the smallest trigger into them, :mod:`coherence.smt.equilibria`.

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

from coherence.ir.deps import GLOBAL, influence_cycles, user_names
from coherence.ir.dump import format_expr
from coherence.ir.nodes import Requirement, TransitionSystem, Var, names_in
from coherence.results import AnalysisResult, Cell, Finding, PieceTime, Status, Table, Verdict
from coherence.search.conflicts import values as _values
from coherence.simulate.view import show, trace_view
from coherence.smt import bmc, conflicts, equilibria
from coherence.smt.options import SmtOptions
from coherence.smt.solver import SolverStats, isolated, own_context

BOUNDED = ("always", "response", "flapping")
CODES = {"always": "COH501", "response": "COH502", "flapping": "COH503"}


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


def _counts(stats: SolverStats) -> tuple[int, int, int, int, int]:
    return (stats.calls, stats.sat, stats.unsat, stats.unknown, stats.rlimit)


def _bounded_part(ts: TransitionSystem, opts: SmtOptions, index: int) -> Part:
    start = time.perf_counter()
    req = ts.requirements[index]
    stats = SolverStats()
    with own_context():  # each part answers as a function of itself alone
        res = bmc.check_bounded(ts, req, opts, stats)
    v, fs = _bounded(ts, req, res, opts)
    seconds = time.perf_counter() - start
    return Part((v,), tuple(fs), (_row(v),), (), (), _counts(stats), seconds, req_key(req))


def _conflicts_part(ts: TransitionSystem, opts: SmtOptions) -> Part:
    start = time.perf_counter()
    stats = SolverStats()
    with own_context():
        pairs = conflicts.check_all(ts, opts, stats)
    cycles = influence_cycles(ts)
    data = (("influence_cycles", tuple(" -> ".join((*c, c[0])) for c in cycles)),)
    findings: list[Finding] = _cycle_findings(ts, cycles) if opts.cycles else []
    verdicts: list[Verdict] = []
    for req in ts.requirements:
        if req.kind == "coherent":
            v, fs = _coherent(ts, req, pairs)
            verdicts.append(v)
            findings += fs
    return Part(
        tuple(verdicts),
        tuple(findings),
        tuple(_row(v) for v in verdicts),
        (_matrix(ts, pairs),),
        data,
        _counts(stats),
        time.perf_counter() - start,
        "conflicts",
    )


def _equilibria_part(ts: TransitionSystem, opts: SmtOptions, index: int) -> Part:
    start = time.perf_counter()
    req = ts.requirements[index]
    stats = SolverStats()
    with own_context():
        eq = equilibria.find(ts, opts, stats)
    v, fs = _equilibrium(ts, req, eq)
    seconds = time.perf_counter() - start
    return Part((v,), tuple(fs), (_row(v),), (), (), _counts(stats), seconds, "equilibria")


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
    return "conflicts" if piece.func is _conflicts_part else "equilibria"


def assemble(options: SmtOptions | None, done: list[Part], seconds: float) -> AnalysisResult:
    """The analysis result from its pieces (:func:`parts`, run in their order)."""
    opts = options or SmtOptions()
    findings = [f for p in done for f in p.findings]
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
        tuple(sorted(findings, key=Finding.sort_key)),
        tuple(v for p in done for v in p.verdicts),
        tuple(tables),
        tuple(data),
        seconds,
        pieces,
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


# ---- bounded requirements -------------------------------------------------------------------


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


def _text(req: Requirement) -> str:
    return req.text.removeprefix("require ").strip() or req.kind


def _row(v: Verdict) -> tuple[Cell, ...]:
    return (v.requirement.removeprefix("require "), v.status.value, v.depth, v.reason)


def _bounded(
    ts: TransitionSystem, req: Requirement, res: bmc.Result, opts: SmtOptions
) -> tuple[Verdict, list[Finding]]:
    findings: list[Finding] = []
    key = req_key(req)
    reason = res.reason
    codes: tuple[str, ...] = ()
    if res.status is Status.FALSIFIED and res.cex is not None:
        cex = res.cex
        code = CODES[req.kind]
        codes = (code,)
        when = cex.tick * ts.tick
        reason = f"violated at t={when:g}s ({cex.source})"
        extra = _columns(ts, req)
        note = (
            "inputs chosen by the solver within their ranges"
            if cex.source.startswith("solver")
            else "inputs from a simulated pattern within their ranges"
        )
        if req.inputs == "held":
            note += ", held constant"
        view = trace_view(
            cex.trace.ts,
            cex.trace,
            title=f"{ts.name}: {_text(req)}",
            violation_tick=cex.tick,
            extra=extra,
            inputs_note=note,
        )
        findings.append(
            Finding(
                code,
                _violation_message(ts, req, cex),
                req.span,
                notes=(
                    f"found by {cex.source}; replayed in the simulator",
                    *_param_notes(ts, cex.scenario.params),
                ),
                help=_help(ts, req),
                trace=view,
                data=(("tick", cex.tick), ("source", cex.source)),
                key=key,
            )
        )
    elif res.status is Status.UNKNOWN:
        codes = ("COH901",)
        findings.append(
            Finding(
                "COH901",
                f"`{_text(req)}` is neither proved nor falsified: "
                + (f"{res.evidence}; " if res.evidence else "")
                + f"the solver stopped at depth {res.depth} ({res.reason})",
                req.span,
                notes=(
                    f"no violation in the first {res.depth} ticks for any admissible input",
                    *res.notes[:3],
                ),
                help="raise the solver's rlimit (--rlimit) or lower the horizon; "
                "unknown never counts as a pass",
                key=f"unknown:{key}",
            )
        )
        if res.spurious:
            findings.append(
                Finding(
                    "COH902",
                    f"{res.spurious} candidate counterexample(s) for `{_text(req)}` from the "
                    "over-approximation did not reproduce in simulation",
                    req.span,
                    notes=res.notes[:3],
                    key=f"spurious:{key}",
                )
            )
    elif res.status is Status.PROVED and res.induction_k is not None:
        aux = "auxiliary invariants" in res.reason
        reason = res.reason if aux else f"{res.induction_k}-inductive: holds for all time"
    elif res.status is Status.HOLDS and not reason:
        reason = f"no violation in {res.depth} ticks"
    v = Verdict(req.text, req.kind, res.status, req.span, "smt", res.depth, reason, codes)
    return v, findings


def _columns(ts: TransitionSystem, req: Requirement) -> tuple[tuple[str, str], ...]:
    """Extra trace columns: the lets a requirement reads."""
    names: set[str] = set()
    for e in (req.cond, req.trigger):
        if e is not None:
            names |= names_in(e)
    lets = {d.name: d for d in ts.lets}
    out = []
    for n in sorted(names):
        if n in lets and lets[n].owner is None:
            d = lets[n]
            unit = "" if d.unit in ("1", "bool") else f" [{d.unit}]"
            out.append((f"{n}{unit}", n))
    return tuple(out)


def _violation_message(ts: TransitionSystem, req: Requirement, cex: bmc.Counterexample) -> str:
    t = cex.tick * ts.tick
    if req.kind == "always":
        return f"`{_text(req)}` is violated at t={t:g}s"
    if req.kind == "response":
        return f"`{_text(req)}`: no response by the deadline at t={t:g}s"
    assert req.state is not None
    st = ts.state(req.state)
    x = cex.trace.state(req.state)[0, : cex.tick + 2]
    lo, hi = show(float(x.min()), st.scale), show(float(x.max()), st.scale)
    return (
        f"`{req.state}` flaps: more than {req.max_reversals} reversals within "
        f"{req.within * ts.tick:g}s by t={t:g}s (between {lo} and {hi})"
    )


def _help(ts: TransitionSystem, req: Requirement) -> str:
    if req.kind == "flapping" and req.state is not None:
        return bmc.flapping_help(ts, req.state, req.within)
    if req.kind == "response":
        return "the trace shows the trigger and the ticks in which the response did not come"
    return "the trace shows the inputs and loop actions that lead to the violation"


def _param_notes(ts: TransitionSystem, params: dict[str, float] | Any) -> tuple[str, ...]:
    out = []
    for p in ts.params:
        if not p.internal and p.lo < p.hi and p.name in params:
            out.append(f"uncertain parameter {p.name} = {show(params[p.name], p.scale)} {p.unit}")
    return tuple(out)


# ---- conflicts ------------------------------------------------------------------------------


def _unit(o: Any) -> str:
    return "" if o.unit in ("1", "bool") else f" {o.unit}"


def _signed(x: float, o: Any) -> str:
    """A change in the objective's display unit, with its sign: ``+0.43 s``."""
    return ("+" if x >= 0 else "-") + show(abs(x), o.scale) + _unit(o)


def _cell(p: conflicts.PairResult, ts: TransitionSystem) -> str:
    if p.verdict == conflicts.CONFLICT and p.witness is not None:
        w = p.witness
        o = ts.objective(w.objective)
        what = f"{o.name.split('.')[-1]} {_signed(w.effect, o)}"
        if o.kind == "keep":
            what = f"{o.name.split('.')[-1]} violation {_signed(w.effect, o)}"
        return f"conflicting ({what}, {w.tick * ts.tick:g}s after it acts)"
    if p.verdict == conflicts.ALIGNED:
        return f"aligned (proved, k={p.depth})"
    if p.verdict == conflicts.NOT_FOUND:
        return f"not found in {p.scenarios} scenarios"
    return str(p.verdict)


def _matrix(ts: TransitionSystem, pairs: list[conflicts.PairResult]) -> Table:
    names = [lp.name for lp in ts.loops]
    cols = names + sorted({p.affected for p in pairs if p.affected == GLOBAL})
    cell = {(p.actor, p.affected): p for p in pairs}
    rows: list[tuple[Cell, ...]] = []
    for a in names:
        row: list[Cell] = [a]
        for b in cols:
            row.append("-" if a == b else _cell(cell[(a, b)], ts))
        rows.append(tuple(row))
    note = (
        "row: the loop that acts; column: the loop whose objectives it may worsen. "
        f"aligned = no witness exists over {conflicts.scope_text(ts)} within k ticks "
        "(a proof); conflicting = a replayed run from the initial state in which the action "
        "makes the objective worse beyond its tolerance and floor (the size of the worst "
        "effect found, and when); not found = no such run among the scenarios searched, and "
        "no proof (not a pass); uncoupled = no signal path within k ticks"
    )
    return Table("Objective alignment", ("acts \\ affects", *cols), tuple(rows), note)


def _coherent(
    ts: TransitionSystem, req: Requirement, pairs: list[conflicts.PairResult]
) -> tuple[Verdict, list[Finding]]:
    by_actor: dict[str, list[conflicts.PairResult]] = {}
    for p in pairs:
        if p.verdict == conflicts.CONFLICT and p.witness is not None:
            by_actor.setdefault(p.actor, []).append(p)
    findings: list[Finding] = [_conflict_finding(ts, group) for group in by_actor.values()]
    open_pairs = [p for p in pairs if p.verdict == conflicts.NOT_FOUND]
    depth = max((p.depth for p in pairs), default=0)
    if findings:
        status, reason = Status.FALSIFIED, _pairs_text(pairs, conflicts.CONFLICT)
    elif open_pairs:
        n = max(p.scenarios for p in open_pairs)
        T = max(p.ticks for p in open_pairs)
        status = Status.UNKNOWN
        reason = (
            f"no conflict found in {n} scenarios of {T} ticks from the initial state, not "
            f"proved: {_pairs_text(pairs, conflicts.NOT_FOUND)}"
        )
        findings.append(
            Finding(
                "COH901",
                f"`{_text(req)}` could not be decided for {len(open_pairs)} pair"
                f"{'s' if len(open_pairs) != 1 else ''} of loops: no conflict was found in "
                f"{n} input scenarios of {T} ticks each, and none was proved absent",
                req.span,
                notes=tuple(
                    f"{p.actor} -> {_who(p.affected).strip('`')}: {p.reason or 'not proved'}"
                    for p in open_pairs[:6]
                )
                + ((f"and {len(open_pairs) - 6} more pairs",) if len(open_pairs) > 6 else ()),
                help="raise the solver's rlimit (--rlimit) to try the proofs harder; "
                "unknown never counts as a pass",
                key="unknown:coherent",
            )
        )
    else:
        status = Status.PROVED
        n_aligned = sum(p.verdict == conflicts.ALIGNED for p in pairs)
        reason = f"{n_aligned} coupled pair(s) proved aligned over {conflicts.scope_text(ts)}"
    codes = tuple(sorted({f.code for f in findings}))
    return Verdict(req.text, req.kind, status, req.span, "smt", depth, reason, codes), findings


def _related(ts: TransitionSystem, b: str) -> tuple[Any, ...]:
    if b == GLOBAL:
        return tuple(o.span for o in ts.objectives if o.owner is None)
    return (ts.loop(b).span,)


def _who(b: str) -> str:
    return "the spec's objectives" if b == GLOBAL else f"`{b}`"


def _pairs_text(pairs: list[conflicts.PairResult], verdict: str) -> str:
    return ", ".join(f"{p.actor} -> {p.affected}" for p in pairs if p.verdict == verdict)


def _conflict_help(ts: TransitionSystem, p: conflicts.PairResult) -> str:
    """What to change, from the case: the actor's law does not read what it hurts, or the
    two loops act at comparable speeds."""
    w = p.witness
    assert w is not None
    o = ts.objective(w.objective)
    lp = ts.loop(p.actor)
    seen: set[str] = set()
    for act in lp.actions:
        seen |= names_in(act.law)
    for sn in lp.sensors:
        seen |= names_in(sn.signal)
    hurt = [n for n in user_names(ts, sorted(names_in(o.expr))) if n not in seen]
    parts = []
    if hurt:
        parts.append(
            f"`{p.actor}` does not see {', '.join(f'`{n}`' for n in hurt[:3])}: let its law "
            f"account for `{o.name}` (a guard or a term that backs off when it is near its "
            "bound)"
        )
    if p.affected != GLOBAL:
        pa, pb = lp.period, ts.loop(p.affected).period
        if max(pa, pb) < 5 * min(pa, pb):
            parts.append(
                f"{'or ' if parts else ''}separate their time scales (`{p.actor}` acts every {pa * ts.tick:g}s, "
                f"`{p.affected}` every {pb * ts.tick:g}s; 5-10x apart is the usual rule)"
            )
    if not parts:
        parts.append(
            f"check that `{p.actor}` and {_who(p.affected)} want compatible things, or make "
            f"`{p.actor}`'s law account for `{o.name}`"
        )
    return "; ".join(parts)


def _severity(p: conflicts.PairResult) -> float:
    w = p.witness
    assert w is not None
    return w.effect / w.threshold if w.threshold > 0 else float("inf")


def _one_line(ts: TransitionSystem, p: conflicts.PairResult) -> str:
    """Another pair of the same acting loop, in a line: what it worsens, by how much."""
    w = p.witness
    assert w is not None
    o = ts.objective(w.objective)
    what = "the violation larger" if o.kind == "keep" else "worse"
    return (
        f"also against {_who(p.affected)}: `{o.name}` {show(w.acting, o.scale)}{_unit(o)} "
        f"against {show(w.holding, o.scale)}{_unit(o)} if it held ({what} by "
        f"{show(w.effect, o.scale)}{_unit(o)}, at t={(w.start_tick + w.tick) * ts.tick:g}s; "
        f"from {'the nominal run' if w.origin == 'nominal' else f'`{w.pattern}`'})"
    )


def _conflict_finding(ts: TransitionSystem, group: list[conflicts.PairResult]) -> Finding:
    """One finding per acting loop: its worst conflict (effect over threshold) shown with
    its run; the other loops it works against attached as notes."""
    ranked = sorted(group, key=lambda q: (-_severity(q), q.affected))
    p = ranked[0]
    w = p.witness
    assert w is not None
    obj = ts.objective(w.objective)
    at = w.start_tick + w.tick
    when = f"t={w.start_tick * ts.tick:g}s"
    later = f"{w.tick * ts.tick:g}s later"
    if obj.kind == "keep":
        what = (
            f"{'causes' if w.change == 'causes' else 'deepens'} a violation of `{obj.name}` "
            f"by {show(w.effect, obj.scale)}{_unit(obj)}"
        )
    else:
        verb = "raises" if obj.kind == "minimize" else "lowers"
        what = f"{verb} `{obj.name}` by {show(w.effect, obj.scale)}{_unit(obj)}"
    msg = f"`{p.actor}` works against {_who(p.affected)}: its action at {when} {what} {later}"
    if len(ranked) > 1:
        msg += f" (and against {len(ranked) - 1} more: see the notes)"
    tol = ""
    if obj.relative and obj.tolerance:
        tol = f"tolerance {obj.tolerance * 100:g}%"
    elif obj.tolerance:
        tol = f"tolerance {show(obj.tolerance, obj.scale)}{_unit(obj)}"
    floor = f"floor {show(w.floor, obj.scale)}{_unit(obj)}"
    origin = f"from the initial state under the input pattern `{w.pattern}`"
    if w.origin == "nominal":
        origin = (
            "at the initial state, with nominal inputs"
            if w.start_tick == 0
            else f"on the nominal run (nominal inputs from the initial state) until {when}"
        )
    notes = [
        f"at t={at * ts.tick:g}s: `{obj.name}` = {show(w.acting, obj.scale)}{_unit(obj)} when "
        f"`{p.actor}` acts, {show(w.holding, obj.scale)}{_unit(obj)} when it holds "
        f"({'the violation larger' if obj.kind == 'keep' else 'worse'} by "
        f"{show(w.effect, obj.scale)}{_unit(obj)}; "
        f"material above {', '.join(x for x in (tol, floor) if x)})",
        f"the run starts {origin}; inputs within their declared ranges",
        "coupled through " + ", ".join(f"`{n}`" for n in user_names(ts, p.via)[:4]),
        f"found among {p.scenarios} input scenarios of {p.ticks} ticks; both runs replayed in "
        "the simulator",
        *(_one_line(ts, q) for q in ranked[1:]),
    ]
    extra: tuple[tuple[str, str], ...] = ()
    if isinstance(obj.expr, Var):
        extra = ((f"{obj.name} (acting)", obj.expr.name),)
    view = trace_view(
        ts,
        w.run,
        title=f"{p.actor} acts at {when}; {obj.name} compared with it holding",
        violation_tick=at,
        last_tick=min(w.run.ticks - 1, at + 1),
        extra=extra,
        inputs_note=f"inputs: {w.pattern} (within their declared ranges)",
    )
    holding = _values(obj.expr, w.counterfactual, w.start_tick)[0]
    acting = _values(obj.expr, w.run, 0)[0][w.start_tick : w.start_tick + len(holding)]
    return Finding(
        "COH401",
        msg,
        ts.loop(p.actor).span,
        notes=tuple(notes),
        help=_conflict_help(ts, p),
        related=(*_related(ts, p.affected), obj.span),
        trace=view,
        data=(
            ("origin", w.origin),
            ("start_tick", w.start_tick),
            ("tick", at),
            ("objective", obj.name),
            ("effect", w.effect),
            ("threshold", w.threshold),
            ("pattern", w.pattern),
            ("holding", tuple(float(x) for x in holding)),
            ("acting", tuple(float(x) for x in acting)),
            ("affects", tuple(q.affected for q in ranked)),
        ),
        key=f"conflict:{p.actor}",
    )


def _cycle_findings(ts: TransitionSystem, cycles: list[tuple[str, ...]]) -> list[Finding]:
    out = []
    for c in cycles:
        path = " -> ".join((*c, c[0]))
        out.append(
            Finding(
                "COH403",
                f"loops influence each other in a cycle: {path}",
                ts.loop(c[0]).span,
                related=tuple(ts.loop(n).span for n in c[1:]),
                key=f"cycle:{path}",
            )
        )
    return out


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
    T = equilibria.stay_ticks(ts)

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


def _sustain_help(
    ts: TransitionSystem, eq: equilibria.EquilibriumResult, obj: Any, notes: list[str]
) -> str:
    """The help line of a bad equilibrium, from the case: the loop whose release lets the
    system recover (added to ``notes`` with the figures), else the generic advice."""
    try:
        found = sustainers(ts, eq, obj)
    except Exception:  # a help line must not take the finding down
        found = []
    if not found:
        return (
            "bound the loop that sustains it (a retry budget, a cap, hysteresis) so the "
            "overload cannot feed itself"
        )
    name, before, after = found[0]
    lp = ts.loop(name)
    set_to = ", ".join(
        f"{a.state} = {show(eq.good[a.state], ts.state(a.state).scale)}"
        for a in lp.actions
        if eq.good is not None and a.state in eq.good
    )
    u = _unit(obj)
    notes.append(
        f"`{name}` sustains it: with its actuators back at the good operating point ({set_to}) "
        f"and held, the violation of `{obj.name}` falls from {show(before, obj.scale)}{u} to "
        f"{show(after, obj.scale)}{u} in {equilibria.stay_ticks(ts) * ts.tick:g}s"
        + (
            "; releasing any other loop alone changes nothing material"
            if len(found) == 1
            else f"; so does releasing {', '.join(f'`{n}`' for n, _, _ in found[1:])}"
        )
    )
    return (
        f"bound `{name}`, the loop that sustains it (a budget, a cap, hysteresis, or a way "
        "back once the overload is gone), so the overload cannot feed itself"
    )


def _equilibrium(
    ts: TransitionSystem, req: Requirement, eq: equilibria.EquilibriumResult
) -> tuple[Verdict, list[Finding]]:
    findings: list[Finding] = []
    codes: tuple[str, ...] = ()
    reason = eq.reason
    if eq.status is Status.FALSIFIED and eq.state is not None:
        obj = ts.objective(eq.objective)
        codes = ("COH504",)
        state = ", ".join(
            f"{s.name} = {show(eq.state[s.name], s.scale)}"
            for s in ts.states
            if s.kind in ("plant", "actuator")
        )
        notes = [f"the self-sustaining state at nominal input: {state}"]
        trig = eq.trigger
        if trig is not None:
            u = next(x for x in ts.inputs if x.name == trig.input)
            notes.append(
                f"trigger: {trig.input} at {show(trig.level, u.scale)} {u.unit} for "
                f"{trig.ticks * ts.tick:g}s from the operating point, then nominal again: the "
                "system stays there"
            )
            view = trace_view(
                ts,
                trig.trace,
                title=f"{ts.name}: burst of {trig.input}, then nominal",
                violation_tick=trig.violation_tick,
                last_tick=min(
                    trig.trace.ticks - 1,
                    max(trig.violation_tick, trig.ticks) + 2 * ts.hyperperiod + 5,
                ),
                inputs_note=f"{trig.input} burst for {trig.ticks} ticks, nominal afterwards",
            )
            reason = (
                f"`{obj.name}` violated at a self-sustaining state; trigger: {trig.input} "
                f"{show(trig.level, u.scale)} {u.unit} for {trig.ticks * ts.tick:g}s"
            )
        else:
            notes.append(
                "no burst of a single input within the search grid reaches it from "
                "the operating point"
            )
            assert eq.orbit is not None
            view = trace_view(
                ts,
                eq.orbit,
                title=f"{ts.name}: nominal input from the bad state",
                violation_tick=0,
                last_tick=min(eq.orbit.ticks - 1, 4 * ts.hyperperiod),
                inputs_note="nominal inputs",
            )
            reason = f"`{obj.name}` violated at a self-sustaining state"
        help_line = _sustain_help(ts, eq, obj, notes)
        findings.append(
            Finding(
                "COH504",
                f"a self-sustaining state violates `{obj.name}` at nominal input "
                "(metastable failure)",
                req.span,
                notes=tuple(notes),
                help=help_line,
                related=(obj.span,),
                trace=view,
                key=f"bad_equilibrium:{obj.name}",
            )
        )
    elif eq.status is Status.UNKNOWN:
        codes = ("COH901",)
        findings.append(
            Finding(
                "COH901",
                f"`{_text(req)}` could not be decided: {eq.reason}",
                req.span,
                notes=eq.notes[:3],
                help="raise the solver's rlimit; unknown never counts as a pass",
                key="unknown:bad_equilibrium",
            )
        )
    v = Verdict(req.text, req.kind, eq.status, req.span, "smt", ts.hyperperiod, reason, codes)
    return v, findings
