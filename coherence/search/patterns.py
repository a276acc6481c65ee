"""Input patterns: the exogenous signals an operator's system lives through.

A pattern is one input sequence for every declared input, within its declared range (the
simulator applies each input's ``slew``). :func:`input_patterns` gives, for a run of ``T``
ticks from the initial state: the nominal inputs held; each input held at either end of its
range; steps, bursts and ramps of each input from its nominal value; all inputs at one end
together; and seeded random piecewise-constant sequences. Each has a name a report can print
(``burst demand=140 req/s at 30s for 60s``) and is nominal up to the tick it first leaves
its nominal value (:attr:`Patterns.leaves`), which tells whether a run that starts there is
still on the nominal run.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import TransitionSystem
from coherence.simulate.view import show

Array = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Patterns:
    """``inputs[s, t, j]``: input j at tick t of pattern s; ``names[s]`` says what it is;
    ``leaves[s]`` is the first tick at which it is not nominal (``T`` if never)."""

    names: tuple[str, ...]
    inputs: Array
    leaves: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.names)


def leaves_of(ts: TransitionSystem, inputs: Array) -> tuple[int, ...]:
    """Per sequence of ``inputs`` [S, T, nu]: the first tick at which it is not nominal."""
    nominal = np.array([u.nominal for u in ts.inputs], dtype=float)
    T = inputs.shape[1]
    out = []
    for s in range(inputs.shape[0]):
        off = ~np.isclose(inputs[s], nominal, rtol=1e-12, atol=0.0).all(axis=1)
        hit = np.flatnonzero(off)
        out.append(int(hit[0]) if hit.size else T)
    return tuple(out)


def input_patterns(ts: TransitionSystem, ticks: int, seed: int, random: int = 16) -> Patterns:
    """The structured patterns for a run of ``ticks`` ticks, then ``random`` seeded random
    piecewise-constant ones (segments of 1 to 4 hyperperiods, values uniform in each range,
    a quarter of them at either end)."""
    T = max(int(ticks), 1)
    nu = len(ts.inputs)
    nominal = np.array([u.nominal for u in ts.inputs], dtype=float)
    names: list[str] = ["nominal"]
    rows: list[Array] = [np.broadcast_to(nominal, (T, nu)).copy()]
    H = ts.hyperperiod
    tick = ts.tick

    def at(t: int) -> str:
        return f"{t * tick:g}s"

    for j, u in enumerate(ts.inputs):
        unit = "" if u.unit in ("1", "bool") else f" {u.unit}"
        ends = [(u.lo, "low"), (u.hi, "high")] if u.lo < u.hi else []
        for level, _ in ends:
            if level == u.nominal:
                continue
            text = f"{u.name}={show(level, u.scale)}{unit}"
            x = np.broadcast_to(nominal, (T, nu)).copy()
            x[:, j] = level
            names.append(f"held {text}")
            rows.append(x)
            for start in sorted({T // 4, T // 2}):
                x = np.broadcast_to(nominal, (T, nu)).copy()
                x[start:, j] = level
                names.append(f"step {text} at {at(start)}")
                rows.append(x)
            for width in sorted({max(H, 1), max(3 * H, 5), max(T // 4, 1)}):
                start = T // 5
                if start + width >= T:
                    continue
                x = np.broadcast_to(nominal, (T, nu)).copy()
                x[start : start + width, j] = level
                names.append(f"burst {text} at {at(start)} for {at(width)}")
                rows.append(x)
            x = np.broadcast_to(nominal, (T, nu)).copy()
            ramp_end = max(T // 2, 1)
            x[:ramp_end, j] = np.linspace(u.nominal, level, ramp_end)
            x[ramp_end:, j] = level
            names.append(f"ramp to {text} by {at(ramp_end)}")
            rows.append(x)
    if nu > 1:
        for end, label in ((0, "low"), (1, "high")):
            x = np.broadcast_to(nominal, (T, nu)).copy()
            for j, u in enumerate(ts.inputs):
                x[:, j] = u.lo if end == 0 else u.hi
            names.append(f"every input held {label}")
            rows.append(x)
    if nu and random > 0:
        rng = np.random.default_rng([seed, zlib.crc32(b"patterns")])
        lo = np.array([u.lo for u in ts.inputs], dtype=float)
        hi = np.array([u.hi for u in ts.inputs], dtype=float)
        for r in range(random):
            x = np.empty((T, nu))
            t = 0
            while t < T:
                seg = int(rng.integers(1, 5)) * max(H, 1)
                v = lo + (hi - lo) * rng.random(nu)
                pick = rng.random(nu)
                v = np.where(pick < 0.125, lo, np.where(pick > 0.875, hi, v))
                x[t : t + seg] = v
                t += seg
            names.append(f"random #{r + 1}")
            rows.append(x)
    inputs = np.stack(rows) if rows else np.zeros((1, T, 0))
    return Patterns(tuple(names), inputs, leaves_of(ts, inputs))


def piecewise(ts: TransitionSystem, levels: Array, ticks: int) -> Array:
    """Inputs ``[S, ticks, nu]`` from ``levels[s, m, j]`` in ``[0, 1]``: input j's share of
    its range during segment m of ``M`` equal segments (the optimiser's coordinates)."""
    M = levels.shape[1]
    lo = np.array([u.lo for u in ts.inputs], dtype=float)
    hi = np.array([u.hi for u in ts.inputs], dtype=float)
    seg = np.minimum((np.arange(ticks) * M) // max(ticks, 1), M - 1)
    return np.asarray(lo + (hi - lo) * np.clip(levels[:, seg, :], 0.0, 1.0))
