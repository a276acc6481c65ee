"""The words of the linear analysis: its findings and the verdicts of `require stable`.

The codes it reports are the constants below (their meaning is
:data:`coherence.diagnostics.REGISTRY`); each code has one function that writes its finding
(:func:`unstable` for COH301, :func:`coupling_induced` for COH302, ...; COH310 has one per
pairing problem), and :func:`stable` turns the coupled verdict into the verdicts of the
system's `require stable`. Nothing here computes: the spectral radii, modes, margins and
gains a finding states were established by the stages (:mod:`.spectrum`, :mod:`.margins`,
:mod:`.interaction`, :mod:`.settling`, :mod:`.timescales`); the orchestration is
:mod:`coherence.linear.analysis`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from coherence.ir.nodes import TransitionSystem
from coherence.ir.topology import Structure
from coherence.linear.linearize import Corner
from coherence.linear.margins import Margin, Simultaneous
from coherence.linear.settling import Oscillation
from coherence.linear.spectrum import Mode
from coherence.results import Finding, Status, TraceView, Verdict

# the codes of the linear analysis, named as in the rule catalog
UNSTABLE: Final = "COH301"
COUPLING_INDUCED: Final = "COH302"
MARGINAL: Final = "COH303"
UNSTABLE_ALONE: Final = "COH304"
NO_OPERATING_POINT: Final = "COH305"
MULTIPLE_EQUILIBRIA: Final = "COH306"
CORNER: Final = "COH307"
SMALL_GAIN_MARGIN: Final = "COH308"
SMALL_DELAY_MARGIN: Final = "COH309"
PAIRING: Final = "COH310"
NIEDERLINSKI: Final = "COH311"
TIMESCALE_OVERLAP: Final = "COH312"
NOMINAL_OSCILLATION: Final = "COH313"
FRAGILE_TOGETHER: Final = "COH314"

CODES: Final = (
    UNSTABLE,
    COUPLING_INDUCED,
    MARGINAL,
    UNSTABLE_ALONE,
    NO_OPERATING_POINT,
    MULTIPLE_EQUILIBRIA,
    CORNER,
    SMALL_GAIN_MARGIN,
    SMALL_DELAY_MARGIN,
    PAIRING,
    NIEDERLINSKI,
    TIMESCALE_OVERLAP,
    NOMINAL_OSCILLATION,
    FRAGILE_TOGETHER,
)

# the codes a `require stable` verdict cites
STABILITY: Final = frozenset(
    (
        UNSTABLE,
        COUPLING_INDUCED,
        MARGINAL,
        UNSTABLE_ALONE,
        NO_OPERATING_POINT,
        CORNER,
        NOMINAL_OSCILLATION,
    )
)

# a pair of loops at comparable speeds: (loop, loop, sentence, period ratio, shared states)
TimescalePair = tuple[str, str, str, float, list[str]]


# ---- words ----------------------------------------------------------------------------------


def radius_text(rho: float) -> str:
    """A spectral radius with enough digits to show on which side of 1 it lies: 0.8062,
    but 1.00014 (not "1") and 0.99999 (not "1")."""
    text = f"{rho:.4g}"
    digits = 4
    while rho != 1.0 and float(text) == 1.0 and digits < 12:
        digits += 2
        text = f"{rho:.{digits}g}"
    return text


def join(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def names(xs: Sequence[str] | set[str] | tuple[str, ...]) -> str:
    return join([f"`{x}`" for x in xs])


def shares(items: Sequence[tuple[str, float]], limit: int = 4) -> str:
    """Participation shares as percentages, the largest first (as given), small ones left out."""
    return ", ".join(f"{k} {v:.0%}" for k, v in list(items)[:limit] if v >= 0.005)


def mode_note(m: Mode) -> str:
    kind = (
        f"oscillates with period {m.period:.4g} s" if m.period is not None else "does not oscillate"
    )
    return (
        f"dominant mode: |multiplier| {m.magnitude:.4g} per hyperperiod, damping "
        f"{m.damping:.3g}, {kind}; participation {shares(m.loops)}"
    )


def _frozen(v: Any) -> Any:
    """A hashable copy of finding data (findings are frozen): lists and dicts to tuples."""
    if isinstance(v, dict):
        return tuple((k, _frozen(x)) for k, x in v.items())
    if isinstance(v, list | tuple):
        return tuple(_frozen(x) for x in v)
    return v


def _finding(
    ts: TransitionSystem,
    code: str,
    message: str,
    loops: Sequence[str] = (),
    *,
    key: str = "",
    notes: Sequence[str] = (),
    help: str = "",
    data: dict[str, Any] | None = None,
    trace: TraceView | None = None,
) -> Finding:
    """A finding at the first of ``loops`` (the system where none), the others related; its
    key names the loops unless given."""
    spans = {lp.name: lp.span for lp in ts.loops}
    loops = list(loops)
    return Finding(
        code,
        message,
        spans[loops[0]] if loops else ts.span,
        None,
        tuple(notes),
        help,
        tuple(spans[x] for x in loops[1:]),
        trace,
        tuple(sorted((k, _frozen(v)) for k, v in (data or {}).items())),
        key or ",".join(loops) or ts.name,
    )


# ---- stability (COH301-COH304) --------------------------------------------------------------


def unstable(ts: TransitionSystem, rho: float | None, modes: Sequence[Mode]) -> Finding:
    """COH301: the coupled system is unstable; the loops of its unstable mode."""
    top = modes[0] if modes else None
    who = [x for x, _ in top.loops if x != "plant"] if top else []
    share = ", ".join(f"`{x}` ({v:.0%})" for x, v in (top.loops if top else ())[:4])
    return _finding(
        ts,
        UNSTABLE,
        f"the coupled system is unstable: spectral radius {radius_text(rho or 0.0)} per "
        f"hyperperiod ({ts.hyperperiod * ts.tick:g} s)"
        + (f"; the unstable mode involves {share}" if share else ""),
        who,
        key=f"{ts.name}:unstable",
        notes=tuple(mode_note(m) for m in modes[:1]),
        help="see the loops unstable alone (COH304) and the margins of the loops in the "
        "unstable mode",
        data={"radius": rho},
    )


def coupling_induced(
    ts: TransitionSystem,
    st: Structure,
    combo: tuple[str, ...],
    radius: float,
    alone: dict[str, float],
    coupling: str,
    modes: Sequence[Mode],
) -> Finding:
    """COH302: loops each stable alone, unstable together, and what couples them.
    ``coupling`` is :func:`coupling_note` of the dominant mode's sensitivities."""
    shared = _coupling_text(st, combo)
    alone_txt = ", ".join(f"`{x}` {alone.get(x, 0.0):.3g}" for x in combo)
    return _finding(
        ts,
        COUPLING_INDUCED,
        f"loops {names(combo)} are each stable alone but unstable together "
        f"(spectral radius {radius_text(radius)}; alone: {alone_txt})"
        + (f": they are coupled through {shared}" if shared else ""),
        list(combo),
        key=",".join(combo),
        notes=tuple(x for x in (coupling, *(mode_note(m) for m in modes[:1])) if x),
        help="separate their time scales, lower one loop's gain, or let one loop "
        "own the shared state",
        data={"radius": radius, "loops": list(combo)},
    )


def _coupling_text(st: Structure, combo: Sequence[str]) -> str:
    parts: list[str] = []
    for a in combo:
        for b in combo:
            if a == b:
                continue
            via = sorted(set(st.writes[a]) & st.sees[b])
            for s in via:
                path = st.signal_path(s, b)
                chain = " -> ".join(f"`{x}`" for x in path)
                parts.append(
                    f"`{a}` actuates `{s}`, which `{b}` reads ({chain})"
                    if len(path) > 1
                    else f"`{a}` actuates `{s}`, which `{b}` reads"
                )
    both = set.intersection(*(set(st.writes[x]) for x in combo))
    for s in sorted(both):
        parts.append(f"both actuate `{s}`")
    return "; ".join(parts)


def coupling_note(rows: Sequence[tuple[str, str, float]]) -> str:
    """The coupling term the dominant multiplier is most sensitive to (rows as in the
    Couplings table, the largest first), or nothing."""
    if not rows:
        return ""
    src, dst, v = rows[0]
    return (
        f"the coupling that decides stability: `{src}` -> `{dst}` (1% more of it "
        f"changes the dominant multiplier's magnitude by {v:.2g}%)"
    )


def marginal(ts: TransitionSystem, rho: float, tol: float, modes: Sequence[Mode]) -> Finding:
    """COH303: the coupled system is within ``tol`` of the stability boundary."""
    who = [x for x, _ in modes[0].loops if x != "plant"] if modes else []
    return _finding(
        ts,
        MARGINAL,
        f"the coupled system is marginally stable: spectral radius "
        f"{rho:.9g} (within {tol:g} of 1)"
        + (f"; the marginal mode involves {names(who)}" if who else ""),
        who[:1] + who[1:],
        key=f"{ts.name}:marginal",
        notes=tuple(mode_note(m) for m in modes[:1]),
        help="an integrator without feedback (two loops integrating one signal, a "
        "deadband at rest) or an undamped oscillation looks like this",
        data={"radius": rho},
    )


def unstable_alone(ts: TransitionSystem, loop: str, radius: float) -> Finding:
    """COH304: one loop is unstable with every other loop holding its actuator."""
    return _finding(
        ts,
        UNSTABLE_ALONE,
        f"loop `{loop}` is unstable on its own: spectral radius {radius_text(radius)} with "
        "every other loop holding its actuator",
        [loop],
        key=loop,
        help="lower its gain, add damping, or shorten its measurement delay",
        data={"radius": radius},
    )


# ---- the operating point (COH305-COH307) ----------------------------------------------------


def no_operating_point(
    ts: TransitionSystem, message: str, *, linearizing: bool = False
) -> tuple[str, Finding]:
    """COH305 and the reason of the unknown verdict: no equilibrium at nominal input, or
    (``linearizing``) one the system cannot be linearized at."""
    if linearizing:
        return (
            f"the system cannot be linearized at its operating point: {message}",
            _finding(ts, NO_OPERATING_POINT, f"no operating point to linearize at: {message}"),
        )
    return (
        f"no operating point at nominal input ({message})",
        _finding(
            ts,
            NO_OPERATING_POINT,
            f"no equilibrium found at nominal input: {message}",
            help="check that the nominal inputs admit a steady state within the declared bounds",
        ),
    )


def multiple_equilibria(
    ts: TransitionSystem,
    x: np.ndarray[Any, np.dtype[np.float64]],
    others: Sequence[Sequence[float]],
) -> Finding:
    """COH306: other equilibria than the operating point ``x``; the states that differ most
    from the first of them."""
    states = [s for s in ts.states if s.kind in ("plant", "actuator")]
    idx = {s.name: i for i, s in enumerate(ts.states)}
    other = np.array(others[0])
    diffs = sorted(
        states,
        key=lambda s: (
            -abs(other[idx[s.name]] - x[idx[s.name]])
            / max(abs(x[idx[s.name]]), abs(other[idx[s.name]]), 1e-12)
        ),
    )[:3]
    shown = ", ".join(
        f"`{s.name}` = {x[idx[s.name]] / s.scale:.4g} here, "
        f"{other[idx[s.name]] / s.scale:.4g} there"
        for s in diffs
    )
    return _finding(
        ts,
        MULTIPLE_EQUILIBRIA,
        f"{len(others) + 1} different equilibria at nominal input; the linear verdict "
        f"is local to the one analysed ({shown})",
        key=f"{ts.name}:equilibria",
        help="`require no bad equilibrium` checks whether the other one violates an objective",
    )


def corners(
    ts: TransitionSystem, found: Sequence[Corner], neutral: dict[int, tuple[str, ...]]
) -> tuple[list[Finding], list[tuple[str, str]]]:
    """COH307, one per loop (or the plant): the switching surfaces its operating point sits
    on, the actuators it holds (``neutral``: state index -> the loops holding it) and a
    cooldown longer than its period; with the (loop or "plant", surface) rows."""
    by_loop: dict[str | None, list[str]] = {}
    notes: dict[str | None, list[str]] = {}
    for c in found:
        items = by_loop.setdefault(c.loop, [])
        if c.construct not in items:
            items.append(c.construct)
    for a, holding in sorted(neutral.items()):
        state = ts.states[a].name
        for name in holding:
            by_loop.setdefault(name, []).append(f"a hold of `{state}`")
            notes.setdefault(name, []).append(
                f"it holds `{state}` at the operating point (inside its deadband or "
                "tolerance band, a false guard, or a hold branch of its law): small "
                f"deviations are not corrected; the multiplier 1 of `{state}` is a neutral "
                "hold and is left out of the verdict"
            )
    for lp in ts.loops:
        if lp.cooldown > lp.period:
            by_loop.setdefault(lp.name, []).append("its cooldown")
            notes.setdefault(lp.name, []).append(
                f"its cooldown ({lp.cooldown} ticks) is longer than its period "
                f"({lp.period}): after a correction it waits; the linear model lets it "
                "act every period"
            )
    out: list[Finding] = []
    rows: list[tuple[str, str]] = []
    for loop, items in sorted(by_loop.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
        who = f"loop `{loop}`" if loop else "the plant"
        out.append(
            _finding(
                ts,
                CORNER,
                f"the operating point of {who} sits on {join(items)}: the linear verdict is "
                "local only",
                [loop] if loop else [],
                key=f"{loop or 'plant'}:corner",
                notes=tuple(notes.get(loop, [])),
                help="a switching surface at the operating point: check the nonlinear "
                "behaviour with `require` properties (bounded model checking, simulation)",
            )
        )
        rows += [(loop or "plant", x) for x in items]
    return out, rows


# ---- margins (COH308, COH309, COH314) -----------------------------------------------------------


def small_gain_margin(ts: TransitionSystem, mg: Margin, warn: float) -> Finding:
    """COH308: a gain factor below ``warn`` (or its inverse) makes the coupled system
    unstable."""
    which = (
        "raising it to" if mg.gain_high is not None and mg.gain_high < warn else "lowering it to"
    )
    factor = mg.gain_high if which.startswith("raising") else mg.gain_low
    return _finding(
        ts,
        SMALL_GAIN_MARGIN,
        f"loop `{mg.loop}` has a small gain margin ({mg.gain_text}): {which} "
        f"x{factor:.3g} of its gain makes the coupled system unstable",
        [mg.loop],
        key=mg.loop,
        data=mg.to_data(),
        help="lower the gain or add a deadband/rate limit; the margin is for the "
        f"coupled system (warning below x{warn:g})",
    )


def small_delay_margin(ts: TransitionSystem, mg: Margin) -> Finding:
    """COH309: a few ticks of extra measurement delay make the coupled system unstable."""
    assert mg.delay is not None
    extra = mg.delay + 1
    return _finding(
        ts,
        SMALL_DELAY_MARGIN,
        f"loop `{mg.loop}` has a small delay margin: {extra} extra tick"
        f"{'s' if extra != 1 else ''} ({extra * ts.tick:g} s) "
        "of measurement delay make the coupled system unstable",
        [mg.loop],
        key=mg.loop,
        data=mg.to_data(),
        help="slow the loop down (longer period, lower gain) or measure faster",
    )


def fragile_together(
    ts: TransitionSystem,
    sim: Simultaneous,
    margins: Sequence[Margin],
    warn: float,
    below: float,
) -> Finding:
    """COH314: each loop's own gain margin is comfortable (``warn`` either way), but a
    simultaneous change of their gains by less than ``below`` (some up, some down) makes the
    coupled system unstable. ``margins``: those of the loops the change needs."""
    assert sim.delta is not None and sim.factors
    moved = [x for x, _ in sim.factors]
    up = [x for x, f in sim.factors if f > 1]
    down = [x for x, f in sim.factors if f < 1]
    change = join(
        ([f"raising the gain of {names(up)}"] if up else [])
        + (
            [f"lowering that of {names(down)}" if up else f"lowering the gain of {names(down)}"]
            if down
            else []
        )
    )
    size = abs(sim.factors[0][1] - 1.0)  # the vertex found unstable
    alone = "; ".join(f"`{m.loop}` {m.gain_text}" for m in margins)
    return _finding(
        ts,
        FRAGILE_TOGETHER,
        f"loops {names(moved)} are each robust alone (gain margins {alone}), but the coupled "
        f"system is fragile: {change}, each by {size:.1%} at once, makes it unstable",
        moved,
        key=",".join(moved),
        data=sim.to_data(),
        notes=(
            f"searched the {sim.patterns} sign patterns of a simultaneous relative change of "
            f"{names(list(sim.loops))}: every one is stable up to {sim.delta:.1%}"
            + (f" ({sim.note})" if sim.note else ""),
        ),
        help="the loops' interaction, not any one gain, is the weak point: detune them "
        "together, or decouple them (separate their timescales, or pair each actuator with "
        "the signal it moves most: see the RGA); re-check both gains changed at once "
        f"(warning below {below:.0%} when every loop alone has x{warn:g} either way)",
    )


# ---- interaction (COH310, COH311) -----------------------------------------------------------


def same_signal(ts: TransitionSystem, integral: Sequence[str], signal: str) -> Finding:
    """COH310: integral loops that sense the same signal."""
    return _finding(
        ts,
        PAIRING,
        f"loops {names(integral)} integrate the same signal `{signal}`: at steady "
        "state only one of them can set it, the others drift (a marginal mode)",
        integral,
        key=",".join(integral) + ":same-signal",
        help="let one loop own the signal, or give the others a different one",
    )


def singular_gains(ts: TransitionSystem, group: Sequence[str], actuators: Sequence[str]) -> Finding:
    """COH310: the steady-state gain matrix of a group of loops is singular."""
    return _finding(
        ts,
        PAIRING,
        f"the steady-state gain matrix of loops {names(group)} is singular: their "
        f"actuators ({', '.join(f'`{a}`' for a in actuators)}) cannot set their sensed "
        "values independently",
        list(group),
        key=",".join(group) + ":singular",
        help="two loops integrating the same signal fight over it; pair each actuator "
        "with a signal it alone controls",
    )


def relative_gain(
    ts: TransitionSystem,
    loop: str,
    group: Sequence[str],
    actuator: str,
    sensed: str,
    lam: float,
) -> Finding:
    """COH310: a loop's relative gain is negative or too large."""
    why = (
        "at steady state its actuator works against the other loops"
        if lam < 0
        else "the other loops dominate its sensed value"
    )
    return _finding(
        ts,
        PAIRING,
        f"the relative gain of loop `{loop}` (`{actuator}` -> `{sensed}`) is {lam:.3g}: {why}",
        [loop, *[x for x in group if x != loop]],
        key=f"{loop}:rga",
        help="pair the actuator with another sensed signal, or decouple the loops",
        data={"relative_gain": lam},
    )


def niederlinski(ts: TransitionSystem, group: Sequence[str], index: float) -> Finding:
    """COH311: a negative Niederlinski index."""
    return _finding(
        ts,
        NIEDERLINSKI,
        f"the Niederlinski index of loops {names(group)} is {index:.3g} < 0: the pairing "
        "is unstable under integral control for any tuning",
        list(group),
        key=",".join(group) + ":ni",
        help="change the pairing of actuators and sensed signals",
        data={"niederlinski": index},
    )


# ---- timescales (COH312) --------------------------------------------------------------------


def timescale_pair(
    ts: TransitionSystem,
    a: str,
    b: str,
    how: str,
    states: Sequence[str],
    ratio: float,
    limit: float,
) -> str:
    """The sentence for two loops at comparable speeds; ``how`` they are coupled through
    ``states`` ("both actuate", "share", "are coupled one way through")."""
    la, lb = ts.loop(a), ts.loop(b)
    return (
        f"loops `{a}` (every {la.period * ts.tick:g} s) and `{b}` (every "
        f"{lb.period * ts.tick:g} s) {how} {names(states)} and "
        f"run at comparable speeds (period ratio {ratio:.3g} < "
        f"{limit:g})"
    )


def timescale_overlap(
    ts: TransitionSystem, pairs: Sequence[TimescalePair], loops: Sequence[str]
) -> Finding:
    """COH312 for one group of loops that chase each other (``loops``, in declaration order):
    the pair itself, or the group with each pair in its notes."""
    if len(pairs) == 1:
        an, bn, text, ratio, shared = pairs[0]
        return _finding(
            ts,
            TIMESCALE_OVERLAP,
            text,
            [an, bn],
            key=f"{an},{bn}:timescale",
            help="separate their periods by 5-10x, or let one loop own the shared state",
            data={"ratio": ratio, "shared": shared},
        )
    speeds = ", ".join(f"`{x}` (every {ts.loop(x).period * ts.tick:g} s)" for x in loops)
    return _finding(
        ts,
        TIMESCALE_OVERLAP,
        f"{len(loops)} loops that act on each other's states run at comparable speeds: {speeds}",
        loops,
        key=",".join(loops) + ":timescale",
        notes=[p[2] for p in pairs],
        help="separate their periods by 5-10x (the slower loop acting on what the "
        "faster one has settled), or let one loop own each shared state",
        data={
            "ratio": min(p[3] for p in pairs),
            "shared": sorted({s for p in pairs for s in p[4]}),
            "pairs": [list(p[:2]) for p in pairs],
        },
    )


# ---- the nominal run (COH313) ---------------------------------------------------------------


def nominal_oscillation(
    ts: TransitionSystem, st: Structure, osc: Oscillation, verdict: str
) -> Finding:
    """COH313: the nominal run does not settle; ``verdict`` is the linear one (stable,
    marginal, or unknown) that does not show it."""
    from coherence.simulate.view import show, trace_view

    name, lo, hi = osc.states[0]
    state = ts.state(name)
    swing = f"`{name}` swings between {show(lo, state.scale)} and {show(hi, state.scale)}"
    if osc.period is not None:
        what = (
            f"from t={osc.onset * ts.tick:g}s {swing} and repeats every {osc.period} "
            f"tick{'s' if osc.period != 1 else ''} ({osc.period * ts.tick:g} s)"
        )
    else:
        what = (
            f"{swing} to the end of its {osc.ticks} ticks, reversing {osc.reversals} times "
            "in the last part without dying out"
        )
    if osc.period is None and osc.measured():  # the run's own cycle, not a linear mode
        what += f" ({osc.measured(state.unit, state.scale)})"
    local = {
        "stable": "the linear verdict (stable at the operating point) is local and does "
        "not show it",
        "marginal": "the linear verdict (marginal at the operating point) cannot decide it",
    }.get(verdict, "no operating point describes it")
    owners = [x for x in st.owners[st.state_index[name]] if x != "plant"]
    others = [
        f"`{n}` between {show(a, ts.state(n).scale)} and {show(b, ts.state(n).scale)}"
        for n, a, b in osc.states[1:4]
    ]
    last = osc.onset + 2 * (osc.period or 4)
    return _finding(
        ts,
        NOMINAL_OSCILLATION,
        f"the nominal run does not settle: {what}, a sustained oscillation; {local}",
        owners[:1],
        key=f"{ts.name}:nominal-oscillation",
        notes=(
            "the reference simulator from the initial state at nominal input"
            + (f"; also swinging: {', '.join(others)}" if others else ""),
        ),
        help="the loops in the cycle overshoot each correction: add damping (a lower gain, "
        "a stabilization window, a cooldown) or shorten the measurement lag",
        data=osc.to_data(),
        trace=trace_view(
            ts, osc.trace, title="nominal scenario", last_tick=min(last, osc.ticks - 1)
        ),
    )


# ---- verdicts -------------------------------------------------------------------------------


def stable(
    ts: TransitionSystem,
    found: Sequence[Finding],
    verdict: str,
    rho: float | None,
    reason: str,
    cycle: int,
    marginal_tol: float,
) -> tuple[Verdict, ...]:
    """The verdict of each `require stable` from the coupled ``verdict`` (stable, unstable,
    marginal, unknown) and spectral radius ``rho``; ``reason`` is why it is unknown, ``cycle``
    the operating orbit's length in ticks (0 for a rest point). A linear certificate is
    local: stable is HOLDS, never PROVED."""
    codes = tuple(sorted({f.code for f in found if f.code in STABILITY}))
    corner = any(f.code == CORNER for f in found)
    out: list[Verdict] = []
    for r in ts.requirements:
        if r.kind != "stable":
            continue
        if verdict == "stable" and rho is not None:
            # a linear certificate is local: small deviations from this operating point
            # decay; it says nothing of runs that leave its neighbourhood
            why = (
                f"holds locally: spectral radius {radius_text(rho)} < 1 at the operating point "
                "(a linear certificate for small deviations from it)"
            )
            if corner:
                why += (
                    "; the operating point sits on a switching surface (deadband, "
                    "saturation, cooldown: COH307), where the linearization is the slope of one side only"
                )
            if cycle:
                why += f"; the operating point is a cycle of {cycle} ticks"
            status = Status.HOLDS
        elif verdict == "unstable" and rho is not None:
            why = (
                f"local, linear: spectral radius {radius_text(rho)} > 1 at the operating "
                "point: small deviations grow"
            )
            status = Status.FALSIFIED
        elif verdict == "marginal" and rho is not None:
            why = (
                f"local, linear: spectral radius {rho:.9g} is within "
                f"{marginal_tol:g} of 1; a linear test cannot decide"
            )
            status = Status.UNKNOWN
        else:
            why = reason or "no operating point"
            status = Status.UNKNOWN
        out.append(
            Verdict(
                r.text or "require stable", "stable", status, r.span, "linear", None, why, codes
            )
        )
    return tuple(out)
