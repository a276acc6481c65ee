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
- several loops acting on one state on the same tick add their changes.

Every state's next value is its ``update`` clamped to ``[lo, hi]``; that clamp is the one
implicit step and every backend applies it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from coherence.frontend.ast import StateDecl
from coherence.frontend.check import Checked
from coherence.frontend.loops import CheckedLoop
from coherence.ir import nodes as ir
from coherence.ir.nodes import Binary, Call, Const, Expr, Ite, Phase, Unary, Var, conjunction

INF = math.inf


def _add(a: Expr, b: Expr) -> Expr:
    return Binary("+", a, b)


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
    contributions: dict[str, list[Expr]] = {name: [] for name in decls}
    owned: list[ir.StateVar] = []

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
        else:
            update = Var(d.name)
            for delta in contributions[d.name]:
                update = _add(update, delta)
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


def _lower_loop(
    c: CheckedLoop, checked: Checked, decls: Mapping[str, tuple[StateDecl, float, float, float]]
) -> tuple[ir.LoopIR, list[ir.StateVar], list[ir.Let], list[ir.ParamVar], dict[str, list[Expr]]]:
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
    contrib: dict[str, list[Expr]] = {}
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
        contrib.setdefault(state, []).append(
            Ite(Var(changes), _sub(Var(target_name), a), Const(0.0), aspan)
        )
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
    total = taps[0]
    for t in taps[1:]:
        total = _add(total, t)
    value = total if window == 1 else Binary("/", total, Const(float(window)))
    sensed = ir.Let(f"{loop}.{alias}", value, owner=loop)
    sensor = ir.Sensor(sensed.name, alias, signal, delay, window, tuple(names))
    return sensor, regs, sensed
