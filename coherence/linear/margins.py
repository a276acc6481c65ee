"""Stability margins of each loop in the coupled system, and loop-set variants.

Gain margin: every gain parameter of the loop (``<loop>.<state>.gain``, see
:func:`coherence.ir.transform.loop_gain_params`) is scaled by a factor f, the others left as
they are, and the spectral radius of the lifted coupled system is evaluated; a scan in steps
of 2 from f = 1 outwards, then bisection (in log f) to ``rtol``, finds the factors where the
system first goes unstable below and above 1. Reported as factors: "x0.2 .. x3.4".

Delay margin: every sensor of the loop is delayed by e more ticks (exactly: e shift registers
at the sensed value, as :func:`coherence.ir.transform.with_extra_delay` does), scanning
e = 1, 2, 4, ... then bisecting: the largest extra delay that keeps the coupled system
stable, in ticks and seconds. "n/a" for loops that sense nothing.

Simultaneous margin (several loops at once): the smallest delta such that some combination
of factors 1 +/- delta on the gains of the loops together makes the coupled system unstable,
a vertex search over the 2^k sign patterns with delta bisected (see :func:`vertex_margin`).

All are evaluated on the loop-structured linearization (:class:`~.model.LoopModel`): a
variant is a few replaced rows, and only the blocks of the monodromy those rows reach are
solved again (:meth:`~.spectrum.Spectrum.variant_radius`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sps
from numpy.typing import NDArray

from coherence.linear.disk import DiskMargin, loop_disk_margins, multiloop_disk_margin
from coherence.linear.model import LoopModel, outside_band
from coherence.linear.nyquist import delay_crossing, gain_crossings, schur_of
from coherence.linear.spectrum import Spectrum, radius_of


@dataclass(frozen=True, slots=True)
class Margin:
    """A loop's margins. ``gain_low``/``gain_high``: the factors at which the coupled system
    goes unstable (None: stable over the whole searched range, or unbounded: then
    ``gain_low_why``/``gain_high_why`` says why no factor can destabilise it); ``delay``: the
    largest extra delay in ticks that keeps it stable (None: the loop senses nothing, or no
    delay destabilises it: ``delay_why``); ``delay_open``: no instability up to the largest
    delay tried. ``method``: ``"frequency"`` where the margins are read from the loop's
    frequency response (:mod:`.nyquist`, checked by eigen-solves), ``"eigenvalues"`` where
    they were bisected on spectral radii."""

    loop: str
    gain_low: float | None
    gain_high: float | None
    gain_range: tuple[float, float]
    delay: int | None
    delay_open: bool
    tick: float
    gain_low_why: str = ""
    gain_high_why: str = ""
    delay_why: str = ""
    method: str = "eigenvalues"
    branch: str = ""
    unstable_radius: float | None = None
    stable_below: float | None = None
    disk: DiskMargin | None = None

    @property
    def gain_text(self) -> str:
        if self.unstable_radius is not None:
            fix = (
                f"stable below x{_fmt(self.stable_below)}"
                if self.stable_below is not None
                else f"no factor down to x{_fmt(self.gain_range[0])} stabilises it"
            )
            return (
                f"{self.branch}: unstable (spectral radius {self.unstable_radius:.4g} at x1); "
                + fix
            )
        text = self._gain_text()
        return f"{self.branch}: {text}" if self.branch else text

    def _gain_text(self) -> str:
        if self.gain_low is not None:
            lo = f"x{_fmt(self.gain_low)}"
        elif self.gain_low_why:
            lo = "x0"
        else:
            lo = f"<x{_fmt(self.gain_range[0])}"
        if self.gain_high is not None:
            hi = f"x{_fmt(self.gain_high)}"
        elif self.gain_high_why:
            hi = f"unbounded: {self.gain_high_why}"
        else:
            hi = f">x{_fmt(self.gain_range[1])}"
        return f"{lo} .. {hi}"

    @property
    def row_text(self) -> str:
        """The margin table's gain cell: the gain margin and, where computed, the disk
        margin (the gains and phases the loop tolerates at once)."""
        return self.gain_text if self.disk is None else f"{self.gain_text}; {self.disk.text}"

    @property
    def delay_text(self) -> str:
        text = self._delay_text()
        return f"{self.branch}: {text}" if self.branch and text != "n/a" else text

    def _delay_text(self) -> str:
        if self.unstable_radius is not None:
            return "n/a"
        if self.delay_why:
            return f"unbounded: {self.delay_why}"
        if self.delay is None:
            return "n/a"
        more = "+" if self.delay_open else ""
        return f"{self.delay}{more} ticks ({_fmt(self.delay * self.tick)}{more} s)"

    def to_data(self) -> dict[str, object]:
        return {
            "gain_low": self.gain_low,
            "gain_high": self.gain_high,
            "gain_range": list(self.gain_range),
            "delay_ticks": self.delay,
            "delay_s": None if self.delay is None else self.delay * self.tick,
            "delay_open": self.delay_open,
            "gain_low_unbounded": self.gain_low_why or None,
            "gain_high_unbounded": self.gain_high_why or None,
            "delay_unbounded": self.delay_why or None,
            "method": self.method,
            "branch": self.branch or None,
            "unstable_radius": self.unstable_radius,
            "stable_below": self.stable_below,
            "disk": None if self.disk is None else self.disk.to_data(),
        }


BAND = "outside the tolerance band"
"""How a margin row says that it is the law's margin as it acts outside its band."""


def _fmt(v: float) -> str:
    return f"{v:.3g}"


class Variants:
    """Spectral radii of variants of the coupled system (gains, delays) or of loop subsets
    acting alone (relative to the system in which every loop holds)."""

    def __init__(
        self,
        model: LoopModel,
        coupled: Spectrum,
        held: Spectrum | None,
        dense_block_limit: int = 2000,
    ) -> None:
        self.model = model
        self.coupled = coupled
        self.held = held
        self.dense_block_limit = dense_block_limit
        self._local: dict[str, LocalLoop] = {}
        self._outside: dict[str, Variants | None] = {}

    def acts_outside(self, loop: str) -> bool:
        """Whether ``loop`` has a tolerance band outside which its law acts on the loop."""
        out = self.outside(loop)
        return out is not None and out.local(loop).closes()

    def outside(self, loop: str) -> Variants | None:
        """The variants of the system with ``loop``'s law as it acts outside its tolerance
        band (:func:`~.model.outside_band`); None where the loop has no band."""
        if loop not in self._outside:
            m = outside_band(self.model, loop)
            self._outside[loop] = (
                None
                if m is None
                else Variants(m, Spectrum(m.matrices(), self.dense_block_limit), None)
            )
        return self._outside[loop]

    def _per_tick(self, fn: Callable[[int], sps.csr_matrix]) -> list[sps.csr_matrix]:
        """``fn(t)`` for every tick, computed once per distinct tick Jacobian."""
        m = self.model
        seen: dict[int, sps.csr_matrix] = {}
        out = []
        for t in range(m.H):
            key = id(m.nominal[t])
            hit = seen.get(key)
            if hit is None:
                hit = fn(t)
                seen[key] = hit
            out.append(hit)
        return out

    def local(self, loop: str) -> LocalLoop:
        hit = self._local.get(loop)
        if hit is None:
            hit = LocalLoop(self, loop)
            self._local[loop] = hit
        return hit

    def scaled(self, loop: str, factor: float) -> float:
        """The coupled radius with the loop's gains times ``factor``."""
        return self.local(loop).scaled(factor)

    def delayed(self, loop: str, extra: int) -> float:
        """The coupled radius with the loop's sensors ``extra`` ticks later."""
        return self.local(loop).delayed(extra)

    def only(self, loops: frozenset[str]) -> float:
        """Only ``loops`` act, every other loop holds its actuators: the spectral radius of
        the closed loop they form (the blocks their rows close a cycle through; the unit
        multipliers of the held actuators elsewhere are not theirs)."""
        assert self.held is not None
        m = self.model
        rows = m.loop_rows(sorted(loops))
        if not rows:
            return 0.0
        mats = self._per_tick(lambda t: m.fast_rows(t, rows, active=loops))
        return self.held.variant_radius(rows, mats)[1]


class LocalLoop:
    """One loop's rows in the coupled system, as dense matrices over the blocks they reach:
    gain and delay variants of that loop are then small dense products."""

    def __init__(self, variants: Variants, loop: str) -> None:
        m = variants.model
        sp = variants.coupled
        self.loop = loop
        rows = m.loop_rows([loop])
        self.cuts = [c for c, lp in enumerate(m.sensor_loop) if lp == loop]
        probe = variants._per_tick(lambda t: m.fast_rows(t, rows, factors={loop: 2.0}))
        q1, other1, _ = sp.region(rows, probe)
        qs = set(q1.tolist())
        other = other1
        if self.cuts:
            probe_d = variants._per_tick(
                lambda t: sps.vstack(
                    [
                        m.rows(t, rows, delays={loop: 1}),
                        m.delay_rows(t, {loop: 1}, m.n)[1],
                    ]
                ).tocsr()
            )
            reg_rows = m.delay_rows(0, {loop: 1}, m.n)[0]
            q2, other2, _ = sp.region(rows + reg_rows, probe_d)
            qs |= {x for x in q2.tolist() if x < m.n}
            other = max(other1, other2) if len(q2) else other1
        self.q = np.array(sorted(x for x in qs if x < m.n), dtype=np.intp)
        self.other = other
        qpos = {int(x): i for i, x in enumerate(self.q)}
        self.rpos = np.array([qpos[r] for r in rows if r in qpos], dtype=np.intp)
        keep_rows = [r for r in rows if r in qpos]
        self.ticks: list[int] = []
        self.parts: dict[int, tuple[NDArray[np.float64], ...]] = {}
        self._schur: tuple[NDArray[np.complex128], NDArray[np.complex128]] | None = None
        n = m.n
        for t in range(m.H):
            key = id(m.nominal[t])
            self.ticks.append(key)
            if key in self.parts:
                continue
            A = m.A(t)[self.q][:, self.q].toarray()
            nom = m.fast_rows(t, keep_rows)
            E = (m.fast_rows(t, keep_rows, factors={loop: 2.0}) - nom)[:, self.q].toarray()
            if self.cuts:
                ext = m.sensed_rows(t, keep_rows)
                sig = m.nominal[t].sigma
                mine = np.array(self.cuts, dtype=np.intp)
                C = ext[:, n + mine].toarray()
                S = sig[mine][:, self.q].toarray()
                D = A[self.rpos] - C @ S
            else:
                C = np.zeros((len(keep_rows), 0))
                S = np.zeros((0, len(self.q)))
                D = A[self.rpos]
            self.parts[key] = (A, E, D, C, S)

    def scaled(self, factor: float) -> float:
        subs: dict[int, NDArray[np.float64]] = {}
        for key, (A, E, _, _, _) in self.parts.items():
            B = A.copy()
            B[self.rpos] += (factor - 1.0) * E
            subs[key] = B
        return max(self.other, radius_of([subs[k] for k in self.ticks]))

    def delayed(self, extra: int) -> float:
        if extra <= 0 or not self.cuts:
            return self.scaled(1.0)
        q = len(self.q)
        k = len(self.cuts)
        size = q + k * extra
        subs: dict[int, NDArray[np.float64]] = {}
        for key, (A, _, D, C, S) in self.parts.items():
            B = np.zeros((size, size))
            B[:q, :q] = A
            B[self.rpos, :q] = D
            for j in range(k):
                first = q + j * extra
                B[self.rpos, first + extra - 1] += C[:, j]
                B[first, :q] = S[j]
                for i in range(1, extra):
                    B[first + i, first + i - 1] = 1.0
            subs[key] = B
        return max(self.other, radius_of([subs[k2] for k2 in self.ticks]))

    # ---- the frequency-domain answers (one tick matrix, one actuator row, one sensor) --------

    def _single(self) -> tuple[NDArray[np.float64], ...] | None:
        return next(iter(self.parts.values())) if len(self.parts) == 1 else None

    def closes(self) -> bool:
        """Whether the loop's gain has any linear effect at the operating point."""
        return any(bool(E.any()) for _, E, _, _, _ in self.parts.values())

    def reads(self) -> bool:
        """Whether the loop's rows read its sensors at the operating point."""
        return any(bool(C.any()) for _, _, _, C, _ in self.parts.values())

    def fast_gain(
        self, stable_below: float, shown_from: float = 0.0
    ) -> tuple[float | None, float | None, str, str] | None:
        """(low, high, low_why, high_why) read from the root locus on the circle
        (:func:`.nyquist.gain_crossings`), each checked by eigen-solves either side; None where
        the structure does not allow it or a check disagrees (then: bisection)."""
        part = self._single()
        if part is None or not len(self.rpos) or not self.other < stable_below:
            return None
        # the caller asks only where the coupled system (whose radius bounds A's) is stable
        A, E = part[0], part[1]
        # the variant is A + g P E over the loop's rows; the gain enters through the loop's
        # recommendation only, so with one action E = p e (rank one: its actuator row, and
        # under `timing immediate` the plant rows that read the action, each a multiple of
        # the same row e): one scalar resolvent e (zI - A)^-1 p
        rank_one = _rank_one(E)
        if rank_one is None:
            return None
        pv, ev = rank_one
        p = np.zeros(A.shape[0])
        p[self.rpos] = pv
        if self._schur is None:
            self._schur = schur_of(A)
        cr = gain_crossings(A, ev, p, stable_below, self._schur)
        eps = 1e-5
        hi = lo = None
        hi_why = lo_why = ""
        if cr.up is not None:
            f = 1.0 + cr.up
            if not (self.scaled(f * (1 - eps)) < stable_below <= self.scaled(f * (1 + eps))):
                return None
            hi = float(f * (1 - eps))
        else:
            if not self.scaled(1e6) < stable_below:
                return None
            hi_why = "no gain factor puts a closed-loop root on the unit circle"
        if cr.down is not None and 1.0 + cr.down > 1e-6:
            f = 1.0 + cr.down
            if f < shown_from:
                return lo, hi, lo_why, hi_why  # below the range shown: "<x0.01"
            if not (self.scaled(f * (1 + eps)) < stable_below <= self.scaled(f * (1 - eps))):
                return None
            lo = float(f * (1 + eps))
        else:
            if not self.scaled(1e-6) < stable_below:
                return None
            lo_why = "stable for every factor down to 0"
        return lo, hi, lo_why, hi_why

    def disk(self) -> DiskMargin | None:
        """The loop's balanced disk margin, the other loops at their nominal gains
        (:func:`.disk.loop_disk_margins`); None where the loop's part is not one tick matrix
        with a rank-one gain change, or is not stable."""
        part = self._single()
        if part is None or not len(self.rpos):
            return None
        A, E = part[0], part[1]
        r1 = _rank_one(E)
        if r1 is None:
            return None
        p = np.zeros(A.shape[0])
        p[self.rpos] = r1[0]
        if self._schur is None:
            self._schur = schur_of(A)
        if not np.abs(np.diag(self._schur[0])).max(initial=0.0) < 1.0:
            return None  # the eigenvalues of A on the Schur form's diagonal: not stable
        return loop_disk_margins(A, p[:, None], r1[1][None, :], self._schur)[0]

    def fast_delay(self, stable_below: float, check_limit: int) -> tuple[int, str] | None:
        """(delay, why): the largest extra delay that keeps the system stable, from the gain
        crossover of the loop broken at its sensor (:func:`.nyquist.delay_crossing`), checked
        by eigen-solves at it and one tick more (up to ``check_limit`` states); ``why`` says
        why no delay destabilises it (delay then 0). None: not applicable (bisection)."""
        part = self._single()
        if part is None or len(self.cuts) != 1 or not self.other < stable_below:
            return None
        A, _, _, C, S = part
        v = np.zeros(A.shape[0])
        v[self.rpos] = C[:, 0]
        if self._schur is None:
            self._schur = schur_of(A)
        cr = delay_crossing(A, S[0], v, self._schur)
        if cr.critical is None:
            if cr.peak < 1.0:
                return 0, (
                    f"the loop gain at its sensor stays below 1 at every frequency (at most "
                    f"{cr.peak:.3g}): no delay destabilises it (small-gain theorem)"
                )
            return None
        e = max(0, math.ceil(cr.critical) - 1)
        if len(self.q) + e + 1 > check_limit:
            return e, ""
        for cand in (e, e - 1, e + 1):
            if cand < 0:
                continue
            ok = self.delayed(cand) < stable_below if cand > 0 else True
            if ok and not self.delayed(cand + 1) < stable_below:
                return cand, ""
        return None


def _rank_one(
    E: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """(p, e) with E = outer(p, e), where E has rank one (None otherwise, or E = 0)."""
    if E.shape[0] == 1:
        return np.ones(1), E[0]
    u, sv, vt = np.linalg.svd(E, full_matrices=False)
    if not len(sv) or sv[0] == 0.0 or (len(sv) > 1 and sv[1] > 1e-12 * sv[0]):
        return None
    return u[:, 0] * sv[0], vt[0]


class LoopSet:
    """Several loops' rows in the coupled system, as dense matrices over the blocks they
    reach: a variant with a gain factor per loop is ``A + sum_i (f_i - 1) E_i`` on those rows
    (the rows are linear in each loop's factor, :meth:`~.model.LoopModel.fast_rows`), then a
    dense product over the hyperperiod. ``size`` is the number of states involved; build it
    with ``limit`` to stop before assembling anything larger (``ok`` is then False)."""

    def __init__(self, variants: Variants, loops: Sequence[str], limit: int) -> None:
        m = variants.model
        self.loops = tuple(loops)
        rows = m.loop_rows(list(loops))
        probe = variants._per_tick(
            lambda t: m.fast_rows(t, rows, factors={lp: 2.0 for lp in loops})
        )
        q, self.other, _ = variants.coupled.region(rows, probe)
        self.q = q
        self.size = len(q)
        self.ok = self.size <= limit
        self.ticks: list[int] = []
        self.parts: dict[int, tuple[NDArray[np.float64], list[NDArray[np.float64]]]] = {}
        if not self.ok:
            return
        qpos = {int(x): i for i, x in enumerate(q)}
        keep = [r for r in rows if r in qpos]
        self.rpos = np.array([qpos[r] for r in keep], dtype=np.intp)
        for t in range(m.H):
            key = id(m.nominal[t])
            self.ticks.append(key)
            if key in self.parts:
                continue
            A = m.A(t)[q][:, q].toarray()
            nom = m.fast_rows(t, keep)
            E = [(m.fast_rows(t, keep, factors={lp: 2.0}) - nom)[:, q].toarray() for lp in loops]
            self.parts[key] = (A, E)

    def disk(self) -> DiskMargin | None:
        """The simultaneous balanced disk margin of the loops (every loop's gain its own
        complex multiplier, :func:`.disk.multiloop_disk_margin`); None where the loops' part
        is not one tick matrix, a loop's gain change is not rank one, or it is not stable."""
        if not self.ok or len(self.parts) != 1:
            return None
        A, Es = next(iter(self.parts.values()))
        if not radius_of([A]) < 1.0:
            return None
        q = A.shape[0]
        P = np.zeros((q, len(Es)))
        rows = np.zeros((len(Es), q))
        for i, E in enumerate(Es):
            r1 = _rank_one(E)
            if r1 is None:
                return None
            P[self.rpos, i] = r1[0]
            rows[i] = r1[1]
        return multiloop_disk_margin(A, P, rows)

    def scaled(self, factors: Sequence[float]) -> float:
        """The coupled radius with loop i's gains times ``factors[i]``."""
        subs: dict[int, NDArray[np.float64]] = {}
        for key, (A, E) in self.parts.items():
            B = A.copy()
            for f, e in zip(factors, E, strict=True):
                if f != 1.0:
                    B[self.rpos] += (f - 1.0) * e
            subs[key] = B
        return max(self.other, radius_of([subs[k] for k in self.ticks]))


@dataclass(frozen=True, slots=True)
class Simultaneous:
    """The simultaneous gain margin of ``loops``: ``delta`` is the largest relative change
    found stable on every vertex (None: stable up to ``delta_max``); ``factors`` the vertex
    (one factor per loop, at ``delta + tol`` or less) found unstable. ``note`` says what was
    left out or why nothing was computed (``delta`` and ``factors`` then None/empty)."""

    loops: tuple[str, ...]
    delta: float | None
    factors: tuple[tuple[str, float], ...]
    delta_max: float
    patterns: int
    note: str = ""
    computed: bool = True
    disk: DiskMargin | None = None

    @property
    def text(self) -> str:
        if not self.computed:
            return "not computed"
        if self.delta is None:
            out = f">{self.delta_max:.0%} on every sign pattern"
        else:
            out = f"{self.delta:.1%} ({self.direction})"
        return out if self.disk is None else f"{out}; {self.disk.text}"

    @property
    def direction(self) -> str:
        """``raise `a`, lower `b```: the destabilising vertex in words."""
        up = [x for x, f in self.factors if f > 1]
        down = [x for x, f in self.factors if f < 1]
        parts = []
        if up:
            parts.append("raise " + ", ".join(f"`{x}`" for x in up))
        if down:
            parts.append("lower " + ", ".join(f"`{x}`" for x in down))
        return "; ".join(parts)

    def to_data(self) -> dict[str, object]:
        return {
            "loops": list(self.loops),
            "delta": self.delta,
            "delta_max": self.delta_max,
            "factors": dict(self.factors),
            "patterns": self.patterns,
            "computed": self.computed,
            "note": self.note,
            "disk": None if self.disk is None else self.disk.to_data(),
        }


def vertex_margin(
    radius_at: Callable[[tuple[float, ...]], float],
    k: int,
    stable_below: float,
    delta_max: float,
    tol: float,
) -> tuple[float | None, tuple[float, ...] | None]:
    """The smallest simultaneous relative gain change that destabilises k loops, over the
    vertices of the box ``f_i in [1 - delta, 1 + delta]``: a scan of delta in steps of 0.05,
    then bisection to ``tol`` of the first step where some sign pattern's radius
    ``radius_at(f)`` reaches ``stable_below``. Returns the last delta found stable on every
    vertex (on the safe side: within ``tol`` below where some vertex stops being stable) and
    the vertex found unstable; (None, None) when every vertex is stable up to ``delta_max``.

    A destabilising vertex bounds the smallest destabilising structured perturbation from
    above, so 1/delta bounds the structured singular value of the loops' real, diagonal gain
    uncertainty from below (Skogestad & Postlethwaite, *Multivariable Feedback Control*, 2nd
    ed., 2005, ch. 8: mu and its lower bounds; for real parametric uncertainty the worst case
    need not be a vertex, so this is a lower bound on mu, not mu).

    >>> rho = lambda f: abs(1 - 0.5 * f[0])  # one loop, multiplier 1 - 0.5 f: stable f < 4
    >>> vertex_margin(rho, 1, 1.0, 0.99, 1e-3)
    (None, None)
    >>> d, f = vertex_margin(lambda f: abs(1 - 1.5 * f[0]), 1, 1.0, 0.99, 1e-3)
    >>> round(d, 3), f[0] > 1
    (0.333, True)
    """
    patterns = list(itertools.product((1.0, -1.0), repeat=k))
    last: list[tuple[float, ...]] = []  # the pattern found unstable last: tried first

    def unstable(d: float) -> tuple[float, ...] | None:
        for s in last + [p for p in patterns if p not in last]:
            f = tuple(1.0 + si * d for si in s)
            if radius_at(f) >= stable_below:
                last[:] = [s]
                return f
        return None

    grid = [round(0.05 * i, 10) for i in range(1, int(delta_max / 0.05) + 1)]
    if not grid or grid[-1] < delta_max:
        grid.append(delta_max)
    good = 0.0
    for g in grid:
        hit = unstable(g)
        if hit is None:
            good = g
            continue
        a, b = good, g
        while b - a > tol:
            mid = 0.5 * (a + b)
            found = unstable(mid)
            if found is None:
                a = mid
            else:
                b, hit = mid, found
        return a, hit
    return None, None


def simultaneous_margin(
    variants: Variants,
    loops: Sequence[str],
    stable_below: float,
    delta_max: float,
    tol: float,
    size_limit: int,
    unstable_above: float | None = None,
) -> Simultaneous:
    """The simultaneous gain margin of ``loops`` (at least two) in the coupled system:
    :func:`vertex_margin` on :class:`LoopSet` radii. Where the loops' own nominal radius is
    not below ``stable_below`` already (actuators held at a bound), where it becomes unstable
    instead (``unstable_above``), as for :func:`loop_margins`."""
    loops = tuple(loops)
    patterns = 2 ** len(loops)
    ls = LoopSet(variants, loops, size_limit)
    if not ls.ok:
        return Simultaneous(
            loops,
            None,
            (),
            delta_max,
            patterns,
            f"not computed: the loops reach {ls.size} states (dense limit {size_limit}; "
            "LinearOptions.simultaneous_size_limit)",
            computed=False,
        )
    if unstable_above is not None and not ls.scaled((1.0,) * len(loops)) < stable_below:
        stable_below = unstable_above
    delta, f = vertex_margin(ls.scaled, len(loops), stable_below, delta_max, tol)
    factors: tuple[tuple[str, float], ...] = ()
    if f is not None:
        # one cause, one finding: a loop whose change does not matter at that vertex (set
        # back to 1, the vertex is still unstable) is left out of it
        kept = list(f)
        for i in range(len(kept)):
            trial = kept.copy()
            trial[i] = 1.0
            if ls.scaled(tuple(trial)) >= stable_below:
                kept = trial
        factors = tuple((x, v) for x, v in zip(loops, kept, strict=True) if v != 1.0)
    return Simultaneous(loops, delta, factors, delta_max, patterns, disk=ls.disk())


def gain_margin(
    radius_at: object,
    stable_below: float,
    lo: float,
    hi: float,
    rtol: float,
) -> tuple[float | None, float | None]:
    """The factors below and above 1 at which the system stops being stable (its spectral
    radius ``radius_at(f)`` reaches ``stable_below``: marginal is not stable). Each is the
    last factor found stable, within ``rtol`` of where stability ends: on the safe side."""
    f = radius_at  # a callable: factor -> spectral radius

    def bad(x: float) -> bool:
        return bool(f(x) >= stable_below)  # type: ignore[operator]

    def search(direction: float, limit: float) -> float | None:
        good = 1.0
        x = 1.0
        while True:
            nxt = x * direction
            if (direction > 1 and nxt > limit) or (direction < 1 and nxt < limit):
                nxt = limit
            if nxt == x:
                return None
            if bad(nxt):
                a, b = good, nxt
                while abs(math.log(b / a)) > math.log1p(rtol):
                    mid = math.sqrt(a * b)
                    if bad(mid):
                        b = mid
                    else:
                        a = mid
                return a  # the last factor known stable
            good = x = nxt

    return search(0.5, lo), search(2.0, hi)


def delay_margin(radius_at: object, stable_below: float, max_extra: int) -> tuple[int, bool]:
    """The largest extra delay (ticks) with ``radius_at(e)`` still below ``stable_below``
    (stable, not marginal), and whether it stayed stable up to ``max_extra``."""
    f = radius_at

    def bad(e: int) -> bool:
        return bool(f(e) >= stable_below)  # type: ignore[operator]

    good = 0
    e = 1
    while e <= max_extra:
        if bad(e):
            lo, hi = good, e
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if bad(mid):
                    hi = mid
                else:
                    lo = mid
            return lo, False
        good = e
        e *= 2
        if good < max_extra < e:
            e = max_extra
    return good, True


def loop_margins(
    variants: Variants,
    loop: str,
    tick: float,
    stable_below: float,
    gain_range: tuple[float, float],
    rtol: float,
    max_extra: int,
    has_sensors: Mapping[str, bool],
    unstable_above: float | None = None,
    wide_gain: float = 1e4,
    check_limit: int = 2000,
    frequency: bool = True,
    band: bool = True,
) -> Margin:
    """The loop's gain and delay margins: where the coupled system stops being stable
    (its radius reaches ``stable_below``). Where the variants' own nominal radius is not
    below it already (unit multipliers of actuators held at a bound count in it), where it
    becomes unstable instead (``unstable_above``).

    A margin that no change can reach is said so, with the reason (``*_why``): the law has no
    linear effect at the operating point, or the loop's frequency response shows that no
    factor or delay puts a root on the unit circle. Otherwise the margins are read from the
    frequency response where the structure allows (:meth:`LocalLoop.fast_gain`), else
    bisected on spectral radii, the gain up to ``wide_gain`` where the loop closes.

    A loop at rest inside its tolerance band or deadband has no linear effect at the
    operating point; with ``band`` its margins are then those of its law as it acts outside
    the band (:meth:`Variants.outside`, ``branch`` says so), or, where that law is unstable
    already, its spectral radius and the largest gain factor below 1 that would make it
    stable (``unstable_radius``, ``stable_below``)."""
    local = variants.local(loop)
    if band and not local.closes():
        out = variants.outside(loop)
        if out is not None and out.local(loop).closes():
            limit = unstable_above if unstable_above is not None else stable_below
            r1 = out.scaled(loop, 1.0)
            if r1 >= limit:
                return Margin(
                    loop,
                    None,
                    None,
                    (gain_range[0], max(gain_range[1], wide_gain)),
                    None,
                    False,
                    tick,
                    branch=BAND,
                    unstable_radius=r1,
                    stable_below=_stable_below(out, loop, limit, gain_range[0], rtol),
                )
            mg = loop_margins(
                out,
                loop,
                tick,
                stable_below,
                gain_range,
                rtol,
                max_extra,
                has_sensors,
                unstable_above,
                wide_gain,
                check_limit,
                frequency,
                band=False,
            )
            return replace(mg, branch=BAND)
    marginal = unstable_above is not None and not variants.scaled(loop, 1.0) < stable_below
    if marginal:
        assert unstable_above is not None
        stable_below = unstable_above
    sensed = has_sensors.get(loop, False)
    method = "eigenvalues"
    lo: float | None = None
    hi: float | None = None
    lo_why = hi_why = delay_why = ""
    fast = None if marginal or not frequency else local.fast_gain(stable_below, gain_range[0])
    if not local.closes():
        hi_why = "the law has no linear effect at the operating point"
        lo_why = "the same at every factor"
    elif fast is not None:
        lo, hi, lo_why, hi_why = fast
        if lo is not None and lo < gain_range[0]:
            lo = None  # below the range shown: "<x0.01", as the bisection reports it
        method = "frequency"
    else:
        lo, hi = gain_margin(
            lambda x: variants.scaled(loop, x),
            stable_below,
            gain_range[0],
            max(gain_range[1], wide_gain),
            rtol,
        )
    delay: int | None = None
    open_ = False
    if sensed:
        fd = None if marginal or not frequency else local.fast_delay(stable_below, check_limit)
        if not local.reads():
            delay, delay_why = 0, "the law does not read its sensor at the operating point"
        elif fd is not None:
            delay, delay_why = fd
            method = "frequency"
        else:
            delay, open_ = delay_margin(
                lambda e: variants.delayed(loop, e), stable_below, max_extra
            )
    return Margin(
        loop,
        lo,
        hi,
        (gain_range[0], max(gain_range[1], wide_gain)),
        delay,
        open_,
        tick,
        lo_why,
        hi_why,
        delay_why,
        method,
        disk=local.disk() if not marginal and local.closes() else None,
    )


def _stable_below(
    variants: Variants, loop: str, limit: float, lo: float, rtol: float
) -> float | None:
    """The largest gain factor below 1 at which the loop's variant is stable (radius below
    ``limit``), bisected in log f to ``rtol`` (on the safe side); None: none down to ``lo``."""
    bad = 1.0
    f = 0.5
    while variants.scaled(loop, f) >= limit:
        bad = f
        if f <= lo:
            return None
        f = max(f * 0.5, lo)
    good = f
    while math.log(bad / good) > math.log1p(rtol):
        mid = math.sqrt(bad * good)
        if variants.scaled(loop, mid) >= limit:
            bad = mid
        else:
            good = mid
    return good
