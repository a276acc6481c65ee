"""The solver's side of the conflict analysis: one query per acting loop, asked tick by tick.

Can A's action make one of B's objectives materially worse, from a start within the
*reachable enclosure* (:func:`start_ranges`: the hull of every state over all runs from the
initial state, inputs free per tick, by interval reachability with widening; the declared
bounds when no enclosure closes), for some input sequence? :class:`ActorQuery` asks whether
the run where A acts is worse for B's objectives than the counterfactual where A holds
(:func:`hold_loop`), by more than B's tolerance and floor, at a tick ``j``. Both runs start
from the same state, at the same phase of the hyperperiod (symbolic: any phase), and see the
same inputs and parameters. ``unsat`` proves the pair aligned at that tick over every state
the system can reach. A model is a *candidate* only (:class:`Witness`, replayed by
:func:`replay_pair`): its start is a state of a box that no run was shown to reach, so it is
never a finding.

How the work is shared. One :class:`Encoding` per mode holds the start (free in the
enclosure, or warm: one tick after such a state), the inputs, the parameters, the symbolic
phase and the acting run, for every actor; one :class:`ActorQuery` per acting loop A holds
A's counterfactual run and one solver, and serves every B: the goals differ only in B's
objectives, each asked under an assumption literal, and a proved tick stays in the solver as
a fact. The runs (:class:`Run`) encode only the cone of influence of what is asked, unrolled
lazily to the tick asked. The counterfactual reuses the acting run's terms for every value
A's action cannot have reached yet.

Which pairs are asked, on what budget, and what their answers mean for the
objective-alignment matrix is decided in :mod:`coherence.formal.conflicts`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np
import z3

from coherence.intervals.arith import Interval
from coherence.intervals.reach import reachable
from coherence.ir.deps import influence, objectives_of
from coherence.ir.integers import integer_states
from coherence.ir.nodes import Expr, ObjectiveIR, TransitionSystem, names_in
from coherence.ir.simplify import for_solver
from coherence.ir.transform import hold_loop
from coherence.simulate.engine import Compiled, Trace, compile_system, simulate
from coherence.smt.encode import Encoder, Frame
from coherence.smt.objectives import trace_worse, worse
from coherence.smt.replay import Scenario, rotate_phases, value
from coherence.smt.solver import (
    Answer,
    Outcome,
    SolverStats,
    assert_all,
    check,
    ctx,
    new_solver,
)
from coherence.smt.terms import (
    Cond,
    EncodeError,
    Num,
    Relaxation,
    SymbolicPhase,
    SymbolicTick,
    const,
    rational,
    real,
)
from coherence.smt.unroll import Inputs, free_start, param_values, signal_ranges, slew_bounds


@dataclass(frozen=True, slots=True)
class Witness:
    """A replayed conflict: both runs, the objective and the tick at which A's run is worse."""

    scenario: Scenario
    acting: Trace
    holding: Trace
    objective: str
    tick: int


Key = tuple[str, int, str]  # (run, tick, name): one encoded value


class Run:
    """An unrolled run from a free start that encodes only what it is asked for.

    :meth:`need` encodes some names at tick ``t`` and, backwards, exactly what they read: the
    lets of the same tick and, through the state updates, the values of the tick before (the
    cone of influence). Frame 0 holds the free start (every state), the parameters and the
    inputs; later frames hold the parameters, their tick's inputs and what was asked for.

    What encoding one value adds is kept with it (its side constraints in ``emitted``, its
    undefinedness conditions, with their ticks, in ``undefined``), so that a solver can take
    exactly the cone of its goal (:meth:`cone`); whatever is encoded outside a value (bounds
    of new input variables) goes to the shared ``common`` list.

    A run with a ``base`` (the counterfactual of a conflict query) takes from it every name
    that ``differs`` says cannot differ yet: ``differs[n]`` is the first tick at which ``n``
    can differ between the two systems (a name absent from it never does). Those values are
    the base's own terms, so the two runs differ syntactically only where they may differ.
    """

    def __init__(
        self,
        enc: Encoder,
        params: Mapping[str, Num],
        inputs: Inputs,
        start: Mapping[str, Num],
        phase: int | SymbolicPhase,
        ints: set[str],
        system: TransitionSystem,
        label: str,
        common: list[Any],
        order: Iterator[int],
        base: Run | None = None,
        differs: Mapping[str, int] | None = None,
    ) -> None:
        self.enc = enc
        self.ts = for_solver(system)
        self.params = dict(params)
        self.inputs = inputs
        self.phase = phase
        self.ints = ints
        self.label = label
        self.common = common
        self.order = order  # numbers the encoded values, shared by the runs of an encoding
        self.base = base
        self.differs = dict(differs or {})
        self.let_deps = {d.name: names_in(d.expr) for d in self.ts.lets}
        self.update_deps = {s.name: names_in(s.update) for s in self.ts.states}
        self.states = {s.name: s for s in self.ts.states}
        self.emitted: dict[Key, list[Any]] = {}
        self.seq: dict[Key, int] = {}
        self.undefined: dict[Key, list[tuple[int, Any]]] = {}
        self.frames = [self._frame(0)]
        for s in self.ts.states:
            self.frames[0].values[s.name] = start[s.name]

    def _frame(self, index: int) -> Frame:
        tick = (
            self.phase + index if isinstance(self.phase, int) else SymbolicTick(self.phase, index)
        )
        f = Frame(index, tick, {})
        f.values.update(self.params)
        f.values.update(self.inputs.at(index))
        return f

    def _from_base(self, name: str, t: int) -> bool:
        return self.base is not None and self.differs.get(name, t + 1) > t

    def need(self, t: int, names: Iterable[str]) -> Frame:
        """Frame ``t`` with ``names`` encoded (and everything they read, at every tick)."""
        if self.base is not None:
            self.base.need(t, ())  # its frames (and the inputs) first: they are common
        while len(self.frames) <= t:
            self.frames.append(self._frame(len(self.frames)))
        own: list[set[str]] = [set() for _ in range(t + 1)]
        borrowed: list[set[str]] = [set() for _ in range(t + 1)]
        todo = set(names)
        for u in range(t, -1, -1):
            values = self.frames[u].values
            previous: set[str] = set()
            stack = sorted(todo)
            while stack:
                n = stack.pop()
                if n in values or n in own[u] or n in borrowed[u]:
                    continue
                if self._from_base(n, u):
                    borrowed[u].add(n)
                elif n in self.let_deps:
                    own[u].add(n)
                    stack.extend(sorted(self.let_deps[n]))
                elif n in self.update_deps and u > 0:
                    own[u].add(n)
                    previous |= self.update_deps[n]
                else:
                    raise EncodeError(f"no value for `{n}`")
            todo = previous
        for u in range(t + 1):
            if borrowed[u]:
                assert self.base is not None
                src = self.base.need(u, borrowed[u]).values
                for n in borrowed[u]:
                    self.frames[u].values[n] = src[n]
        self.common += self.enc.drain()
        for u in range(t + 1):
            for s in self.ts.states:
                if s.name in own[u]:
                    self._encode(u, s.name, s.update, state=True)
            for d in self.ts.lets:
                if d.name in own[u]:
                    self._encode(u, d.name, d.expr, state=False)
        return self.frames[t]

    def _encode(self, u: int, name: str, e: Expr, state: bool) -> None:
        """Encode one value into frame ``u`` (a state from its update in frame ``u - 1``, a
        let from frame ``u``), keeping what it adds. An undefinedness condition belongs to
        the tick whose frame the expression is evaluated in."""
        at = self.frames[u - 1] if state else self.frames[u]
        known = len(at.undefined)
        self.frames[u].values[name] = self._update(name, at) if state else self.enc.expr(e, at)
        key = (self.label, u, name)
        self.seq[key] = next(self.order)
        self.emitted[key] = self.enc.drain()
        self.undefined[key] = [(at.index, c) for c in at.undefined[known:]]

    def _update(self, name: str, f: Frame) -> Num:
        """The state's value after tick ``f``: its update, clamped to its range (as
        :meth:`coherence.smt.encode.Path.extend` encodes it)."""
        enc = self.enc
        s = self.states[name]
        u = enc.num(enc.expr(s.update, f))
        if math.isfinite(s.lo):
            u = enc.maximum(u, const(s.lo))
        if math.isfinite(s.hi):
            u = enc.minimum(u, const(s.hi))
        iv = u.iv.meet(Interval(s.lo, s.hi))
        if name in self.ints:
            iv = Interval(
                math.ceil(iv.lo) if math.isfinite(iv.lo) else iv.lo,
                math.floor(iv.hi) if math.isfinite(iv.hi) else iv.hi,
            )
        if iv.empty:  # float noise at a bound; the exact term is still right
            iv = u.iv
        if u.const is not None or z3.is_const(u.term) or s.kind == "sensor":
            return Num(u.term, iv, u.const, u.lin, u.alts)
        v = enc.named(f"{self.label}.{name}@{f.index + 1}", iv, integer=name in self.ints)
        enc.constraints.append(v.term == u.term)
        return v

    def cone(self, t: int, names: Iterable[str], seen: set[Key]) -> list[tuple[Run, Key]]:
        """The encoded values that ``names`` at tick ``t`` read, transitively (with the run
        that holds each), leaving out those in ``seen`` and what they read (``seen`` is
        updated). Call :meth:`need` first."""
        out: list[tuple[Run, Key]] = []
        borrowed: dict[int, set[str]] = {}
        todo = set(names)
        for u in range(t, -1, -1):
            previous: set[str] = set()
            stack = list(todo)
            while stack:
                n = stack.pop()
                key = (self.label, u, n)
                if key in seen:
                    continue
                if self._from_base(n, u):
                    borrowed.setdefault(u, set()).add(n)
                    continue
                seen.add(key)
                if key in self.emitted:
                    out.append((self, key))
                if n in self.let_deps:
                    stack.extend(self.let_deps[n])
                elif n in self.update_deps and u > 0:
                    previous |= self.update_deps[n]
            todo = previous
        for u in sorted(borrowed):
            assert self.base is not None
            out += self.base.cone(u, borrowed[u], seen)
        return out


class _Shifted(SymbolicPhase):
    """The phase one tick before a symbolic phase: at ``j`` exactly when the other is at
    ``j + 1`` (the same booleans, rotated; no constraints of its own)."""

    def __init__(self, after: SymbolicPhase) -> None:
        h = after.hyperperiod
        self.hyperperiod = h
        self.select = [after.select[(j + 1) % h] for j in range(h)]


class _BeforeInputs(Inputs):
    """The inputs of the warm-up tick (fresh variables) followed by the witness's own."""

    def __init__(self, enc: Encoder, ts: TransitionSystem, then: Inputs) -> None:
        super().__init__(enc, ts, "free")
        self.then = then
        self.first = {
            u.name: (
                const(u.nominal if u.lo != u.hi else u.lo)
                if u.lo == u.hi
                else enc.named(f"{u.name}@-1", Interval(u.lo, u.hi))
            )
            for u in ts.inputs
        }
        after = then.at(0)
        for u in ts.inputs:  # the witness's first input is one slew away from this one
            if u.lo < u.hi and math.isfinite(u.slew):
                enc.constraints += slew_bounds(after[u.name], self.first[u.name], u.slew)

    def at(self, t: int) -> dict[str, Num]:
        return self.first if t == 0 else self.then.at(t - 1)


def initial_values(ts: TransitionSystem) -> dict[str, Fraction] | None:
    """The initial state as exact numbers (the simulator's tick 0: registers hold their
    signal's initial value), or None when it depends on an uncertain parameter."""
    if any(not p.internal and p.lo < p.hi for p in ts.params):
        return None
    with np.errstate(all="ignore"):
        trace = simulate(ts, 0)
    out: dict[str, Fraction] = {}
    for s in ts.states:
        v = float(trace.state(s.name)[0, 0])
        if not math.isfinite(v):
            return None
        out[s.name] = rational(v)
    return out


def start_ranges(
    ts: TransitionSystem, params: Mapping[str, Num]
) -> tuple[dict[str, Interval], bool]:
    """Where a witness may start: each state's declared range (a register's: its signal's
    range), met with the reachable enclosure when there is one; and whether there is one.

    Every run from the initial state stays within the enclosure at every tick, so a start
    outside it is a state no admissible input sequence leads to: searching only inside it
    drops witnesses that cannot occur, and a proof of alignment inside it covers every
    state the system can be in.
    """
    ranges = signal_ranges(ts, params)
    enc = reachable(ts)
    if enc is None:
        return ranges, False
    out: dict[str, Interval] = {}
    for s in ts.states:
        iv = Interval(s.lo, s.hi)
        if s.name in ranges:
            iv = ranges[s.name].meet(iv)
        lo, hi = enc.box[s.name]
        out[s.name] = iv.meet(Interval(lo, hi))
    return out, True


class Encoding:
    """What every actor's query shares in one encoding mode: one encoder, the start, the
    parameters, the inputs, the symbolic phase and the acting run (``ts``).

    With ``warm`` the start is not a free point of the box but one tick after one (a
    *warm-up tick* of the whole system, inputs free), or the initial state at phase 0: every
    state a run reaches is one of those (the initial state, or the image of the state
    before it, which lies in the reachable enclosure), so proofs still cover every reachable
    state, and a witness starts where the system's own update could have put it: a lagged
    copy agrees with what it copies, a loop's output with its law one tick before.
    """

    def __init__(
        self,
        ts: TransitionSystem,
        mode: str,
        ranges: Mapping[str, Interval],
        warm: bool = False,
    ) -> None:
        self.ts = ts
        self.mode = mode
        enc = Encoder(ts, mode, tag=f"c{mode[0]}.")
        self.enc = enc
        self.params = param_values(enc, ts)
        self.ints = integer_states(ts)
        self.ranges = dict(ranges)
        h = ts.hyperperiod
        self.phase = SymbolicPhase(f"{enc.tag}phase", h) if h > 1 else None
        if self.phase is not None:
            enc.constraints += self.phase.constraints()
        self.inputs = Inputs(enc, ts, "free")
        self.common: list[Any] = []  # constraints every query takes (bounds, phase)
        self.order = itertools.count()
        box = free_start(enc, ts, self.params, self.ints, ranges=self.ranges)
        init = initial_values(ts) if warm else None
        self.warm = init is not None
        self.links: dict[str, Any] = {}  # with warm: state -> its start's tie to the warm-up
        self.start = box if init is None else self._warm(box, init)
        self.act = Run(enc, self.params, self.inputs, self.start, self.at, self.ints, ts, "act",
                       self.common, self.order)  # fmt: skip
        self.common += enc.drain()

    def _warm(self, box: dict[str, Num], init: Mapping[str, Fraction]) -> dict[str, Num]:
        """The start: the initial state (at phase 0), or the state one tick after ``box``.

        The warm-up tick is encoded for every state, but a solver takes only what the start
        values it reads need (:meth:`warm_cone`): a goal that reads two states does not get
        the whole system's nonlinear update."""
        ts, enc = self.ts, self.enc
        before: int | SymbolicPhase = 0 if self.phase is None else _Shifted(self.phase)
        pre = Run(enc, self.params, _BeforeInputs(enc, ts, self.inputs), box, before,
                  self.ints, ts, "pre", self.common, self.order)  # fmt: skip
        pre.need(1, [st.name for st in ts.states])
        self.pre = pre
        is_init = z3.Bool(f"{enc.tag}start=init", ctx())
        self.is_init = is_init
        out: dict[str, Num] = {}
        for st in ts.states:
            v = pre.frames[1].values[st.name]
            assert isinstance(v, Num)
            c = init[st.name]
            x = enc.named(
                f"{st.name}@0",
                v.iv.hull(Interval(float(c), float(c))),
                integer=st.name in self.ints,
            )
            self.links[st.name] = x.term == z3.If(is_init, real(c), v.term)
            out[st.name] = x
        if self.phase is not None:  # the initial state is at tick 0
            enc.constraints.append(z3.Implies(is_init, self.phase.select[0]))
        return out

    def warm_cone(self, names: Iterable[str], seen: set[Key]) -> list[Any]:
        """The constraints that tie the start values of the states ``names`` to the warm-up
        tick: their links, and the warm-up tick's encoding of what those read (each value
        once: ``seen`` is updated). The warm-up tick is a tick of a run, so its operations
        are defined unless the start is the initial state. Empty for a cold start."""
        if not self.warm:
            return []
        out: list[Any] = []
        todo = []
        for n in names:
            key = ("link", 0, n)
            if n in self.links and key not in seen:
                seen.add(key)
                out.append(self.links[n])
                todo.append(n)
        pre = self.pre
        for _, key in sorted(pre.cone(1, todo, seen), key=lambda rk: pre.seq[rk[1]]):
            out += pre.emitted[key]
            out += [z3.Or(self.is_init, z3.Not(c)) for _, c in pre.undefined[key]]
        return out

    @property
    def at(self) -> int | SymbolicPhase:
        """The start's tick: the symbolic phase (0 when the hyperperiod is 1)."""
        return self.phase if self.phase is not None else 0

    def holding(self, a: str, depth: int) -> Run:
        """A's counterfactual run, taking from the acting run every value A cannot have
        changed yet (:func:`influence` of A's firing, within ``depth`` ticks)."""
        differs = influence(self.ts, [self.ts.loop(a).fires], depth)
        return Run(self.enc, self.params, self.inputs, self.start, self.at, self.ints,
                   hold_loop(self.ts, a), f"hold[{a}]", self.common, self.order, self.act,
                   differs)  # fmt: skip

    def scenario(
        self, model: Any, k: int, read: Iterable[str], rest: Mapping[str, float]
    ) -> Scenario:
        """The scenario of the model's first ``k + 1`` ticks. The states in ``read`` start at
        their model values; every other state is read by nothing the solver was given but
        its bounds (and the operating region), so it starts at its value in ``rest`` (the
        operating point), moved into its bounds. An input no goal read is unconstrained in
        the model and completed to a value in its range."""
        ts = self.ts
        get = ModelValues(model)
        inputs = np.empty((k + 1, len(ts.inputs)))
        for t in range(k + 1):
            at = self.inputs.at(t)
            for j, u in enumerate(ts.inputs):
                inputs[t, j] = min(max(get(at[u.name]), u.lo), u.hi)
        params = {p.name: get(self.params[p.name]) for p in ts.params}
        wanted = set(read)
        init = {
            s.name: get(self.start[s.name])
            if s.name in wanted
            else _within(rest[s.name], self.start[s.name].iv)
            for s in ts.states
        }
        phase = self.phase.value(model) if self.phase is not None else 0
        return Scenario(inputs, params, init, phase)


class ActorQuery:
    """The conflict query of one acting loop A in one encoding mode, shared by every B.

    Two runs from one free start, with the same phase, inputs and parameters: the
    :class:`Encoding`'s acting run and A's counterfactual (:func:`hold_loop`), and one solver
    that takes only the cones of the goals asked. A goal (A's run worse for B's objectives at
    tick ``j``) is asked under an assumption literal; a proved tick is kept as a fact
    (:meth:`exclude`), valid for every later question. The operations encoded for tick ``t``
    must be defined: tick ``t``'s definedness is an assumption literal too, assumed for ticks
    ``0..j`` of a goal at tick ``j``, so a goal at a shallow tick does not inherit the
    definedness of a deeper one asked before.
    """

    def __init__(
        self,
        encoding: Encoding,
        a: str,
        depth: int,
        stats: SolverStats,
        floors: Mapping[str, float] | None = None,
    ) -> None:
        self.encoding = encoding
        self.floors = dict(floors or {})
        self.ts = encoding.ts
        self.a = a
        self.enc = encoding.enc
        self.stats = stats
        self.act = encoding.act
        self.hold = encoding.holding(a, depth)
        self.solver = new_solver()
        self.proved: dict[str, int] = {}  # B -> ticks 1..n proved conflict-free
        self._goals: dict[tuple[str, int], Cond] = {}
        self._seen: set[Key] = set()  # values whose constraints the solver has
        self._common = 0  # how much of the encoding's common list the solver has
        self._defined: list[Any] = []  # per tick: its encoded operations are defined
        self._count = 0

    def goal(self, b: str, j: int) -> Cond:
        """A's run is worse than the counterfactual for B's objectives at tick ``j`` (by more
        than B's tolerance); its cone is added to the solver."""
        key = (b, j)
        if key not in self._goals:
            parts = []
            for o in objectives_of(self.ts, b):
                names = names_in(o.expr) | (names_in(o.bound) if o.bound is not None else set())
                f1, f2 = self.act.need(j, names), self.hold.need(j, names)
                cone = self.hold.cone(j, names, self._seen) + self.act.cone(j, names, self._seen)
                self._take(cone)
                known = len(f1.undefined), len(f2.undefined)
                parts.append(self._material(o, f1, f2))
                new = f1.undefined[known[0] :] + f2.undefined[known[1] :]
                self._guard([(j, c) for c in new])
                assert_all(self.solver, self.enc.drain())
            self._goals[key] = self.enc.or_(parts)
        return self._goals[key]

    def _material(self, o: ObjectiveIR, f1: Frame, f2: Frame) -> Cond:
        """Run 1 is worse than run 2 by more than the objective's threshold
        (:mod:`coherence.ir.meaning`): beyond its tolerance and by at least its floor. Not
        this is a proof that no effect is material (``>=`` against the floor is the safe
        side of ``>``)."""
        fl = self.floors.get(o.name, 0.0)
        if not fl > 0.0:
            return worse(self.enc, o, f1, f2, Fraction(0))
        if o.kind == "keep":  # the violation grows by the floor (the tolerance is inside it)
            return worse(self.enc, o, f1, f2, rational(fl))
        bare = replace(o, tolerance=0.0, relative=False)
        return self.enc.and_(
            [worse(self.enc, o, f1, f2, Fraction(0)), worse(self.enc, bare, f1, f2, rational(fl))]
        )

    def _take(self, cone: list[tuple[Run, Key]]) -> None:
        self.sync()
        for run, key in sorted(cone, key=lambda rk: rk[0].seq[rk[1]]):  # in encoding order
            assert_all(self.solver, run.emitted[key])
            self._guard(run.undefined[key])
        if self.encoding.warm:
            starts = {
                n
                for label, t, n in self._seen
                if t == 0 and n in self.encoding.links and label not in ("pre", "link")
            }
            assert_all(self.solver, self.encoding.warm_cone(sorted(starts), self._seen))

    def _guard(self, conds: list[tuple[int, Any]]) -> None:
        for t, c in conds:
            self.solver.add(z3.Implies(self.defined(t)[t], z3.Not(c)))

    def defined(self, j: int) -> list[Any]:
        """The literals that say ticks ``0..j`` are defined (each guards the operations of
        its tick encoded so far; later encodings add to it, which only strengthens it)."""
        while len(self._defined) <= j:
            self._defined.append(z3.Bool(f"{self.enc.tag}defined@{len(self._defined)}", ctx()))
        return self._defined[: j + 1]

    def sync(self) -> None:
        """Hand the solver what the encoding made common since (refinements, new inputs)."""
        self.encoding.common += self.enc.drain()
        assert_all(self.solver, self.encoding.common[self._common :])
        self._common = len(self.encoding.common)

    def ask(self, b: str, ticks: Iterable[int], rlimit: int) -> Answer:
        """A model in which A's run is worse for B at one of ``ticks``."""
        ticks = list(ticks)
        goal = self.enc.or_([self.goal(b, j) for j in ticks])
        self.sync()
        if goal.value is False:
            return Answer(Outcome.UNSAT, "decided by bounds")
        self._count += 1
        flag = z3.Bool(f"{self.enc.tag}goal[{self.a}]?{self._count}", ctx())
        # the goal inside a one-argument And: the term every query has had (Z3 follows
        # the ids of terms, so a bare goal would change which queries finish in a limit)
        self.solver.add(z3.Implies(flag, z3.And(goal.term)))
        return check(self.solver, rlimit, [flag, *self.defined(max(ticks))], stats=self.stats)

    def exclude(self, b: str, j: int) -> None:
        """Record that A's run is never worse for B at tick ``j`` (proved).

        The fact is conditioned on the definedness of ticks ``0..j``, under which it was
        proved, so it holds in the shared model whatever is asked next.
        """
        g = self.goal(b, j)
        self.sync()
        if g.value is not False:
            self.solver.add(z3.Implies(z3.And(*self.defined(j)), z3.Not(g.term)))
        self.proved[b] = max(self.proved.get(b, 0), j)

    def scenario(self, model: Any, k: int, rest: Mapping[str, float]) -> Scenario:
        """The model's scenario (:meth:`Encoding.scenario`): the start states the solver's
        constraints read from the model, the others from ``rest``."""
        read = [n for label, t, n in self._seen if label == self.act.label and t == 0]
        return self.encoding.scenario(model, k, read, rest)

    def refine(self, model: Any) -> int:
        """Refine the relaxations this solver has where the model cheats
        (:meth:`Encoder.refine`); the refinements are valid facts, for every query. Other
        actors' relaxations are left alone: this model says nothing about them."""
        enc = self.enc
        everything = enc.relaxations
        enc.relaxations = [r for r in everything if _assigned(model, r)]
        try:
            done = enc.refine(model)
        finally:
            enc.relaxations = everything
        self.sync()
        return done


def _assigned(model: Any, r: Relaxation) -> bool:
    """Whether the relaxation's own variable (``w``; the quotient ``x`` of a division, whose
    ``w`` is the numerator) is in the model, i.e. in the solver the model comes from."""
    v = r.w if z3.is_const(r.w) and r.w.decl().kind() == z3.Z3_OP_UNINTERPRETED else r.x.term
    return z3.is_const(v) and model.get_interp(v.decl()) is not None


def _within(x: float, iv: Interval) -> float:
    """``x`` moved into ``iv`` (its lower end when ``x`` is not a number)."""
    if math.isnan(x):
        return iv.lo if math.isfinite(iv.lo) else (iv.hi if math.isfinite(iv.hi) else 0.0)
    return min(max(x, iv.lo), iv.hi)


class ModelValues:
    """Values of terms in a model, as floats (:func:`coherence.smt.replay.value`'s values).

    A variable is read from the model's assignment directly, and a rational through its
    exact numeral string: ``model.eval`` per variable is slow with hundreds of states."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.ref = model.ctx.ref()

    def __call__(self, v: Num) -> float:
        if v.const is not None:
            return float(v.const)
        term = v.term
        if z3.is_app_of(term, z3.Z3_OP_TO_REAL):
            term = term.arg(0)
        if z3.is_const(term) and term.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            got = self.model.get_interp(term.decl())
            if got is not None and (z3.is_rational_value(got) or z3.is_int_value(got)):
                return float(Fraction(z3.Z3_get_numeral_string(self.ref, got.as_ast())))
        return value(self.model, v.term)


class Systems:
    """The simulator's compiled systems: ``ts`` and each loop's counterfactual
    (:func:`hold_loop`), per start phase (:func:`rotate_phases`). Compiling is the slow part
    of a short simulation, and witnesses are replayed many times."""

    def __init__(self, ts: TransitionSystem) -> None:
        self.ts = ts
        self._held: dict[str, TransitionSystem] = {}
        self._compiled: dict[tuple[str | None, int], Compiled] = {}

    def held(self, a: str) -> TransitionSystem:
        if a not in self._held:
            self._held[a] = hold_loop(self.ts, a)
        return self._held[a]

    def compiled(self, a: str | None, phase: int) -> Compiled:
        """``ts`` (``a`` is None) or A's counterfactual, starting at ``phase``."""
        key = (a, phase)
        if key not in self._compiled:
            system = self.ts if a is None else self.held(a)
            self._compiled[key] = compile_system(rotate_phases(system, phase) if phase else system)
        return self._compiled[key]

    def replay(self, a: str | None, sc: Scenario) -> Trace:
        """:func:`coherence.smt.replay.replay`, with the compiled system."""
        return simulate(
            self.compiled(a, sc.phase),
            sc.ticks,
            inputs=sc.inputs[None, :, :],
            params=dict(sc.params),
            init=dict(sc.init),
        )


def replay_pair(
    systems: Systems, a: str, b: str, k: int, sc: Scenario
) -> tuple[Trace, Trace, str, int]:
    """Replay both runs; the first tick ``1..k`` (and B's objective) at which A's run is
    worse (``("", -1)`` when it never is), by :func:`judge`."""
    acting, holding = systems.replay(None, sc), systems.replay(a, sc)
    obj, tick = judge(systems.ts, b, k, acting, holding)
    return acting, holding, obj, tick


def judge(ts: TransitionSystem, b: str, k: int, acting: Trace, holding: Trace) -> tuple[str, int]:
    """The first tick ``1..k`` (and B's objective) at which the acting run (scenario 0) is
    worse than the holding one (``("", -1)`` when it never is), by
    :func:`~coherence.smt.objectives.trace_worse` (NumPy's warnings off: a candidate may
    divide by zero)."""
    objectives = objectives_of(ts, b)
    with np.errstate(all="ignore"):
        marks = [trace_worse(o, acting, holding) for o in objectives]
    for j in range(1, k + 1):
        for o, w in zip(objectives, marks, strict=True):
            if j < len(w) and w[j]:
                return o.name, j
    return "", -1
