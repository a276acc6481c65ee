"""Proofs for all time: k-induction, the localization and dwell-time proofs, invariants.

k-induction (:func:`k_induction`) proves an ``always`` requirement for all time: the step
(:class:`Step`) runs from any state within the declared bounds (registers within their
signal's range, integer states integral, within the reachable enclosure), any phase of the
hyperperiod (one boolean per start phase) and with the simple-path constraint between states
of the same phase; the base case is BMC to depth ``k - 1`` (:func:`coherence.smt.bmc.bmc`,
run by the caller). :func:`k_induction_with_invariants` strengthens the step with auxiliary
invariants (:mod:`coherence.smt.invariants`).

``no flapping`` (and ``always`` of actuators alone) is first tried on the localization
abstraction (:func:`coherence.smt.localize.localize`): :func:`prove_dwell` from dwell-time
lemmas of the shaping, :func:`prove_localized` by k-induction with the window in the path.
Their ``unsat`` answers are proofs for the system; their models are never replayed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import numpy as np
import z3

from coherence.intervals.reach import enclosure_box
from coherence.ir.integers import integer_states
from coherence.ir.nodes import Phase, Requirement, TransitionSystem, names_in, walk
from coherence.results import Status
from coherence.simulate.engine import evaluate
from coherence.smt.bmc import (
    FLAP_EPS,
    Flapping,
    Method,
    Result,
    Run,
    horizon_of,
    mode_name,
    modes_for,
)
from coherence.smt.encode import EXACT, OVERAPPROX, Encoder
from coherence.smt.invariants import Invariants, houdini, mine
from coherence.smt.invariants import encode as encode_invariant
from coherence.smt.localize import Localization, localize
from coherence.smt.options import SmtOptions
from coherence.smt.replay import replay, scenario_from_model
from coherence.smt.solver import (
    Answer,
    Outcome,
    SolverStats,
    assert_all,
    check,
    ctx,
    isolated,
    new_solver,
    own_context,
)
from coherence.smt.terms import Cond, EncodeError, Num, SymbolicPhase, const
from coherence.smt.unroll import Inputs, Path, free_start, param_values, signal_ranges


def induction_depth(ts: TransitionSystem, options: SmtOptions) -> int:
    if options.induction_depth is not None:
        return max(1, options.induction_depth)
    return max(2, min(12, ts.hyperperiod + 1))


@isolated
def k_induction(
    ts: TransitionSystem,
    req: Requirement,
    options: SmtOptions,
    stats: SolverStats,
    kmax: int | None = None,
    inv: Invariants | None = None,
) -> tuple[int | None, str]:
    """The smallest ``k <= kmax`` whose induction step holds, or None with the reason.

    With ``inv`` the step starts within the invariants' box and assumes them at every tick.
    """
    assert req.kind == "always" and req.cond is not None
    kmax = kmax or induction_depth(ts, options)
    # with invariants: one linear step in auto mode (its unsat is a proof; exact nonlinear
    # arithmetic over the many assumed relations rarely decides within the limit)
    modes = modes_for(options) if inv is None or options.mode == EXACT else [OVERAPPROX]
    steps = [Step(ts, req, m, stats, inv) for m in modes]
    reason = ""
    budget = 2 * options.rlimit  # the whole attempt; a proof is a bonus, not a requirement
    for k in range(1, kmax + 1):
        for st in steps:
            if st.mode == EXACT and steps[0] is not st and not steps[0].enc.relaxed:
                continue
            if budget <= 0:
                return None, f"k-induction stopped at k={k}: its resource budget is spent"
            try:
                ans = st.query(k, min(options.rlimit, budget))
            except EncodeError as exc:
                return None, f"cannot encode the system: {exc}"
            budget -= ans.rlimit_used
            if ans.unsat:
                return k, ""
            if ans.unknown:
                reason = f"k={k}, {mode_name(st.mode)}: {ans.reason}"
                continue
            if st.real_step_counterexample(ans.model, k):
                break  # the step really fails at this k: no other mode can prove it
    return None, reason or f"not {kmax}-inductive"


class Step:
    """The induction step from any admissible state, in one mode, built incrementally.

    ``always`` and ``flapping`` requirements; with ``local``, of the localization abstraction
    (:func:`localize`: the cone of influence of the requirement, the abstracted control laws
    free). For ``flapping`` the property at tick ``t`` is "no violation of the window that
    ends at ``t``", counting only the reversals in the path, and the direction before tick 0
    is free (:class:`Flapping`); a violation is asked only at ``k >= W - 1``, where the
    window of ``W`` ticks lies in the path.
    """

    def __init__(
        self,
        ts: TransitionSystem,
        req: Requirement,
        mode: str,
        stats: SolverStats,
        inv: Invariants | None = None,
        local: Localization | None = None,
    ):
        self.ts = ts
        self.req = req
        self.mode = mode
        self.stats = stats
        self.inv = inv
        laws = local.laws if local is not None else None
        tag = f"k{mode[0]}{'i' if inv else ''}{'l' if local else ''}."
        enc = Encoder(ts, mode, tag=tag, laws=laws)
        self.enc = enc
        system = local.system if local is not None else ts
        params = param_values(enc, ts)
        ints = integer_states(system)
        ranges = signal_ranges(ts, params)
        # every reachable state lies in the reachable enclosure, so the step may start there
        # (and within the invariants' box): the states it leaves out no run reaches
        box = dict(enclosure_box(ts) or {})
        for name, iv in (inv.box if inv else {}).items():
            box[name] = box[name].meet(iv) if name in box else iv
        start = free_start(enc, system, params, ints, box or None, ranges)
        h = ts.hyperperiod
        self.phase = SymbolicPhase(f"{enc.tag}phase", h)
        enc.constraints += self.phase.constraints()
        inputs = Inputs(enc, ts, "held" if req.inputs == "held" else "free")
        self.path = Path(
            enc,
            params,
            inputs,
            start,
            self.phase if h > 1 else 0,
            ints,
            system=local.system if local is not None else None,
        )
        self.flap = (
            Flapping(enc, self.path, req, free_last=True) if req.kind == "flapping" else None
        )
        self.solver = new_solver()
        self.assumed = 0  # ticks whose property is asserted
        self.invariant_ticks = 0  # ticks whose auxiliary invariants are asserted

    def _holds(self, t: int) -> Cond:
        """The property at tick ``t`` (for flapping: the window ending at ``t``)."""
        if self.flap is not None:
            return self.enc.not_(self.flap.violation(t))
        assert self.req.cond is not None
        return self.path.holds(self.req.cond, t)

    def _violated(self, k: int) -> Cond:
        if self.flap is not None:
            return self.flap.violation(k)
        assert self.req.cond is not None
        return self.path.holds(self.req.cond, k, positive=False)

    def _distinct(self, i: int, t: int) -> Any | None:
        """The simple-path constraint between ticks ``i < t`` of the same phase, or None.

        For ``always`` the states differ. For ``flapping`` the state of the product with the
        monitor differs: the system's states, the last direction, or a reversal flag of the
        ``W - 1`` ticks before; only where those flags all lie in the path (``i >= W - 1``).
        A shortest run from the initial state to a first violation never repeats that state
        (cutting the loop out gives an earlier first violation), so every such run's last
        ``k + 1`` ticks satisfy these constraints and the step still covers it.
        """
        if self.flap is None:
            return _differ(self.path, i, t)
        w = self.req.within
        if i < w - 1:
            return None
        flap = self.flap
        diffs = [_differ(self.path, i, t)]
        (ui, di), (ut, dt) = flap.last[i], flap.last[t]
        diffs += [ui.term != ut.term, di.term != dt.term]
        for m in range(1, w):
            diffs.append(flap.rev(i - m).term != flap.rev(t - m).term)
        return z3.Or(*diffs)

    def query(self, k: int, rlimit: int) -> Answer:
        """Assume the property at ticks 0..k-1; ask for a violation at tick k."""
        path, enc = self.path, self.enc
        h = self.ts.hyperperiod
        while path.depth < k:
            path.extend()
        while self.assumed < k:
            t = self.assumed
            held = self._holds(t)
            ok = enc.and_([held, enc.not_(path.undefined([t]))])
            self.solver.add(ok.term)
            for i in range(t):
                if (t - i) % h == 0:  # simple path between states of the same phase
                    d = self._distinct(i, t)
                    if d is not None:
                        self.solver.add(d)
            self.assumed += 1
        while self.inv is not None and self.invariant_ticks <= k:
            # every state of a defined run satisfies the invariants (invariants.py)
            t = self.invariant_ticks
            inv = enc.and_([encode_invariant(path, c, t) for c in self.inv.cands])
            if inv.value is not True:
                self.solver.add(enc.or_([path.undefined([t]), inv]).term)
            self.invariant_ticks += 1
        violated = self._violated(k)
        bad = enc.or_([violated, path.undefined([k])])
        assert_all(self.solver, enc.drain())
        if bad.value is False:
            return Answer(Outcome.UNSAT, "decided by bounds")
        self.solver.push()
        self.solver.add(bad.term)
        ans = check(self.solver, rlimit, stats=self.stats)
        self.solver.pop()
        return ans

    def real_step_counterexample(self, model: Any, k: int) -> bool:
        """Whether the simulator, run from the model's state, phase and inputs, shows the
        property at ticks 0..k-1 and its violation at tick k."""
        assert self.req.cond is not None
        phase = self.phase.value(model) if not isinstance(self.path.phase, int) else 0
        sc = scenario_from_model(model, self.path, k + 1, phase)
        try:
            trace = replay(self.ts, sc)
            ok = evaluate(self.req.cond, trace)[0]
        except (ValueError, KeyError, FloatingPointError):
            return False
        return bool(np.all(ok[:k] != 0) and ok[k] == 0)


@isolated
def k_induction_with_invariants(
    ts: TransitionSystem,
    req: Requirement,
    options: SmtOptions,
    stats: SolverStats,
    kmax: int | None = None,
) -> tuple[int | None, Invariants | None]:
    """k-induction strengthened with auxiliary invariants (:mod:`coherence.smt.invariants`):
    candidates mined from simulation, the inductive subset found by Houdini (within two
    ``rlimit``), then the step with them assumed at every tick (within twice ``rlimit``)."""
    assert req.kind == "always" and req.cond is not None
    ticks = max(2 * ts.hyperperiod, min(2 * max(1, req.horizon), 1200))
    cands = mine(ts, req, options, ticks)
    inv = houdini(ts, req, cands, options, stats)
    if not inv.cands:
        return None, None
    k, _why = k_induction(ts, req, options, stats, kmax, inv)
    return (k, inv) if k is not None else (None, None)


def _differ(path: Path, i: int, j: int) -> Any:
    a, b = path.state_terms(i), path.state_terms(j)
    diffs = [a[n].term != b[n].term for n in a if not z3.eq(a[n].term, b[n].term)]
    return z3.Or(*diffs) if diffs else z3.BoolVal(False, ctx())


def _flapping_depths(ts: TransitionSystem, req: Requirement) -> range:
    """The ``k`` the flapping step tries: from ``W - 1`` (the window fits in the path) to the
    window plus the longest register chain plus the hyperperiod."""
    regs = max(
        [len(sn.registers) for lp in ts.loops for sn in lp.sensors]
        + [len(a.history) for lp in ts.loops for a in lp.actions]
        + [0]
    )
    w = max(1, req.within)
    return range(w - 1, w + regs + ts.hyperperiod + 1)


LOCAL_MAX_DEPTH = 400  # no attempt when the window alone is longer than this many ticks


def prove_localized(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, stats: SolverStats
) -> tuple[Result | None, str]:
    """:func:`_prove_localized` in a Z3 context of its own, even inside another analysis:
    the terms it creates do not change the order of the caller's, so what runs after a
    failed attempt (BMC, k-induction) answers exactly as without it."""
    with own_context():
        return _prove_localized(ts, req, options, stats)


def _prove_localized(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, stats: SolverStats
) -> tuple[Result | None, str]:
    """k-induction of a ``flapping`` (or ``always``) requirement on the localization
    abstraction (:func:`localize`): the control laws free, the shaping exact.

    The step (:class:`Step` with the abstraction) runs from any admissible state of the cone
    (declared bounds, registers within their signal's range, integer states integral), any
    start phase, with the simple-path constraint, and for flapping the direction before the
    start free; it assumes the property at ticks ``0..k-1`` (windows counting only the
    reversals in the path, a weaker assumption) and asks for a violation at ``k``, for ``k``
    from ``W - 1`` (the window fits in the path) to ``W`` plus the longest register chain plus
    the hyperperiod (``always``: ``1..induction_depth``). The base case is BMC of the
    abstraction from the initial state, ticks ``0..k-1``.

    Soundness: every run of the system is a run of the abstraction (the laws take real
    values in their enclosures), restricted to the cone. Suppose a run violates at some tick;
    take one whose first violation ``d`` is earliest over all runs. ``d >= k`` by the base
    case. Its ticks ``d-k..d`` start at an admissible state at some phase, with some last
    direction, hold no violation at ``d-k..d-1`` (the counts in the path are at most the
    true ones), and violate at ``d`` with the whole window in the path; they satisfy the
    simple-path constraint (a repeated state of the product with the monitor could be cut out
    for an earlier first violation): a model of the step, which is unsat. So no run violates,
    at any tick. A model of either query proves nothing: it is never replayed or reported.

    ``always`` is tried only when the cone holds no plant state (a bound on actuators, their
    history and cooldowns: cheap); ``flapping`` always.

    Returns the ``proved`` result, or None and why not. The attempt spends at most half of
    ``options.budget`` (the step at most twice ``options.rlimit`` of it), rlimit only.
    """
    if req.kind == "flapping":
        assert req.state is not None
        roots = {req.state}
        depths = _flapping_depths(ts, req)
        if depths.start > LOCAL_MAX_DEPTH:
            return None, f"the window ({req.within} ticks) is too long to unroll"
    else:
        assert req.kind == "always" and req.cond is not None
        roots = set(names_in(req.cond))
        depths = range(1, induction_depth(ts, options) + 1)
    local = localize(ts, roots)
    if local is None:
        return None, "no control law to abstract"
    if req.kind == "always" and any(st.kind == "plant" for st in local.system.states):
        # cheap cases only: a bound on actuators, their history and cooldowns
        return None, "the property depends on the plant"
    budget = options.budget // 2
    step_budget = min(budget, 2 * options.rlimit)
    modes = modes_for(options)
    try:
        steps = [Step(ts, req, m, stats, local=local) for m in modes]
        found: int | None = None
        why = ""
        for k in depths:
            for st in steps:
                if st.mode == EXACT and steps[0] is not st and not steps[0].enc.relaxed:
                    continue  # a linear abstraction: both encodings are the same
                if step_budget <= 0:
                    return None, f"the step's resource budget is spent at k={k}"
                ans = st.query(k, min(options.rlimit, step_budget))
                step_budget -= ans.rlimit_used
                budget -= ans.rlimit_used
                if ans.unsat:
                    found = k
                    break
                why = f"k={k}: {'a model' if ans.sat else ans.reason}"
                if ans.sat and not st.enc.relaxed:
                    break  # an exact model of the abstraction: no other mode differs
            if found is not None:
                break
        if found is None:
            return None, f"the abstraction is not k-inductive ({why})"
        k = found
        base = _base_localized(ts, req, local, k, options, stats, budget)
        if base:
            return None, f"base case: {base}"
    except EncodeError as exc:
        return None, f"cannot encode the abstraction: {exc}"
    loops = ", ".join(f"`{n}`" for n in local.loops)
    shaping = _shaping_words(ts, local)
    detail = (
        f"{k}-inductive with the control laws abstracted ({loops}): the property follows "
        f"from the shaping ({shaping}) alone (k-induction; base case: BMC of the abstraction "
        f"to depth {k})"
    )
    proof = Result(
        Status.PROVED, horizon_of(req, options), detail, None, (), 0, k, method=Method.LOCALIZED
    )
    return proof, ""


def max_reversals(window: int, after_up: int, after_down: int) -> int:
    """The most reversals that fit in ``window`` consecutive ticks when a reversal to "up"
    is followed by the next reversal no sooner than ``after_up`` ticks later, and one to
    "down" no sooner than ``after_down`` (both at least 1): the greedy packing from either
    kind of first reversal.

    >>> max_reversals(24, 3, 28), max_reversals(24, 3, 3), max_reversals(1, 5, 5)
    (2, 8, 1)
    """
    best = 0
    for first_up in (True, False):
        t, n, up = 0, 0, first_up
        while t <= window - 1:
            n += 1
            t += after_up if up else after_down
            up = not up
        best = max(best, n)
    return best


def prove_dwell(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, stats: SolverStats
) -> tuple[Result | None, str]:
    """:func:`_prove_dwell` in a Z3 context of its own (see :func:`prove_localized`)."""
    with own_context():
        return _prove_dwell(ts, req, options, stats)


def _prove_dwell(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, stats: SolverStats
) -> tuple[Result | None, str]:
    """``no flapping`` for all time from dwell-time lemmas of the localization abstraction.

    Two families of bounded lemmas, each over a run segment of the abstraction
    (:func:`localize`: the control laws free within their enclosures, the shaping exact) from
    any admissible state of the cone (within the reachable enclosure) at any phase, inputs
    free per tick:

    - ``U(j)``: a move up at tick 0 is never followed, after ``j - 1`` ticks without a move,
      by a move down at tick ``j``;
    - ``D(j)``: the same with up and down exchanged.

    ``Du`` is the largest ``d < W`` with ``U(1..d)`` proved (unsat), ``Dd`` likewise. Then on
    every run a move down never comes within ``Du`` ticks after a move up: take the first
    move down after a move up; the last move before it is a move up, at most as far back, and
    the segment from that move up is a segment of the lemmas (every segment of every run
    starts at a state in the enclosure and the laws take real values in theirs). Two
    reversals therefore follow each other by more than ``Dd`` ticks after a reversal down
    (the next is a move up after a move down) and more than ``Du`` after a reversal up;
    :func:`max_reversals` bounds the reversals that fit in any window of ``W`` ticks, and at
    most ``r`` proves the requirement for all time, from the initial state included: no base
    case is needed.

    The segments are encoded in over-approximation with loose extrema (:class:`Encoder`:
    more runs, so an ``unsat`` stays a proof) and the ticks between the two moves hold the
    actuated state (a run without a move there is such a run). Only a cone whose every
    operation is defined is tried. A model proves nothing (it is a run of the abstraction)
    and only ends the lemma's scan. The scan extends the direction that brings the bound
    soonest within ``r``; it spends at most ``options.budget``, each query at most twice
    ``options.rlimit``, rlimit only.
    """
    assert req.kind == "flapping" and req.state is not None
    w, r = max(1, req.within), req.max_reversals
    scanned = _dwell_scan(
        ts, req, options, stats, lambda du, dd: max_reversals(w, du + 1, dd + 1) <= r
    )
    if isinstance(scanned, str):
        return None, scanned
    du, dd, why, local = scanned
    most = max_reversals(w, du + 1, dd + 1)
    if most > r:
        return None, (
            f"the dwell times proved (no move down for {du} ticks after a move up, no move up "
            f"for {dd} after a move down) allow {most} reversals in {w} ticks"
            + (f"; {why}" if why else "")
        )
    loops = ", ".join(f"`{n}`" for n in local.loops)
    shaping = _shaping_words(ts, local)
    parts = [
        f"no move {b} within {d} ticks of a move {a}"
        for a, b, d in (("up", "down", du), ("down", "up", dd))
        if d > 0
    ]
    detail = (
        f"{' and '.join(parts)}, whatever the control laws ({loops}) recommend: the shaping "
        f"({shaping}) alone fits at most {most} reversals in any {w} ticks (dwell-time lemmas "
        f"of the localization abstraction, for all time)"
    )
    k = max(du, dd) + 1
    proof = Result(
        Status.PROVED, horizon_of(req, options), detail, None, (), 0, k, method=Method.DWELL
    )
    return proof, ""


def dwell_times(
    ts: TransitionSystem, req: Requirement, options: SmtOptions, stats: SolverStats
) -> tuple[int, int] | str:
    """The dwell times :func:`prove_dwell` proves, each scanned as far as it goes (at most
    the window less a tick): ``(Du, Dd)``, no move down within ``Du`` ticks after a move up
    and no move up within ``Dd`` after a move down, on every run; or why none."""
    with own_context():
        scanned = _dwell_scan(ts, req, options, stats, lambda du, dd: False)
    return scanned if isinstance(scanned, str) else scanned[:2]


def _dwell_scan(
    ts: TransitionSystem,
    req: Requirement,
    options: SmtOptions,
    stats: SolverStats,
    enough: Callable[[int, int], bool],
) -> tuple[int, int, str, Localization] | str:
    """The lemmas of :func:`_prove_dwell`, extended until ``enough(Du, Dd)`` or no further:
    ``(Du, Dd, why the last one failed, the abstraction)``, or why none was tried."""
    assert req.state is not None
    w = max(1, req.within)
    if w - 1 > LOCAL_MAX_DEPTH:
        return f"the window ({w} ticks) is too long to unroll"
    local = localize(ts, {req.state})
    if local is None:
        return "no control law to abstract"
    periods = [
        n.period
        for e in [*(d.expr for d in local.system.lets), *(st.update for st in local.system.states)]
        for n in walk(e)
        if isinstance(n, Phase)
    ]
    hyper = math.lcm(1, *periods)
    budget = [options.budget]
    try:
        scans = {
            up: [_DwellScan(ts, req, local, up, ph, stats) for ph in range(hyper)]
            for up in (True, False)
        }
    except EncodeError as exc:
        return f"cannot encode the abstraction: {exc}"
    if any(sc.undefined for scs in scans.values() for sc in scs):
        return "an operation of the cone may be undefined"
    dwell = {True: 0, False: 0}
    open_ = {True: w > 1, False: w > 1}
    why = ""
    while not enough(dwell[True], dwell[False]):
        # extend the direction that reaches `enough` with the fewest lemmas (ties: up first)
        best: tuple[int, bool] | None = None
        for up in (True, False):
            if not open_[up]:
                continue
            other = dwell[not up]
            need = next(
                (d for d in range(dwell[up] + 1, w) if enough(*((d, other) if up else (other, d)))),
                w,
            )
            cand = (need - dwell[up], not up)
            if best is None or cand < best:
                best = cand
        if best is None:
            break
        up = not best[1]
        j = dwell[up] + 1
        try:
            ok, why_j = _dwell_step(scans[up], j, 2 * options.rlimit, budget)
        except EncodeError as exc:
            return f"cannot encode the abstraction: {exc}"
        if ok:
            dwell[up] = j
            open_[up] = j < w - 1
        else:
            open_[up] = False
            why = why_j
    return dwell[True], dwell[False], why, local


class _DwellScan:
    """The run segments of one dwell lemma (:func:`_prove_dwell`) from one start phase: a
    move in direction ``up`` at tick 0, no move at ticks ``1..j-1`` and the opposite move at
    tick ``j``, incrementally (one solver, assumptions per ``j``)."""

    def __init__(
        self,
        ts: TransitionSystem,
        req: Requirement,
        local: Localization,
        up: bool,
        phase: int,
        stats: SolverStats,
    ) -> None:
        assert req.state is not None
        self.state = req.state
        self.up = up
        self.stats = stats
        enc = self.enc = Encoder(
            ts,
            OVERAPPROX,
            tag=f"dw{'u' if up else 'd'}{phase}.",
            laws=local.laws,
            loose_extrema=True,
        )
        params = param_values(enc, ts)
        ints = integer_states(local.system)
        box = dict(enclosure_box(ts) or {})
        start = free_start(enc, local.system, params, ints, box or None, signal_ranges(ts, params))
        self.path = Path(
            enc, params, Inputs(enc, ts, "free"), start, phase, ints, system=local.system
        )
        self.solver = new_solver()
        self.still: list[Any] = []  # "no move at tick i", i = 1, 2, ...
        self.moves = [self._moves(0)]
        self.solver.add(*enc.drain(), self.moves[0][0 if up else 1].term)
        self.undefined = self.path.undefined([0]).value is not False

    def _moves(self, t: int) -> tuple[Cond, Cond]:
        path, enc = self.path, self.enc
        while path.depth < t + 1:
            path.extend()
        x0, x1 = path.value(t, self.state), path.value(t + 1, self.state)
        assert isinstance(x0, Num) and isinstance(x1, Num)
        d = enc.sub(x1, x0)
        eps = const(FLAP_EPS)
        return enc.compare(">", d, eps), enc.compare("<", d, enc.neg(eps))

    def _literal(self, name: str, c: Cond) -> Any:
        lit = z3.Bool(f"{self.enc.tag}{name}", ctx())
        self.solver.add(lit == c.term)
        return lit

    def query(self, j: int, rlimit: int) -> Answer:
        """Whether the opposite move can come at tick ``j`` after no move at ``1..j-1``."""
        enc = self.enc
        while len(self.moves) <= j:
            t = len(self.moves)
            self.moves.append(self._moves(t))
            if t >= 2:
                u, d = self.moves[t - 1]
                self.still.append(self._literal(f"still@{t - 1}", enc.not_(enc.or_([u, d]))))
        if self.path.undefined([j]).value is not False:
            return Answer(Outcome.UNKNOWN, "an operation of the cone may be undefined")
        then = self.moves[j][1 if self.up else 0]
        assert_all(self.solver, enc.drain())
        if then.value is False:
            return Answer(Outcome.UNSAT, "decided by bounds")
        lit = self._literal(f"then@{j}", then)
        return check(self.solver, rlimit, [*self.still[: j - 1], lit], stats=self.stats)


def _dwell_step(
    scans: list[_DwellScan], j: int, rlimit: int, budget: list[int]
) -> tuple[bool, str]:
    """Lemma ``j`` of one direction over every start phase: proved, or why not."""
    for sc in scans:
        if budget[0] <= 0:
            return False, f"the resource budget is spent at {j} ticks"
        ans = sc.query(j, min(rlimit, budget[0]))
        budget[0] -= ans.rlimit_used
        if not ans.unsat:
            return False, f"{j} ticks: {'a model of the abstraction' if ans.sat else ans.reason}"
    return True, ""


def _shaping_words(ts: TransitionSystem, local: Localization) -> str:
    words: list[str] = []
    for lp in ts.loops:
        if lp.name not in local.loops:
            continue
        if any(a.history for a in lp.actions):
            words.append("stabilization window")
        if lp.cooldown > 1:
            words.append("cooldown")
    words += ["rate limits", "limits", "rounding"]
    return ", ".join(dict.fromkeys(words))


def _base_localized(
    ts: TransitionSystem,
    req: Requirement,
    local: Localization,
    k: int,
    options: SmtOptions,
    stats: SolverStats,
    budget: int,
) -> str:
    """BMC of the abstraction from the initial state, ticks ``0..k-1``: "" when every depth
    is unsat (then no run of the system violates there), else why not."""
    order = modes_for(options)
    runs: dict[str, Run] = {}
    for d in range(k):
        decided = False
        why = ""
        for m in order:
            if m == EXACT and OVERAPPROX in runs and not runs[OVERAPPROX].enc.relaxed:
                continue
            if budget <= 0:
                return f"the resource budget is spent at depth {d}"
            run = runs.get(m)
            if run is None:
                run = runs[m] = Run(ts, req, m, stats, local)
                for j in range(d):
                    run.safe(j)
            ans = run.query(d, Fraction(0), min(options.rlimit, budget))
            budget -= ans.rlimit_used
            if ans.unsat:
                decided = True
                break
            why = f"depth {d}: {'a model of the abstraction' if ans.sat else ans.reason}"
        if not decided:
            return why
        for run in runs.values():
            run.safe(d)
    return ""
