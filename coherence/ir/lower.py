"""Lowering: a checked system to the flat transition system.

What lowering makes explicit (DESIGN section 2):
- a loop's period and phase become a :class:`Phase` condition; its guard and cooldown join it
  in the loop's ``fires`` let;
- a measurement delay of d ticks and a window of w ticks become d + w - 1 shift-register
  states, exactly (no Padé approximation);
- a stabilization window of n periods becomes n - 1 history states of past recommendations
  (the Kubernetes HPA algorithm: scale down only to the highest recommendation in the window,
  scale up only to the lowest);
- the shaping of an action, in order: gain (an internal parameter, 1 as written),
  stabilization, deadband and tolerance (hold), rate limits, limits, integer rounding;
- several loops acting on one state on the same tick combine by the state's rule: their
  changes add up (``combine sum``, the default), the loop declared last wins (``last``), or
  the largest or smallest value set wins (``max``, ``min``);
- ``lag`` and ``delay`` in an expression become hidden plant states (an exact first-order
  lag, a shift register), and ``continuous`` equations become the exact zero-order-hold
  discretisation of ``x' = A x + w`` (:mod:`coherence.ir.continuous`);
- a loop with ``timing immediate`` has the plant's updates read its actuators' values after
  this tick's action (the ``__now_`` lets), instead of the values they held.

Every state's next value is its ``update`` clamped to ``[lo, hi]``; that clamp is the one
implicit step and every backend applies it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import replace

from coherence.frontend.ast import StateDecl
from coherence.frontend.check import Checked
from coherence.frontend.dynamics import Continuous, Hidden
from coherence.frontend.loops import CheckedLoop
from coherence.ir import nodes as ir
from coherence.ir.evaluate import EvalError, eval_scalar
from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    Ite,
    Phase,
    Unary,
    Var,
    conjunction,
    map_children,
)
from coherence.source import Span

INF = math.inf


def _add(a: Expr, b: Expr) -> Expr:
    return Binary("+", a, b)


_CHAIN = 128  # terms summed left to right in one chain (what the evaluators stack in one call)


def _balanced_sum(terms: list[Expr]) -> Expr:
    """The sum of ``terms``: left-to-right chains of at most ``_CHAIN`` terms (the
    simulator and the linear program evaluate such a chain over consecutive registers as
    one stacked call), so that a window of hundreds of ticks never becomes an expression as
    deep as the window (every backend walks expressions recursively). A longer sum adds its
    chains to 0, each as a right operand, so that no chain is merged into another's fold."""
    chains: list[Expr] = []
    for i in range(0, len(terms), _CHAIN):
        chain = terms[i]
        for t in terms[i + 1 : i + _CHAIN]:
            chain = _add(chain, t)
        chains.append(chain)
    if len(chains) == 1:
        return chains[0]
    total: Expr = Const(0.0)
    for chain in chains:
        total = _add(total, chain)
    return total


def _sub(a: Expr, b: Expr) -> Expr:
    return Binary("-", a, b)


def _mul(a: Expr, b: Expr) -> Expr:
    return Binary("*", a, b)


def _or(parts: list[Expr]) -> Expr:
    out = parts[0]
    for p in parts[1:]:
        out = Binary("or", out, p)
    return out


def lower(checked: Checked) -> ir.TransitionSystem:
    """Build the transition system of a checked spec system."""
    sys_ = checked.system
    states: list[ir.StateVar] = []
    lets: list[ir.Let] = list(checked.lets)
    params: list[ir.ParamVar] = list(checked.params)
    loops: list[ir.LoopIR] = []
    decls = {d.name: (d, lo, hi, init) for d, lo, hi, init in checked.states}
    contributions: dict[str, list[_Write]] = {name: [] for name in decls}
    owned: list[ir.StateVar] = []
    continuous = _discretise(checked.continuous, checked.tick, lets)

    for c in checked.loops:
        loop, loop_states, loop_lets, loop_params, contrib = _lower_loop(c, checked, decls)
        loops.append(loop)
        owned += loop_states
        lets += loop_lets
        params += loop_params
        for name, exprs in contrib.items():
            contributions[name] += exprs

    for d, lo, hi, init in checked.states:
        sym = checked.symbols[d.name]
        if d.name in checked.nexts:
            update = checked.nexts[d.name]
            if d.integer:
                update = Call("round", (update,))
            kind = "plant"
        elif d.name in continuous:
            update, kind = continuous[d.name], "plant"
        else:
            rule = d.combine or "sum"
            update = _combine(d.name, rule, contributions[d.name], lets, sym.unit, sym.scale)
            kind = "actuator"
        states.append(
            ir.StateVar(
                d.name,
                kind,
                lo,
                hi,
                Const(init, d.init.span),
                update,
                d.integer,
                None,
                sym.unit,
                sym.scale,
                d.span,
            )
        )
    states += owned
    states += _hidden_states(checked.hidden)
    immediate = {
        a[0]: c.decl.name for c in checked.loops if c.timing == "immediate" for a in c.actions
    }
    if immediate:
        states, lets = _immediate(states, lets, immediate)
    if checked.hidden:
        states = _initial_values(states, lets, params, checked.inputs, checked.hidden)
    return ir.TransitionSystem(
        sys_.name,
        sys_.doc,
        sys_.span.path,
        checked.tick,
        tuple(checked.inputs),
        tuple(params),
        tuple(states),
        tuple(lets),
        tuple(loops),
        tuple(checked.objectives),
        tuple(checked.requirements),
        sys_.span,
        tuple(checked.bindings),
    )


# ---- several writers to one state ----------------------------------------------------------

_Write = tuple[str, str, Span, str]  # (let: the loop acts, target let, span, loop)


def _combine(
    state: str, rule: str, writes: list[_Write], lets: list[ir.Let], unit: str, scale: float
) -> Expr:
    """The next value of an actuator from its writers, in declaration order.

    sum:  x + sum_i [c_i] (t_i - x)           (each acting loop's change is added)
    last: t_j for the last declared j with c_j, x when none acts
    max:  max over the acting loops of t_i, x when none acts (min likewise)
    where c_i is "loop i acts and moves x" (sum) or "loop i acts" (the others: its
    ``.acts`` let, so a loop that holds x where it wants it still proposes x) and t_i its
    shaped target. For max and min the
    let ``__last_x`` (the ``last`` value) stands in for a loop that does not act.
    """
    a: Expr = Var(state)
    if rule == "sum" or len(writes) == 1:
        update = a
        for changes, target, span, _ in writes:
            update = _add(update, Ite(Var(changes), _sub(Var(target), a), Const(0.0), span))
        return update
    last: Expr = a
    for changes, target, span, _ in writes:
        last = Ite(Var(changes), Var(target), last, span)
    if rule == "last":
        return last
    # a loop that does not act proposes the value of one that does, so it never decides
    # the extreme; when none acts every proposal is x itself
    fallback = f"__last_{state}"
    # owned by a writer: it reads the loops' lets, so it is not a let of the initial state
    lets.append(ir.Let(fallback, last, unit, scale, writes[-1][3], writes[-1][2]))
    proposals = tuple(Ite(Var(ch), Var(t), Var(fallback), span) for ch, t, span, _ in writes)
    return Call(rule, proposals)


# ---- lag, delay and continuous equations ---------------------------------------------------


def _hidden_states(hidden: list[Hidden]) -> list[ir.StateVar]:
    """The states of ``lag`` and ``delay`` (their initial values are set afterwards).

    lag:   y[k+1] = a y[k] + (1 - a) u[k],  a = exp(-tick / tau)   (exact under a ZOH on u)
    delay: r1[k+1] = u[k], r_j[k+1] = r_{j-1}[k]; the expression reads r_n = u[k - n].
    """
    out: list[ir.StateVar] = []
    for h in hidden:
        init = Const(0.0 if h.init is None else h.init, h.span)
        if h.kind == "lag":
            assert h.coef is not None
            one_minus: Expr = (
                Const(-math.expm1(math.log(h.coef.value)))
                if isinstance(h.coef, Const)
                else _sub(Const(1.0), h.coef)
            )
            update = _add(_mul(h.coef, Var(h.name)), _mul(one_minus, h.signal))
            out.append(_hidden_var(h, h.name, init, update))
            continue
        names = [f"{h.name}.r{j}" for j in range(1, h.length + 1)]
        for j, reg in enumerate(names):
            out.append(_hidden_var(h, reg, init, h.signal if j == 0 else Var(names[j - 1])))
    return out


def _hidden_var(h: Hidden, name: str, init: Expr, update: Expr) -> ir.StateVar:
    return ir.StateVar(name, "plant", -INF, INF, init, update, False, None, h.unit, h.scale, h.span)


def _discretise(cont: Continuous | None, tick: float, lets: list[ir.Let]) -> dict[str, Expr]:
    """The next value of each continuous state: x[k+1] = Ad x[k] + Gd w[k], exactly.

    ``Ad, Gd = zoh(A, I, tick)``: ``w`` (each equation's terms that read no state of the
    blocks) is held over the tick; a ``w`` that is not a constant is the let ``__input_x``.
    """
    if cont is None:
        return {}
    import numpy as np

    from coherence.ir.continuous import zoh

    n = len(cont.states)
    Ad, Gd = zoh(np.array(cont.A, dtype=float), np.eye(n), tick)
    held: list[Expr | None] = []
    for name, w, span in zip(cont.states, cont.inputs, cont.spans, strict=True):
        if w is None or isinstance(w, Const):
            held.append(w)
            continue
        let = f"__input_{name}"
        lets.append(ir.Let(let, w, "1", 1.0, None, span))
        held.append(Var(let))
    out: dict[str, Expr] = {}
    for i, name in enumerate(cont.states):
        terms: list[Expr] = []
        for j, other in enumerate(cont.states):
            if Ad[i, j] != 0.0:
                terms.append(_mul(Const(float(Ad[i, j])), Var(other)))
        for j, w in enumerate(held):
            if w is not None and Gd[i, j] != 0.0:
                terms.append(_mul(Const(float(Gd[i, j])), w))
        update: Expr = terms[0] if terms else Const(0.0)
        for t in terms[1:]:
            update = _add(update, t)
        out[name] = update
    return out


class _InitialEnv(Mapping[str, float]):
    """Values at tick 0, computed on demand: parameters, inputs at nominal, declared initial
    states, and every let and state initial value that those determine."""

    def __init__(
        self,
        known: dict[str, float],
        lets: Mapping[str, Expr],
        inits: Mapping[str, Expr],
    ) -> None:
        self.known = known
        self.lets = lets
        self.inits = inits
        self.busy: set[str] = set()

    def __getitem__(self, name: str) -> float:
        if name in self.known:
            return self.known[name]
        expr = self.lets.get(name, self.inits.get(name))
        if expr is None or name in self.busy:
            raise KeyError(name)
        self.busy.add(name)
        try:
            value = eval_scalar(expr, self)
        finally:
            self.busy.discard(name)
        self.known[name] = value
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(self.known)

    def __len__(self) -> int:
        return len(self.known)


def _initial_values(
    states: list[ir.StateVar],
    lets: list[ir.Let],
    params: list[ir.ParamVar],
    inputs: list[ir.InputVar],
    hidden: list[Hidden],
) -> list[ir.StateVar]:
    """Each hidden state without a declared initial value starts at rest: at its signal's
    value at the initial state, with inputs at nominal (0 when that has no value). A number,
    so every backend starts it the same way."""
    known: dict[str, float] = {p.name: p.value for p in params}
    known.update({u.name: u.nominal for u in inputs})
    inits: dict[str, Expr] = {}
    for s in states:
        if isinstance(s.init, Const):
            known[s.name] = s.init.value
        else:
            inits[s.name] = s.init
    start: set[str] = set()
    for h in hidden:
        if h.init is None:
            regs = range(1, h.length + 1)
            names = [h.name] if h.kind == "lag" else [f"{h.name}.r{j}" for j in regs]
            for name in names:
                known.pop(name, None)
                inits[name] = h.signal
                start.add(name)
    env = _InitialEnv(known, {d.name: d.expr for d in lets}, inits)
    out: list[ir.StateVar] = []
    for s in states:
        if s.name in start:
            try:
                value = env[s.name]
            except (KeyError, EvalError, RecursionError):
                value = 0.0
            if not math.isfinite(value):
                value = 0.0
            s = replace(s, init=Const(value, s.init.span))
        out.append(s)
    return out


# ---- timing immediate ------------------------------------------------------------------------


def _immediate(
    states: list[ir.StateVar], lets: list[ir.Let], actuators: Mapping[str, str]
) -> tuple[list[ir.StateVar], list[ir.Let]]:
    """Plant updates read ``__now_x``, the value actuator ``x`` takes on this tick.

    ``__now_x = clamp(update_x, lo, hi)``; every user let that (transitively) reads such an
    actuator gets a ``__now_`` copy for the plant. Lets, sensors, laws, objectives and
    requirements keep reading the values of the start of the tick (no algebraic loop).
    The ``__now_`` lets are owned by the actuator's loop: they read its lets, so they are
    not lets of the initial state.
    """
    by_name = {s.name: s for s in states}
    rename: dict[str, str] = {}
    owner: dict[str, str] = {}
    extra: list[ir.Let] = []
    for name in sorted(actuators):
        s = by_name[name]
        now: Expr = s.update
        if math.isfinite(s.lo) or math.isfinite(s.hi):
            now = Call("min", (Call("max", (now, Const(s.lo))), Const(s.hi)))
        rename[name], owner[name] = f"__now_{name}", actuators[name]
        extra.append(ir.Let(f"__now_{name}", now, s.unit, s.scale, actuators[name], s.span))

    def subst(e: Expr) -> Expr:
        if isinstance(e, Var) and e.name in rename:
            return Var(rename[e.name], e.span)
        return map_children(e, subst)

    for d in lets:
        reads = sorted(ir.names_in(d.expr) & set(rename))
        if d.owner is None and reads:
            copy = f"__now_{d.name}"
            owner[d.name] = owner[reads[0]]
            extra.append(ir.Let(copy, subst(d.expr), d.unit, d.scale, owner[d.name], d.span))
            rename[d.name] = copy
    out = [s if s.kind != "plant" else replace(s, update=subst(s.update)) for s in states]
    return out, [*lets, *extra]


def _lower_loop(
    c: CheckedLoop, checked: Checked, decls: Mapping[str, tuple[StateDecl, float, float, float]]
) -> tuple[ir.LoopIR, list[ir.StateVar], list[ir.Let], list[ir.ParamVar], dict[str, list[_Write]]]:
    name = c.decl.name
    span = c.decl.span
    states: list[ir.StateVar] = []
    lets: list[ir.Let] = []
    params: list[ir.ParamVar] = []
    sensors: list[ir.Sensor] = []
    for alias, signal, delay, window, sspan, dim in c.sensors:
        sensor, regs, sensed = build_sensor(name, alias, signal, delay, window, sspan)
        src = checked.symbols.get(alias)
        unit, scale = (
            (src.unit, src.scale) if src is not None and src.dim == dim else (str(dim), 1.0)
        )
        states += [
            ir.StateVar(
                r.name, r.kind, r.lo, r.hi, r.init, r.update, False, name, unit, scale, sspan
            )
            for r in regs
        ]
        lets.append(ir.Let(sensed.name, sensed.expr, unit, scale, name, sspan))
        sensors.append(sensor)

    phase: Expr = Const(1.0) if c.period == 1 else Phase(c.period, c.phase)
    fire_parts: list[Expr] = [] if c.period == 1 else [phase]
    cooldown_state = f"{name}.cooldown" if c.cooldown > 1 else None
    if cooldown_state:
        fire_parts.append(Binary("<", Var(cooldown_state), Const(0.5)))
    if c.guard is not None:
        fire_parts.append(c.guard)
    fires = f"{name}.fires"
    lets.append(ir.Let(fires, conjunction(fire_parts), "bool", 1.0, name, span))

    actions: list[ir.Action] = []
    contrib: dict[str, list[_Write]] = {}
    change_flags: list[Expr] = []
    n_up = c.stabilize_up // c.period if c.stabilize_up else 1
    n_down = c.stabilize_down // c.period if c.stabilize_down else 1
    for state, mode, law, aspan in c.actions:
        _d, lo, hi, init = decls[state]
        sym = checked.symbols[state]
        integer = _d.integer
        a = Var(state)
        prefix = f"{name}.{state}"
        gain = f"{prefix}.gain"
        params.append(ir.ParamVar(gain, 1.0, 0.0, INF, "1", 1.0, True, aspan))
        delta = law if mode == "by" else _sub(law, a)
        rec = _add(a, _mul(Var(gain), delta))
        lets.append(ir.Let(f"{prefix}.rec", rec, sym.unit, sym.scale, name, aspan))
        target: Expr = Var(f"{prefix}.rec")
        history: list[str] = []
        m = max(n_up, n_down)
        if m > 1:
            history = [f"{prefix}.h{k}" for k in range(1, m)]
            for k, h in enumerate(history):
                prev: Expr = Var(f"{prefix}.rec") if k == 0 else Var(history[k - 1])
                upd = prev if c.period == 1 else Ite(phase, prev, Var(h))
                states.append(
                    ir.StateVar(
                        h,
                        "history",
                        lo,
                        hi,
                        Const(init),
                        upd,
                        False,
                        name,
                        sym.unit,
                        sym.scale,
                        aspan,
                    )
                )
            recs: list[Expr] = [Var(f"{prefix}.rec"), *(Var(h) for h in history)]
            up_rec = Call("min", tuple(recs[:n_up])) if n_up > 1 else recs[0]
            down_rec = Call("max", tuple(recs[:n_down])) if n_down > 1 else recs[0]
            target = Call("min", (Call("max", (a, up_rec)), down_rec))
        hold_parts: list[Expr] = []
        diff = Call("abs", (_sub(target, a),))
        if c.deadband is not None:
            hold_parts.append(Binary("<=", diff, Const(c.deadband)))
        if c.tolerance is not None:
            hold_parts.append(Binary("<=", diff, _mul(Const(c.tolerance), Call("abs", (a,)))))
        if c.rate_up is not None:
            amount, rel = c.rate_up
            step: Expr = _mul(Const(amount), Call("abs", (a,))) if rel else Const(amount)
            target = Call("min", (target, _add(a, step)))
        if c.rate_down is not None:
            amount, rel = c.rate_down
            step = _mul(Const(amount), Call("abs", (a,))) if rel else Const(amount)
            target = Call("max", (target, _sub(a, step)))
        if c.limit is not None:
            target = Call("min", (Call("max", (target, Const(c.limit[0]))), Const(c.limit[1])))
        if math.isfinite(lo) or math.isfinite(hi):
            target = Call("min", (Call("max", (target, Const(lo))), Const(hi)))
        if integer:
            target = Call("round", (target,))
        target_name = f"{prefix}.target"
        lets.append(ir.Let(target_name, target, sym.unit, sym.scale, name, aspan))
        cond: list[Expr] = [Var(fires)]
        if hold_parts:
            cond.append(Unary("not", _or(hold_parts)))
        cond.append(Binary("!=", Var(target_name), a))
        changes = f"{prefix}.changes"
        lets.append(ir.Let(changes, conjunction(cond), "bool", 1.0, name, aspan))
        change_flags.append(Var(changes))
        writes = changes
        if _d.combine in ("last", "max", "min"):
            # the loop sets its target even where it equals the current value: a loop that
            # holds the state where it wants it still wins under last, max and min
            writes = f"{prefix}.acts"
            lets.append(ir.Let(writes, conjunction(cond[:-1]), "bool", 1.0, name, aspan))
        contrib.setdefault(state, []).append((writes, target_name, aspan, name))
        actions.append(
            ir.Action(
                state,
                mode,
                law,
                target_name,
                changes,
                gain,
                tuple(history),
                aspan,
                f"{prefix}.rec",
            )
        )

    if cooldown_state:
        cd = Var(cooldown_state)
        upd = Ite(
            _or(change_flags),
            Const(float(c.cooldown - 1)),
            Call("max", (_sub(cd, Const(1.0)), Const(0.0))),
        )
        states.append(
            ir.StateVar(
                cooldown_state,
                "cooldown",
                0.0,
                float(c.cooldown),
                Const(0.0),
                upd,
                True,
                name,
                "ticks",
                1.0,
                span,
            )
        )
    loop = ir.LoopIR(
        name,
        c.decl.doc,
        c.period,
        c.phase,
        tuple(sensors),
        tuple(actions),
        fires,
        c.cooldown,
        cooldown_state,
        tuple(s.name for s in states),
        tuple(o.name for o in c.objectives),
        span,
    )
    return loop, states, lets, params, contrib


def build_sensor(
    loop: str, alias: str, signal: Expr, delay: int, window: int, span: object = None
) -> tuple[ir.Sensor, list[ir.StateVar], ir.Let]:
    """The registers and sensed let of ``signal`` delayed ``delay`` ticks, averaged ``window``.

    Register k (1-based) holds signal(t-k); the loop sees the mean of signal(t-delay-j),
    j = 0..window-1. Registers start full of the signal's value at tick 0.
    """
    n = delay + window - 1
    regs: list[ir.StateVar] = []
    names = [f"{loop}.{alias}.r{k}" for k in range(1, n + 1)]
    for k, reg in enumerate(names):
        upd: Expr = signal if k == 0 else Var(names[k - 1])
        regs.append(ir.StateVar(reg, "sensor", -INF, INF, signal, upd, False, loop))
    taps: list[Expr] = [
        signal if j == 0 else Var(names[j - 1]) for j in range(delay, delay + window)
    ]
    total = _balanced_sum(taps)
    value = total if window == 1 else Binary("/", total, Const(float(window)))
    sensed = ir.Let(f"{loop}.{alias}", value, owner=loop)
    sensor = ir.Sensor(sensed.name, alias, signal, delay, window, tuple(names))
    return sensor, regs, sensed
