"""The words of the formal analysis: verdict reasons, findings and the alignment table.

The codes it reports are the constants below (their meaning is
:data:`coherence.diagnostics.REGISTRY`); each code has one function that writes its finding
(:func:`violation` with :data:`MESSAGES` and :data:`HELP` for COH501-COH503,
:func:`unknown_requirement`, :func:`spurious_trace`, :func:`objective_conflict`,
:func:`influence_cycle`, :func:`bad_equilibrium`, ...), and one function per analysis turns
its result into a verdict (:func:`bounded`, :func:`coherent`, :func:`equilibrium`). Nothing
here computes: what a finding states was established by the engines
(:mod:`coherence.formal.bounded`, :mod:`coherence.smt`) and the simulator; the orchestration
is :mod:`coherence.formal.analyze`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from coherence.formal import conflicts, equilibria
from coherence.ir.deps import GLOBAL, user_names
from coherence.ir.nodes import Call, Ite, Requirement, TransitionSystem, Unary, Var, names_in
from coherence.results import Cell, Finding, Status, Table, Verdict
from coherence.search.bounded import Counterexample
from coherence.search.conflicts import values as _values
from coherence.search.equilibria import stay_ticks
from coherence.simulate.view import show, trace_view
from coherence.smt.bmc import Method, Result

# the codes of the formal analysis, named as in the rule catalog
OBJECTIVE_CONFLICT: Final = "COH401"
INFLUENCE_CYCLE: Final = "COH403"
ALWAYS_VIOLATED: Final = "COH501"
RESPONSE_VIOLATED: Final = "COH502"
FLAPPING: Final = "COH503"
BAD_EQUILIBRIUM: Final = "COH504"
SOLVER_UNKNOWN: Final = "COH901"
SPURIOUS_TRACE: Final = "COH902"

# the code of a violated bounded requirement, by its kind
VIOLATED: Final = {"always": ALWAYS_VIOLATED, "response": RESPONSE_VIOLATED, "flapping": FLAPPING}

# the loops that sustain a bad equilibrium: (loop, violation on the orbit, with it released)
Sustainers = list[tuple[str, float, float]]


# ---- bounded requirements -------------------------------------------------------------------


def _text(req: Requirement) -> str:
    return req.text.removeprefix("require ").strip() or req.kind


def row(v: Verdict) -> tuple[Cell, ...]:
    return (v.requirement.removeprefix("require "), v.status.value, v.depth, v.reason)


def bounded(
    ts: TransitionSystem, req: Requirement, res: Result, key: str
) -> tuple[Verdict, list[Finding]]:
    """The verdict of a bounded requirement and its findings: the violation (COH501-COH503),
    or an unknown (COH901) with its spurious candidates (COH902). ``key`` is the
    requirement's subject (:func:`coherence.formal.analyze.req_key`)."""
    findings: list[Finding] = []
    reason = res.reason
    codes: tuple[str, ...] = ()
    if res.status is Status.FALSIFIED and res.cex is not None:
        code = VIOLATED[req.kind]
        codes = (code,)
        reason = f"violated at t={res.cex.tick * ts.tick:g}s ({res.cex.source})"
        findings.append(violation(ts, req, res, code, key))
    elif res.status is Status.UNKNOWN:
        codes = (SOLVER_UNKNOWN,)
        findings.append(unknown_requirement(req, res, key))
        if res.spurious:
            findings.append(spurious_trace(req, res, key))
    elif res.status is Status.PROVED and res.induction_k is not None:
        aux = res.method is Method.INVARIANTS
        reason = res.reason if aux else f"{res.induction_k}-inductive: holds for all time"
    elif res.status is Status.HOLDS and not reason:
        reason = f"no violation in {res.depth} ticks"
    v = Verdict(req.text, req.kind, res.status, req.span, "smt", res.depth, reason, codes)
    return v, findings


def violation(ts: TransitionSystem, req: Requirement, res: Result, code: str, key: str) -> Finding:
    """COH501-COH503: a replayed violation of a bounded requirement, its message and help
    by its code (:data:`MESSAGES`, :data:`HELP`)."""
    cex = res.cex
    assert cex is not None
    note = (
        "inputs from a simulated pattern within their ranges"
        if res.method is Method.PATTERNS
        else "inputs chosen by the solver within their ranges"
    )
    if req.inputs == "held":
        note += ", held constant"
    view = trace_view(
        cex.trace.ts,
        cex.trace,
        title=f"{ts.name}: {_text(req)}",
        violation_tick=cex.tick,
        extra=_columns(ts, req),
        inputs_note=note,
    )
    cycle = _limit_cycle(ts, req, cex) if code == FLAPPING else None
    return Finding(
        code,
        MESSAGES[code](ts, req, cex),
        req.span,
        notes=(
            f"found by {cex.source}; replayed in the simulator",
            *((limit_cycle_note(ts, req.state, cycle),) if code == FLAPPING and req.state else ()),
            *_param_notes(ts, cex.scenario.params),
        ),
        help=HELP[code](ts, req),
        trace=view,
        data=(("tick", cex.tick), ("source", cex.source))
        + ((("limit_cycle", cycle),) if code == FLAPPING else ()),
        key=key,
    )


def _limit_cycle(ts: TransitionSystem, req: Requirement, cex: Counterexample) -> object:
    """The flapping state's oscillation measured on the replayed run continued past the
    counterexample with its last inputs held (None: no full cycle): the measured period and
    swing, not a linear mode's, and the describing-function prediction beside them
    (:func:`coherence.simulate.oscillation.limit_cycle_data`)."""
    from coherence.simulate.oscillation import limit_cycle_data

    assert req.state is not None
    return limit_cycle_data(ts, req.state, cex.scenario, req.within)[0]


def limit_cycle_note(ts: TransitionSystem, state: str, lc: object) -> str:
    """The words of ``data.limit_cycle``: "continued with its last inputs held, `replicas`
    oscillates with period 195 s, amplitude 19 replica, sustained; describing function: ..."."""
    if not isinstance(lc, dict):
        return (
            "continued with its last inputs held, the replayed run has no full cycle to "
            "measure: the flapping dies out"
        )
    st = ts.state(state)
    unit = "" if st.unit in ("1", "") else f" {st.unit}"
    growth = {
        "growing": "still growing at the end of the run",
        "decaying": "decaying",
    }.get(str(lc["growth"]), "sustained")
    out = (
        f"continued {lc['measured_over_s']:g}s with its last inputs held, `{state}` oscillates "
        f"with period {lc['period_s']:.4g} s, amplitude {lc['amplitude']:.4g}{unit}, {growth}"
    )
    df = lc.get("describing_function")
    if isinstance(df, dict) and "period_s" in df:
        out += (
            f"; describing function ({df['kind']} of `{df['loop']}`) predicts "
            f"{df['period_s']:.4g} s, amplitude {df['amplitude']:.4g} at its input "
            f"(measured {df['measured_amplitude']:.4g})"
        )
    elif isinstance(df, dict):
        out += f"; no describing-function prediction: {df.get('reason')}"
    return out


def unknown_requirement(req: Requirement, res: Result, key: str) -> Finding:
    """COH901 for a bounded requirement: what was tried, and where the solver stopped."""
    return Finding(
        SOLVER_UNKNOWN,
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


def spurious_trace(req: Requirement, res: Result, key: str) -> Finding:
    """COH902: candidates of the over-approximation that did not replay."""
    return Finding(
        SPURIOUS_TRACE,
        f"{res.spurious} candidate counterexample(s) for `{_text(req)}` from the "
        "over-approximation did not reproduce in simulation",
        req.span,
        notes=res.notes[:3],
        key=f"spurious:{key}",
    )


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


def always_violated(ts: TransitionSystem, req: Requirement, cex: Counterexample) -> str:
    """COH501."""
    return f"`{_text(req)}` is violated at t={cex.tick * ts.tick:g}s"


def response_violated(ts: TransitionSystem, req: Requirement, cex: Counterexample) -> str:
    """COH502."""
    return f"`{_text(req)}`: no response by the deadline at t={cex.tick * ts.tick:g}s"


def flapping(ts: TransitionSystem, req: Requirement, cex: Counterexample) -> str:
    """COH503."""
    assert req.state is not None
    t = cex.tick * ts.tick
    st = ts.state(req.state)
    x = cex.trace.state(req.state)[0, : cex.tick + 2]
    lo, hi = show(float(x.min()), st.scale), show(float(x.max()), st.scale)
    return (
        f"`{req.state}` flaps: more than {req.max_reversals} reversals within "
        f"{req.within * ts.tick:g}s by t={t:g}s (between {lo} and {hi})"
    )


MESSAGES: Final[dict[str, Callable[[TransitionSystem, Requirement, Counterexample], str]]] = {
    ALWAYS_VIOLATED: always_violated,
    RESPONSE_VIOLATED: response_violated,
    FLAPPING: flapping,
}


def _flapping_help(ts: TransitionSystem, req: Requirement) -> str:
    assert req.state is not None
    return flapping_help(ts, req.state, req.within)


def _always_help(ts: TransitionSystem, req: Requirement) -> str:
    return "the trace shows the inputs and loop actions that lead to the violation"


def _response_help(ts: TransitionSystem, req: Requirement) -> str:
    return "the trace shows the trigger and the ticks in which the response did not come"


HELP: Final[dict[str, Callable[[TransitionSystem, Requirement], str]]] = {
    ALWAYS_VIOLATED: _always_help,
    RESPONSE_VIOLATED: _response_help,
    FLAPPING: _flapping_help,
}


def _param_notes(ts: TransitionSystem, params: dict[str, float] | Any) -> tuple[str, ...]:
    out = []
    for p in ts.params:
        if not p.internal and p.lo < p.hi and p.name in params:
            out.append(f"uncertain parameter {p.name} = {show(params[p.name], p.scale)} {p.unit}")
    return tuple(out)


# ---- what to suggest for a flapping actuator -------------------------------------------------


def flapping_help(ts: TransitionSystem, state: str, within: int) -> str:
    """The help line of a flapping finding (COH503), from the shaping the loops on ``state``
    already have: a stabilization window (up, down), a hold band (tolerance or deadband, in
    the shaping or as a hold branch of the law), a cooldown, a measurement lag. What a loop
    has is not suggested again; what it has is offered to lengthen or widen.

    >>> from coherence.compile import compile_text
    >>> ts = compile_text("a.coh", '''system s { tick 15s
    ...   state r in [1, 40] init 10  state y in [0, 100] init 50  next y = 2 * r
    ...   loop hpa { senses y delay 30s actuates r to r * y / 20 stabilize down 300s }
    ...   require no flapping of r max 2 within 5min }''').systems[0]
    >>> flapping_help(ts, "r", 20)  # doctest: +NORMALIZE_WHITESPACE
    '`hpa` already has `stabilize down 300s`: lengthen it or add `stabilize up`; add a
    tolerance band (`tolerance 10%`) or a deadband; add a cooldown (`cooldown 300s`); or
    shorten its measurement lag (30s delay)'
    """
    tick = ts.tick

    def nodes_of(e: Any) -> list[Any]:
        out = [e]
        for name in ("left", "right", "arg", "cond", "then", "other"):
            sub = getattr(e, name, None)
            if sub is not None:
                out += nodes_of(sub)
        for sub in getattr(e, "args", ()) or ():
            out += nodes_of(sub)
        return out

    lets = {d.name: d for d in ts.lets}
    parts: list[str] = []
    for lp in ts.loops:
        acts = [a for a in lp.actions if a.state == state]
        if not acts:
            continue
        a = acts[0]
        recs = {a.recommendation, *a.history}
        up = down = 0
        if a.target in lets:
            for node in nodes_of(lets[a.target].expr):
                if (
                    isinstance(node, Call)
                    and node.fn in ("min", "max")
                    and len(node.args) > 1
                    and all(getattr(x, "name", None) in recs for x in node.args)
                ):
                    n = len(node.args) * lp.period
                    if node.fn == "min":
                        up = n
                    else:
                        down = n
        band = a.changes in lets and any(
            isinstance(n, Unary) and n.op == "not" for n in nodes_of(lets[a.changes].expr)
        )
        band = band or any(
            isinstance(n, Ite)
            and (getattr(n.then, "name", None) == state or getattr(n.other, "name", None) == state)
            for n in nodes_of(a.law)
        )
        w = within * tick
        mine: list[str] = []
        if down and up:
            mine.append(
                f"`{lp.name}` already has `stabilize up {up * tick:g}s` and `stabilize down "
                f"{down * tick:g}s`: lengthen them"
            )
        elif down:
            mine.append(
                f"`{lp.name}` already has `stabilize down {down * tick:g}s`: lengthen it or "
                "add `stabilize up`"
            )
        elif up:
            mine.append(
                f"`{lp.name}` already has `stabilize up {up * tick:g}s`: add "
                f"`stabilize down {w:g}s`"
            )
        else:
            mine.append(f"add a stabilization window to `{lp.name}` (`stabilize down {w:g}s`)")
        if band:
            mine.append("widen its tolerance band or deadband, which it already has")
        else:
            mine.append("add a tolerance band (`tolerance 10%`) or a deadband")
        if lp.cooldown > 1:
            mine.append(f"lengthen its cooldown (now {lp.cooldown * tick:g}s)")
        else:
            mine.append(f"add a cooldown (`cooldown {w:g}s`)")
        lag = [(s.delay, s.window) for s in lp.sensors if s.delay or s.window > 1]
        if lag:
            d, win = max(lag)
            what = [f"{d * tick:g}s delay"] if d else []
            what += [f"{win * tick:g}s window"] if win > 1 else []
            mine[-1] += f"; or shorten its measurement lag ({', '.join(what)})"
        parts.append("; ".join(mine))
    if not parts:
        return "add a stabilization window (`stabilize down`), a deadband or a cooldown"
    return "; ".join(parts)


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


def matrix(ts: TransitionSystem, pairs: list[conflicts.PairResult]) -> Table:
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


def coherent(
    ts: TransitionSystem, req: Requirement, pairs: list[conflicts.PairResult]
) -> tuple[Verdict, list[Finding]]:
    by_actor: dict[str, list[conflicts.PairResult]] = {}
    for p in pairs:
        if p.verdict == conflicts.CONFLICT and p.witness is not None:
            by_actor.setdefault(p.actor, []).append(p)
    findings: list[Finding] = [objective_conflict(ts, group) for group in by_actor.values()]
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
        findings.append(unknown_pairs(req, open_pairs, n, T))
    else:
        status = Status.PROVED
        n_aligned = sum(p.verdict == conflicts.ALIGNED for p in pairs)
        reason = f"{n_aligned} coupled pair(s) proved aligned over {conflicts.scope_text(ts)}"
    codes = tuple(sorted({f.code for f in findings}))
    return Verdict(req.text, req.kind, status, req.span, "smt", depth, reason, codes), findings


def unknown_pairs(
    req: Requirement, open_pairs: list[conflicts.PairResult], n: int, T: int
) -> Finding:
    """COH901 for ``coherent``: pairs neither found in conflict nor proved aligned."""
    return Finding(
        SOLVER_UNKNOWN,
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


def objective_conflict(ts: TransitionSystem, group: list[conflicts.PairResult]) -> Finding:
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
        unit = "" if obj.unit in ("1", "bool") else f" [{obj.unit}]"
        extra = ((f"{obj.name} (acting){unit}", obj.expr.name),)
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
        OBJECTIVE_CONFLICT,
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


def influence_cycle(ts: TransitionSystem, cycle: tuple[str, ...]) -> Finding:
    """COH403: loops that influence each other in a cycle."""
    path = " -> ".join((*cycle, cycle[0]))
    return Finding(
        INFLUENCE_CYCLE,
        f"loops influence each other in a cycle: {path}",
        ts.loop(cycle[0]).span,
        related=tuple(ts.loop(n).span for n in cycle[1:]),
        key=f"cycle:{path}",
    )


# ---- bad equilibria -------------------------------------------------------------------------


def equilibrium(
    ts: TransitionSystem,
    req: Requirement,
    eq: equilibria.EquilibriumResult,
    sustaining: Sustainers,
) -> tuple[Verdict, list[Finding]]:
    """The verdict of ``no bad equilibrium`` and its findings (COH504, or COH901)."""
    findings: list[Finding] = []
    codes: tuple[str, ...] = ()
    reason = eq.reason
    if eq.status is Status.FALSIFIED and eq.state is not None:
        codes = (BAD_EQUILIBRIUM,)
        finding, reason = bad_equilibrium(ts, req, eq, sustaining)
        findings.append(finding)
    elif eq.status is Status.UNKNOWN:
        codes = (SOLVER_UNKNOWN,)
        findings.append(unknown_equilibrium(req, eq))
    v = Verdict(req.text, req.kind, eq.status, req.span, "smt", ts.hyperperiod, reason, codes)
    return v, findings


def bad_equilibrium(
    ts: TransitionSystem,
    req: Requirement,
    eq: equilibria.EquilibriumResult,
    sustaining: Sustainers,
) -> tuple[Finding, str]:
    """COH504: a self-sustaining state that violates a keep-objective at nominal input, with
    the trigger into it and the loop that sustains it (``sustaining``:
    :func:`coherence.formal.analyze.sustainers`); and the verdict's reason."""
    assert eq.state is not None
    obj = ts.objective(eq.objective)
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
        trigger_data: object = {
            "burst_size": trig.level / (u.scale or 1.0),
            "duration_s": trig.ticks * ts.tick,
            "input": trig.input,
        }
        reason = (
            f"`{obj.name}` violated at a self-sustaining state; trigger: {trig.input} "
            f"{show(trig.level, u.scale)} {u.unit} for {trig.ticks * ts.tick:g}s"
        )
    else:
        notes.append(
            "no burst of a single input within the search grid reaches it from the operating point"
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
        trigger_data = None
    help_line = _sustain_help(ts, eq, obj, notes, sustaining)
    finding = Finding(
        BAD_EQUILIBRIUM,
        f"a self-sustaining state violates `{obj.name}` at nominal input (metastable failure)",
        req.span,
        notes=tuple(notes),
        help=help_line,
        related=(obj.span,),
        trace=view,
        data=(("trigger", trigger_data),),
        key=f"bad_equilibrium:{obj.name}",
    )
    return finding, reason


def unknown_equilibrium(req: Requirement, eq: equilibria.EquilibriumResult) -> Finding:
    """COH901 for ``no bad equilibrium``."""
    return Finding(
        SOLVER_UNKNOWN,
        f"`{_text(req)}` is neither proved nor falsified: "
        + (f"{eq.evidence}; " if eq.evidence else "")
        + f"the solver: {eq.reason}",
        req.span,
        notes=eq.notes[:3],
        help="raise the solver's rlimit; unknown never counts as a pass",
        key="unknown:bad_equilibrium",
    )


def _sustain_help(
    ts: TransitionSystem,
    eq: equilibria.EquilibriumResult,
    obj: Any,
    notes: list[str],
    found: Sustainers,
) -> str:
    """The help line of a bad equilibrium, from the case: the loop whose release lets the
    system recover (``found``, added to ``notes`` with the figures), else the generic
    advice."""
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
        f"{show(after, obj.scale)}{u} in {stay_ticks(ts) * ts.tick:g}s"
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
