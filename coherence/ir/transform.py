"""Transformations of a transition system that analyses use to ask "what if".

- :func:`hold_loop`: the counterfactual in which a loop never acts (its actuators hold);
- :func:`with_params`: new parameter values (a loop's gain, a calibrated constant);
- :func:`with_extra_delay`: extra ticks of measurement delay on every sensor of a loop
  (delay margins), rebuilt exactly as lowering builds sensors.

Each returns a new system (:func:`hold_loop` the same one for the same system and loop);
the input is never changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from coherence.caches import Kept
from coherence.ir.lower import build_sensor
from coherence.ir.nodes import Const, Let, TransitionSystem

# each loop's counterfactual, by the content of the system and the loop's name
_HELD: Kept[TransitionSystem] = Kept("ir.held", 32)


def hold_loop(ts: TransitionSystem, loop: str) -> TransitionSystem:
    """The system in which ``loop`` never fires: its actuators hold their values.

    The same object each time for the last few (system, loop) pairs asked: what is computed
    once per system (the solver's form, :func:`coherence.ir.simplify.for_solver`; a compiled
    simulator) is then computed once per counterfactual too, not at every query that holds
    the loop (the conflict search of an eight-loop system asks 30 times)."""
    key = (ts.content_key, loop)
    hit = _HELD.get(key)
    if hit is not None:
        return hit
    lp = ts.loop(loop)
    lets = tuple(replace(d, expr=Const(0.0)) if d.name == lp.fires else d for d in ts.lets)
    held = replace(ts, lets=lets)
    _HELD.put(key, held)
    return held


def with_params(ts: TransitionSystem, values: Mapping[str, float]) -> TransitionSystem:
    """The system with some parameters set to new values (unknown names raise KeyError)."""
    names = {p.name for p in ts.params}
    for n in values:
        if n not in names:
            raise KeyError(n)
    params = tuple(
        replace(p, value=float(values[p.name])) if p.name in values else p for p in ts.params
    )
    return replace(ts, params=params)


def loop_gain_params(ts: TransitionSystem, loop: str) -> tuple[str, ...]:
    """The internal gain parameters of a loop's actions (scale them to scale its gain)."""
    return tuple(a.gain for a in ts.loop(loop).actions)


def with_extra_delay(ts: TransitionSystem, loop: str, extra: int) -> TransitionSystem:
    """The system in which every sensor of ``loop`` has ``extra`` more ticks of delay."""
    if extra <= 0:
        return ts
    lp = ts.loop(loop)
    if not lp.sensors:
        raise ValueError(f"loop `{loop}` senses nothing; it has no measurement delay to extend")
    drop: set[str] = set()
    new_states = []
    new_sensors = []
    new_lets: dict[str, Let] = {}
    for sn in lp.sensors:
        drop.update(sn.registers)
        sensor, regs, sensed = build_sensor(loop, sn.alias, sn.signal, sn.delay + extra, sn.window)
        old = ts.let(sn.name)
        new_lets[sn.name] = replace(old, expr=sensed.expr)
        new_states += [replace(r, unit=old.unit, scale=old.scale) for r in regs]
        new_sensors.append(replace(sensor, span=sn.span))
    states = tuple(s for s in ts.states if s.name not in drop) + tuple(new_states)
    lets = tuple(new_lets.get(d.name, d) for d in ts.lets)
    owned = tuple(n for n in lp.states if n not in drop) + tuple(r.name for r in new_states)
    loops = tuple(
        replace(x, sensors=tuple(new_sensors), states=owned) if x.name == loop else x
        for x in ts.loops
    )
    return replace(ts, states=states, lets=lets, loops=loops)
