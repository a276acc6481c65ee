"""Sustained oscillations measured on a replayed run, and the describing-function prediction.

Takes a signal of a run (one state over ticks) and returns its limit cycle, if it has one:
the period and amplitude measured after the transient (the first quarter of the run is left
out), and whether the swing still grows, holds or decays from one cycle to the next. A
linearization at the operating point cannot see this (its modes are those of the origin);
the measured cycle is what the reports show.

For a loop with one relay or saturation the harmonic-balance prediction goes beside it: the
describing function N(A) of the nonlinearity and the frequency response G(i w) of the rest of
the loop meet where G(i w) N(A) = -1 (Slotine & Li, *Applied Nonlinear Control*, 1991, ch. 5;
Gelb & Vander Velde, *Multiple-Input Describing Functions and Nonlinear System Design*, 1968):

- ideal relay of output +/-M: N(A) = 4 M / (pi A);
- relay with hysteresis h: N(A) = 4 M / (pi A) * exp(-i asin(h / A)), A >= h;
- saturation of slope k and limit delta: N(A) = (2 k / pi) (asin(d) + d sqrt(1 - d^2)),
  d = delta / A, for A > delta (k below).

>>> import numpy as np
>>> y = np.sin(2 * np.pi * np.arange(400) / 20.0)
>>> lc = measure(y, 0.5)
>>> round(lc.period_s, 3), round(lc.amplitude, 3), lc.growth
(10.0, 1.0, 'sustained')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq

from coherence.ir.dump import format_expr
from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    InputVar,
    Ite,
    Let,
    LoopIR,
    Phase,
    StateVar,
    TransitionSystem,
    Unary,
    Var,
    map_children,
    walk,
)
from coherence.simulate.engine import Trace, evaluate, simulate
from coherence.simulate.replay import Scenario, replay

GROWTH_TOL = 0.02
"""Per-cycle change of the swing below which an oscillation counts as sustained."""


@dataclass(frozen=True, slots=True)
class LimitCycle:
    """A measured oscillation: ``period_s``, ``amplitude`` (half the peak-to-peak swing of
    the last full cycle, in the signal's units), ``growth`` ("growing", "sustained",
    "decaying"), ``ratio`` (the swing's mean change per cycle) and how many full ``cycles``
    were measured."""

    period_s: float
    amplitude: float
    growth: str
    ratio: float
    cycles: int

    @property
    def sustained(self) -> bool:
        return self.growth == "sustained"


def measure(y: NDArray[np.float64], tick: float, skip: float = 0.25) -> LimitCycle | None:
    """The oscillation of ``y`` (one value per tick) after the first ``skip`` of the run; None
    where it does not cross its mean upwards at least three times there (no cycle to
    measure) or does not move at all. A tail that repeats exactly with some period (an
    integer state flapping, a relay cycle) is measured by that period: sustained, its
    amplitude half its swing."""
    tail = np.asarray(y, dtype=float)[int(len(y) * skip) :]
    if len(tail) < 4 or float(np.ptp(tail)) <= 1e-12 * max(1.0, float(np.max(np.abs(tail)))):
        return None
    swing = float(np.ptp(tail))
    for p in range(2, len(tail) // 3 + 1):
        if float(np.max(np.abs(tail[p:] - tail[:-p]))) <= 1e-9 * swing:
            return LimitCycle(p * tick, 0.5 * swing, "sustained", 1.0, len(tail) // p)
    c = tail - 0.5 * (float(tail.max()) + float(tail.min()))
    up = np.flatnonzero((c[:-1] < 0) & (c[1:] >= 0))
    if len(up) < 3:
        return None
    # interpolated upward crossings of the mid-level
    at = up + c[up] / (c[up] - c[up + 1])
    periods = np.diff(at)
    swings = np.array(
        [0.5 * float(np.ptp(tail[up[i] : up[i + 1] + 1])) for i in range(len(up) - 1)]
    )
    n = len(swings)
    ratio = (swings[-1] / swings[0]) ** (1.0 / (n - 1)) if n > 1 and swings[0] > 0 else 1.0
    growth = (
        "growing"
        if ratio > 1 + GROWTH_TOL
        else ("decaying" if ratio < 1 - GROWTH_TOL else "sustained")
    )
    return LimitCycle(float(np.median(periods)) * tick, float(swings[-1]), growth, ratio, n)


# ---- describing functions ------------------------------------------------------------------


def relay(A: float, M: float, h: float = 0.0) -> complex:
    """N(A) of a relay of output +/-``M`` with hysteresis ``h`` (Slotine & Li, sec. 5.3)."""
    if h >= A:
        return complex(0.0)
    return 4 * M / (math.pi * A) * complex(math.cos(math.asin(h / A)), -h / A)


def saturation(A: float, k: float, delta: float) -> float:
    """N(A) of a saturation of slope ``k`` and limit ``delta`` (Slotine & Li, eq. 5.24)."""
    if delta >= A:
        return k
    d = delta / A
    return 2 * k / math.pi * (math.asin(d) + d * math.sqrt(1 - d * d))


@dataclass(frozen=True, slots=True)
class Prediction:
    """The harmonic-balance limit cycle: period (s) and amplitude at the relay's input."""

    period_s: float
    amplitude: float


def relay_integrator(k: float, M: float, h: float, tau: float) -> Prediction | None:
    """A relay (output +/-``M``, hysteresis ``h``) around an integrator of gain ``k`` with a
    dead time ``tau``: G(s) = k e^{-s tau} / s. Harmonic balance: |G| |N| = 1 gives
    A = 4 k M / (pi w); the phases, w tau + asin(h / A) = pi / 2. None where no cycle
    balances (no dead time and no hysteresis: the relay chatters)."""
    if tau <= 0 and h <= 0:
        return None

    def amp(w: float) -> float:
        return 4 * k * M / (math.pi * w)

    def phase(w: float) -> float:
        return w * tau + math.asin(min(1.0, h / amp(w))) - math.pi / 2

    hi = 4 * k * M / (math.pi * h) if h > 0 else math.pi / (2 * tau)
    lo = 1e-9 * hi
    if phase(lo) * phase(hi) > 0:
        return None
    w = float(brentq(phase, lo, hi, xtol=1e-14))
    return Prediction(2 * math.pi / w, amp(w))


def relay_dead_zone(A: float, M: float, delta: float) -> float:
    """N(A) of a relay of output +/-``M`` with a dead zone of half-width ``delta``:
    4 M / (pi A) sqrt(1 - (delta / A)^2) for A > delta, 0 below (Slotine & Li, sec. 5.3)."""
    if delta >= A:
        return 0.0
    return 4 * M / (math.pi * A) * math.sqrt(1 - (delta / A) ** 2)


# ---- the single relay or saturation in a loop's law ------------------------------------------

NONLINEAR_CALLS = ("min", "max", "abs", "ceil", "floor", "round")


@dataclass(frozen=True, slots=True)
class Nonlinearity:
    """The one relay or saturation of a loop's law, read from its IR expression.

    ``node`` is the subexpression, ``signal`` what it reads; the input is measured from
    ``center`` (threshold or clamp midpoint) and the output from ``offset``. ``kind`` is
    "relay", "relay with hysteresis", "relay with dead zone" or "saturation"; ``M`` the relay's
    half swing (a saturation's limit: half the clamp's width, slope 1), ``h`` the hysteresis
    or dead zone half-width; ``sign`` +1 where the output rises with the input, -1 where the
    law inverts it (a relay that lowers the actuator when the signal is high)."""

    loop: str
    state: str
    kind: str
    node: Expr
    signal: Expr
    center: float
    offset: float
    M: float
    h: float
    sign: float


def _value(ts: TransitionSystem, e: Expr) -> float | None:
    """The value of a constant expression (literals and parameters), None otherwise."""
    match e:
        case Const(v):
            return float(v)
        case Var(n):
            try:
                return float(ts.param(n).value)
            except KeyError:
                return None
        case Unary("neg", a):
            x = _value(ts, a)
            return None if x is None else -x
        case Binary(op, a, b) if op in ("+", "-", "*", "/"):
            x, y = _value(ts, a), _value(ts, b)
            if x is None or y is None or (op == "/" and y == 0):
                return None
            return {"+": x + y, "-": x - y, "*": x * y, "/": x / y if y else 0.0}[op]
    return None


def _nonlinear(e: Expr) -> bool:
    return isinstance(e, Ite | Phase) or (isinstance(e, Call) and e.fn in NONLINEAR_CALLS)


def _smooth(e: Expr) -> bool:
    """No switching anywhere in ``e`` (comparisons, branches, clamps, rounding)."""
    return not any(
        _nonlinear(n) or (isinstance(n, Binary) and n.op not in ("+", "-", "*", "/", "^"))
        for n in walk(e)
    )


def _compare(ts: TransitionSystem, e: Expr) -> tuple[Expr, float, bool] | None:
    """(signal, threshold, true-when-above) of ``signal > c`` (or ``<``, either side)."""
    if not (isinstance(e, Binary) and e.op in ("<", "<=", ">", ">=")):
        return None
    c = _value(ts, e.right)
    if c is not None:
        return e.left, c, e.op in (">", ">=")
    c = _value(ts, e.left)
    if c is not None:
        return e.right, c, e.op in ("<", "<=")
    return None


def _relay(ts: TransitionSystem, e: Ite, loop: str, state: str) -> Nonlinearity | str:
    first = _compare(ts, e.cond)
    a = _value(ts, e.then)
    if first is None or a is None:
        inside = [_what(n) for n in walk(e.then) if _nonlinear(n)]
        return "a band (if/else) whose branch is not a constant output" + (
            f" but {inside[0]}: two nonlinearities" if inside else ""
        )
    s, c1, above = first
    b = _value(ts, e.other)
    if b is not None:  # if s > c then a else b: an ideal relay
        hi, lo = (a, b) if above else (b, a)
        return Nonlinearity(
            loop, state, "relay", e, s, c1, 0.5 * (a + b), 0.5 * abs(a - b), 0.0, _sgn(hi - lo)
        )
    inner = e.other
    if not isinstance(inner, Ite):
        return "its branch is not a relay (a threshold on a signal, constant outputs)"
    second = _compare(ts, inner.cond)
    b = _value(ts, inner.then)
    if second is None or b is None or second[0] != s or second[2] == above:
        return "its two thresholds are not on one signal in opposite directions"
    c2 = second[1]
    (t_hi, out_hi), (t_lo, out_lo) = ((c1, a), (c2, b)) if above else ((c2, b), (c1, a))
    if t_hi < t_lo or out_hi == out_lo:
        return "its thresholds overlap"
    half, center, M = 0.5 * (t_hi - t_lo), 0.5 * (t_hi + t_lo), 0.5 * abs(out_hi - out_lo)
    rest = _value(ts, inner.other)
    if inner.other == Var(state):  # holds its output between the thresholds
        kind = "relay with hysteresis" if half > 0 else "relay"
    elif rest is not None and abs(rest - 0.5 * (a + b)) <= 1e-12 * max(1.0, M):
        kind = "relay with dead zone"
    else:
        return "between its thresholds it neither holds nor rests at the middle"
    return Nonlinearity(
        loop, state, kind, e, s, center, 0.5 * (a + b), M, half, _sgn(out_hi - out_lo)
    )


def _sgn(x: float) -> float:
    return 1.0 if x > 0 else -1.0


def _clamp(ts: TransitionSystem, e: Call, loop: str, state: str) -> Nonlinearity | str:
    """min(max(L, lo), hi) or max(min(L, hi), lo), bounds constant: a saturation of L."""
    other = "max" if e.fn == "min" else "min"
    if len(e.args) == 2:
        for inner, bound in (e.args, e.args[::-1]):
            b1 = _value(ts, bound)
            if isinstance(inner, Call) and inner.fn == other and len(inner.args) == 2:
                for sig, b in (inner.args, inner.args[::-1]):
                    b2 = _value(ts, b)
                    if b1 is not None and b2 is not None and _smooth(sig):
                        lo, hi = (b2, b1) if e.fn == "min" else (b1, b2)
                        if hi > lo:
                            mid = 0.5 * (hi + lo)
                            return Nonlinearity(
                                loop,
                                state,
                                "saturation",
                                e,
                                sig,
                                mid,
                                mid,
                                0.5 * (hi - lo),
                                0.0,
                                1.0,
                            )
    return f"its {e.fn}() is not a clamp of a signal between two constants"


def find_nonlinearity(ts: TransitionSystem, loop: LoopIR) -> Nonlinearity | str:
    """The single relay (an if with constant branches on a threshold, with hysteresis or a
    dead zone) or saturation (a min/max clamp between constants) in ``loop``'s law, or why
    there is none: the law switches in several places, rounds (a quantiser), or the loop's
    shaping (rate limits, tolerance band, cooldown, stabilization window) or a multi-rate
    schedule adds switching of its own."""
    if len(loop.actions) != 1:
        return f"`{loop.name}` actuates {len(loop.actions)} states"
    act = loop.actions[0]
    st = ts.state(act.state)
    if ts.hyperperiod != 1:
        return "the loops act at different periods: the loop is not time-invariant"
    if loop.cooldown or act.history:
        return f"`{loop.name}`'s cooldown or stabilization window adds switching of its own"
    top: list[Expr] = []
    stack: list[Expr] = [act.law]
    while stack:
        n = stack.pop()
        if _nonlinear(n):
            top.append(n)
        else:
            stack.extend(c for c in walk(n) if c is not n and _direct(n, c))
    if not top:
        return f"the law of `{loop.name}` is smooth: no relay or saturation to balance"
    if len(top) > 1:
        return f"the law of `{loop.name}` switches in {len(top)} places; harmonic balance needs one"
    node = top[0]
    if isinstance(node, Ite):
        found = _relay(ts, node, loop.name, act.state)
    elif isinstance(node, Call) and node.fn in ("min", "max"):
        found = _clamp(ts, node, loop.name, act.state)
    else:
        return f"the law of `{loop.name}` has {_what(node)}, not a relay or saturation"
    if isinstance(found, str):
        return f"the law of `{loop.name}`: {found}"
    if st.integer:
        return f"`{act.state}` is a whole number: its rounding is a second nonlinearity"
    if not _smooth(found.signal):
        return f"the law of `{loop.name}` switches inside its relay's signal"
    if not _plain_target(ts, loop, st):
        return f"`{loop.name}`'s shaping (rate limit, tolerance band, deadband) adds switching"
    return found


def _direct(parent: Expr, child: Expr) -> bool:
    match parent:
        case Unary(_, a):
            return child is a
        case Binary(_, a, b):
            return child is a or child is b
        case Call(_, args):
            return any(child is x for x in args)
    return False


def _what(e: Expr) -> str:
    if isinstance(e, Call):
        return {"ceil": "a quantiser (ceil)", "floor": "a quantiser (floor)"}.get(e.fn, f"{e.fn}()")
    return "a switching term"


def _plain_target(ts: TransitionSystem, loop: LoopIR, st: StateVar) -> bool:
    """The shaped target is the law's recommendation clamped to the state's bounds only."""
    act = loop.actions[0]
    e = ts.let(act.target).expr
    if isinstance(e, Call) and e.fn == "round":
        e = e.args[0]
    while isinstance(e, Call) and e.fn in ("min", "max") and len(e.args) == 2:
        b = _value(ts, e.args[1])
        if b is None or b not in (st.lo, st.hi):
            return False
        e = e.args[0]
    return e == Var(act.recommendation) if act.recommendation else isinstance(e, Var)


# ---- harmonic balance on the rest of the loop --------------------------------------------


def _linear_part(
    ts: TransitionSystem,
    nl: Nonlinearity,
    x0: NDArray[np.float64],
    u0: NDArray[np.float64],
    params: dict[str, float],
) -> Callable[[NDArray[np.float64]], NDArray[np.complex128]]:
    """G(e^{i w}) from the nonlinearity's output to its input, the rest of the system
    linearized at state ``x0`` and inputs ``u0`` (central differences of one tick of the
    reference simulator, the nonlinearity cut out and fed as an input)."""
    v, s = "__df_v", "__df_s"

    def cut(e: Expr) -> Expr:
        return Var(v) if e == nl.node else map_children(e, cut)

    lets = (*(replace(d, expr=cut(d.expr)) for d in ts.lets), Let(s, nl.signal))
    states = tuple(replace(x, lo=-math.inf, hi=math.inf, integer=False) for x in ts.states)
    inputs = (*ts.inputs, InputVar(v, -math.inf, math.inf, nl.offset, "1", 1.0))
    lin = replace(ts, lets=lets, states=states, inputs=inputs)
    n = len(states)
    eps = 1e-6 * np.maximum(1.0, np.abs(np.append(x0, nl.offset)))
    S = 2 * (n + 1)
    X = np.repeat(x0[None, :], S, axis=0)
    V = np.full(S, nl.offset)
    for j in range(n + 1):
        for k, sg in ((2 * j, 1.0), (2 * j + 1, -1.0)):
            if j < n:
                X[k, j] += sg * eps[j]
            else:
                V[k] += sg * eps[j]
    U = np.concatenate([np.repeat(u0[None, None, :], S, axis=0), V[:, None, None]], axis=2)
    init = {x.name: X[:, i] for i, x in enumerate(states)}
    tr = simulate(lin, 1, inputs=U, params=params, init=init)
    nxt = tr.states[:, 1, :]
    out = tr.let(s)[:, 0]
    J = (nxt[0::2] - nxt[1::2]) / (2 * eps[:, None])  # rows: d/d(x_j or v)
    g = (out[0::2] - out[1::2]) / (2 * eps)
    A, B = J[:n].T, J[n]
    C, D = g[:n], float(g[n])
    eye = np.eye(n)

    def G(w: NDArray[np.float64]) -> NDArray[np.complex128]:
        return np.array(
            [C @ np.linalg.solve(np.exp(1j * x) * eye - A, B) + D for x in np.atleast_1d(w)]
        )

    return G


def harmonic_balance(
    nl: Nonlinearity, G: Callable[[NDArray[np.float64]], NDArray[np.complex128]], tick: float
) -> Prediction | None:
    """The limit cycle where G(e^{i w}) N(A) = -1, with G the loop's linear part seen from
    the nonlinearity (sign folded in: negative feedback) and N its describing function; the
    lowest frequency that balances. None where nothing balances (the loop gain at the phase
    crossover is too small for the relay, or too small to saturate)."""
    grid = np.linspace(1e-4, math.pi - 1e-6, 4000)
    Geff = -nl.sign * G(grid)
    phase = np.unwrap(np.angle(Geff))
    mag = np.abs(Geff)
    lag = np.zeros_like(mag)
    if nl.kind == "relay with hysteresis":  # A = 4 M |G| / pi; N lags by asin(h / A)
        lag = np.arcsin(np.minimum(1.0, nl.h / np.maximum(4 * nl.M * mag / math.pi, 1e-300)))
    f = phase - lag + math.pi  # zero where the phases balance
    for i in np.flatnonzero(np.sign(f[:-1]) != np.sign(f[1:])):
        w0, w1 = float(grid[i]), float(grid[i + 1])
        g0 = complex(-nl.sign * G(np.array([w0]))[0])

        def fn(w: float, base: float = float(phase[i]), g0: complex = g0) -> float:
            g = complex(-nl.sign * G(np.array([w]))[0])
            ph = base + math.atan2((g / g0).imag, (g / g0).real)
            lg = 0.0
            if nl.kind == "relay with hysteresis":
                lg = math.asin(min(1.0, nl.h / (4 * nl.M * abs(g) / math.pi)))
            return ph - lg + math.pi

        w = float(brentq(fn, w0, w1, xtol=1e-12))
        gm = abs(complex(G(np.array([w]))[0]))
        A = _amplitude(nl, gm)
        if A is not None:
            return Prediction(2 * math.pi / w * tick, A)
    return None


def _amplitude(nl: Nonlinearity, gm: float) -> float | None:
    """The A with |N(A)| = 1 / |G| at the balancing frequency."""
    if gm <= 0:
        return None
    target = 1.0 / gm
    if nl.kind in ("relay", "relay with hysteresis"):
        return 4 * nl.M * gm / math.pi
    if nl.kind == "relay with dead zone":
        peak = nl.h * math.sqrt(2)  # N peaks at A = delta sqrt(2) with 2 M / (pi delta)
        if target > relay_dead_zone(peak, nl.M, nl.h):
            return None
        return float(brentq(lambda a: relay_dead_zone(a, nl.M, nl.h) - target, peak, 1e12))
    if target >= 1.0:  # saturation of slope 1: the loop does not grow past its limit
        return None
    return float(brentq(lambda a: saturation(a, 1.0, nl.M) - target, nl.M, 1e15 * nl.M))


# ---- the flapping state's cycle, measured on the continued run --------------------------------

CONTINUE_MAX = 4000
"""The most ticks a replayed run is continued past its scenario to measure its cycle."""

CONTINUE_VALUES = 5_000_000
"""The most numbers (ticks x states, definitions and inputs: 40 MB) the continued run holds;
a wide system is continued for fewer ticks."""


def continue_run(ts: TransitionSystem, sc: Scenario, within: int) -> tuple[Trace, int]:
    """The scenario replayed and continued with its last inputs held: ``max(200, 20 *
    within)`` ticks more, at most :data:`CONTINUE_MAX`; and the tick where the held part
    starts."""
    extra = min(CONTINUE_MAX, max(200, 20 * within, 8 * ts.hyperperiod))
    width = len(ts.states) + len(ts.lets) + len(ts.inputs)
    ticks = min(sc.ticks + extra, max(sc.ticks, CONTINUE_VALUES // width))
    return replay(ts, sc, ticks), sc.ticks


def limit_cycle_data(
    ts: TransitionSystem, state: str, sc: Scenario, within: int
) -> tuple[dict[str, object] | None, LimitCycle | None]:
    """``data.limit_cycle`` of a flapping finding: the cycle of ``state`` measured on the
    replayed run continued past the counterexample (its inputs held at their last values),
    the states and loops that swing with it, and the describing-function prediction
    (``{period_s, amplitude, kind, loop, signal}``, or ``{reason}`` where the loop has no single
    relay or saturation). None where the continued run has no full cycle."""
    tr, start = continue_run(ts, sc, within)
    X = np.asarray(tr.states[0], dtype=float)
    lc = measure(X[start:, ts.state_names.index(state)], ts.tick)
    if lc is None:
        return None, None
    st = ts.state(state)
    period = max(1, round(lc.period_s / ts.tick))
    tail = X[-max(3 * period, 8) :]
    swinging = [
        x.name
        for i, x in enumerate(ts.states)
        if x.kind in ("plant", "actuator")
        and np.ptp(tail[:, i]) > 1e-3 * max(1.0, float(np.max(np.abs(tail[:, i]))))
    ]
    loops = sorted(lp.name for lp in ts.loops if set(lp.actuates) & set(swinging))
    df: dict[str, object] = {"reason": "no loop takes part in the cycle"}
    own = [lp for lp in ts.loops if state in lp.actuates]
    for lp in own or [lp for lp in ts.loops if lp.name in loops]:
        nl = find_nonlinearity(ts, lp)
        if isinstance(nl, str):
            df = {"reason": nl}
            continue
        u0 = np.asarray(tr.inputs[0, -1], dtype=float)
        x0 = tail.mean(axis=0)
        params = {k: float(np.ravel(v)[0]) for k, v in sc.params.items()}
        pred = harmonic_balance(nl, _linear_part(ts, nl, x0, u0, params), ts.tick)
        if pred is None:
            df = {"reason": f"the loop gain of `{lp.name}` does not balance its {nl.kind}"}
            continue
        df = {
            "period_s": pred.period_s,
            "amplitude": pred.amplitude,
            "kind": nl.kind,
            "loop": lp.name,
            "signal": format_expr(nl.signal),
            "measured_amplitude": _half_swing(evaluate(nl.signal, tr)[0, start:]),
        }
        break
    data: dict[str, object] = {
        "period_s": lc.period_s,
        "amplitude": lc.amplitude / (st.scale or 1.0),
        "growth": lc.growth,
        "states": swinging or [state],
        "loops": loops,
        "measured_over_s": (tr.ticks - start) * ts.tick,
        "describing_function": df,
    }
    return data, lc


def _half_swing(y: NDArray[np.float64]) -> float:
    """Half the peak-to-peak swing of the last three quarters of ``y``."""
    tail = np.asarray(y, dtype=float)[len(y) // 4 :]
    return 0.5 * float(np.ptp(tail)) if len(tail) else 0.0
