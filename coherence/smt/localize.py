"""The localization abstraction of a system for one property (Kurshan).

:func:`localize` replaces every loop's control law (its recommendation before shaping) by a
fresh value per tick within a sound enclosure of the values it can take, and cuts the system
down to the cone of influence of the property: a system with more runs, whose ``unsat``
answers hold for the original. The proofs that use it
(:func:`~coherence.smt.induction.prove_localized`, :func:`~coherence.smt.induction.prove_dwell`)
show that the shaping alone (stabilization windows, cooldowns, rate limits, rounding) keeps a
property.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from coherence.intervals.arith import Interval
from coherence.ir.nodes import TransitionSystem, names_in
from coherence.smt.encode import OVERAPPROX, Encoder, Frame
from coherence.smt.terms import EncodeError, Num
from coherence.smt.unroll import param_values, signal_ranges


@dataclass(frozen=True, slots=True)
class Localization:
    """The localization abstraction of a system for one requirement (:func:`localize`).

    ``system``: the cone of influence of the requirement, with the recommendation lets of
    ``loops`` cut (they read nothing); ``laws``: those lets, each with the sound enclosure
    its value takes a fresh variable in (:attr:`coherence.smt.encode.Encoder.laws`).
    """

    system: TransitionSystem
    laws: dict[str, Interval]
    loops: tuple[str, ...]


def _cone(ts: TransitionSystem, roots: set[str], cut: set[str]) -> set[str]:
    """The states and lets that ``roots`` depend on over any number of ticks (through lets,
    state updates and initial values); the lets in ``cut`` read nothing."""
    lets = {d.name: d.expr for d in ts.lets}
    states = {s.name: s for s in ts.states}
    seen: set[str] = set()
    todo = [r for r in roots if r in lets or r in states]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in lets:
            reads = set() if n in cut else names_in(lets[n])
        else:
            reads = names_in(states[n].update) | names_in(states[n].init)
        todo += [r for r in reads if (r in lets or r in states) and r not in seen]
    return seen


def _over_box(ts: TransitionSystem) -> tuple[dict[str, Interval], set[str]]:
    """Every let's interval over the declared ranges (states in their bounds, registers in
    their signal's range, inputs and parameters in theirs: an enclosure of its value at every
    tick of every run), and the lets and state updates that may be undefined there."""
    enc = Encoder(ts, OVERAPPROX, tag="__laws__.")
    params = param_values(enc, ts)
    regs = signal_ranges(ts, params)
    frame = Frame(0, None, {})  # any tick: phases undecided
    frame.values.update(params)
    for u in ts.inputs:
        frame.values[u.name] = enc.named(u.name, Interval(u.lo, u.hi))
    for st in ts.states:
        iv = Interval(st.lo, st.hi)
        if st.name in regs:
            iv = regs[st.name].meet(iv)
        frame.values[st.name] = enc.named(st.name, iv)
    ivs: dict[str, Interval] = {}
    undefined: set[str] = set()
    for d in ts.lets:
        n = len(frame.undefined)
        v = enc.expr(d.expr, frame)
        frame.values[d.name] = v
        if isinstance(v, Num):
            ivs[d.name] = v.iv
        if len(frame.undefined) > n:
            undefined.add(d.name)
    for st in ts.states:
        n = len(frame.undefined)
        enc.expr(st.update, frame)
        if len(frame.undefined) > n:
            undefined.add(st.name)
    return ivs, undefined


def localize(ts: TransitionSystem, roots: set[str]) -> Localization | None:
    """The localization abstraction (Kurshan) of ``ts`` for a property that reads ``roots``.

    Every loop's recommendation (``<loop>.<state>.rec``: the control law's value before
    shaping) is replaced by a fresh real per tick, within its interval over the declared
    ranges: a superset of the values the law takes on any run (every state stays within its
    bounds, every register within its signal's range). Only a law whose whole cone (the
    lets and state updates it depends on, over any number of ticks) is defined over those
    ranges is abstracted: the values such a law takes are real numbers, so the abstraction's
    runs include every run of the system (a law that may divide by zero stays exact, and its
    definedness is proved with the property). The rest of the system is cut down to the cone
    of influence of ``roots`` with those laws cut; a state outside it never influences the
    property, and its definedness does not matter for it. None when no law is abstracted.
    """
    try:
        ivs, undefined = _over_box(ts)
    except EncodeError:
        return None
    recs = {a.recommendation: lp.name for lp in ts.loops for a in lp.actions}
    cut: set[str] = set()
    for rec in sorted(recs):
        if rec not in ivs or rec in undefined:
            continue
        if not (_cone(ts, {rec}, set()) & undefined):
            cut.add(rec)
    cone = _cone(ts, roots, cut)
    laws = {r: ivs[r] for r in sorted(cut & cone)}
    if not laws:
        return None
    system = replace(
        ts,
        states=tuple(st for st in ts.states if st.name in cone),
        lets=tuple(d for d in ts.lets if d.name in cone),
    )
    loops = tuple(dict.fromkeys(recs[r] for r in laws))
    return Localization(system, laws, loops)
