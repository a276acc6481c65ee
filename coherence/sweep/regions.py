"""The sweep: rounds of evaluation, refinement where neighbours disagree, safe regions.

:func:`run_sweep` evaluates a grid over the varied knobs, then refines: a cell of the grid
whose corners disagree (some requirement safe at one corner, not at another) is split in
two along every axis, and only those cells; the rounds stop when the point budget is spent,
no cell disagrees, or the cells are as fine as the knobs' values go (a duration cannot be
finer than a tick). With two or more axes, a line through the current values along each
axis is refined the same way: the boundaries along each axis are read there ("at the
current values of the other knobs").

A point is *safe* for a requirement when the analyses found no violation there (proved,
holds, or, for simulation, no violation in the patterns tried: ``not found``); falsified,
unknown and invalid (the spec rejects the value) are not safe, and a requirement no selected
analysis judges is left out of the overall verdict and said so.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import Requirement
from coherence.sweep.dask_engine import Engine, chunk_size
from coherence.sweep.evaluate import (
    CODES,
    FALSIFIED,
    HOLDS,
    INVALID,
    NOT_FOUND,
    NOT_JUDGED,
    PROVED,
    SAFE,
    UNKNOWN,
    Chunk,
    spec_of,
)
from coherence.sweep.params import LATTICE, Axis, Knob

F = NDArray[np.float64]
JUDGED = (NOT_FOUND, UNKNOWN, HOLDS, PROVED, FALSIFIED)  # words only an analysis gives
Coord = tuple[int, ...]


@dataclass(frozen=True, slots=True)
class SweepOptions:
    budget: int = 400
    refine: bool = True
    analyses: tuple[str, ...] = ("linear", "simulate")
    scheduler: str | None = None
    jobs: int | None = None
    chunk: int | None = None
    rlimit: int | None = None
    horizon: int | None = None
    boxes: int = 0  # formal box certificates to try (param axes only)


@dataclass(slots=True)
class Sweep:
    """What a sweep found. ``points[i]`` (values, canonical units) has ``status[i, r]`` per
    requirement and ``rho[i]``; ``current`` is the spec's own point and ``current_status``
    its verdicts."""

    path: str
    system: str
    axes: tuple[Axis, ...]
    requirements: tuple[Requirement, ...]
    points: F
    status: NDArray[np.int8]
    rho: F
    current: F
    current_status: NDArray[np.int8]
    coords: list[Coord]
    lines: dict[int, list[int]]  # axis -> indices of the points on its line
    rounds: int
    seconds: float
    where: str
    workers: int
    chunk: int
    analyses: tuple[str, ...]
    certified: list[tuple[F, F, NDArray[np.int8]]] = field(default_factory=list)
    errors: tuple[str, ...] = ()
    cpu_seconds: float = 0.0  # the evaluations' CPU time, summed over the workers

    @property
    def judged(self) -> list[int]:
        """Requirements some analysis judged somewhere."""
        return [
            r
            for r in range(len(self.requirements))
            if np.isin(self.status[:, r], JUDGED).any() or self.current_status[r] in JUDGED
        ]

    def safe(self, r: int | None = None) -> NDArray[np.bool_]:
        """Per point: requirement ``r`` safe there (``None``: every judged requirement)."""
        return safe_of(self.status, self.judged, r)

    def safe_current(self, r: int | None = None) -> bool:
        return bool(safe_of(self.current_status[None, :], self.judged, r)[0])


def safe_of(status: NDArray[np.int8], judged: Sequence[int], r: int | None) -> NDArray[np.bool_]:
    cols = list(judged) if r is None else [r]
    if not cols:
        return np.ones(len(status), dtype=bool)
    return np.asarray(np.isin(status[:, cols], SAFE).all(axis=1))


def overall_code(row: NDArray[np.int8], judged: Sequence[int]) -> int:
    """One word for a point: invalid, falsified, unknown, or the weakest safe word."""
    vals = [int(row[r]) for r in judged]
    if not vals:
        return NOT_JUDGED
    for code in (INVALID, FALSIFIED, UNKNOWN):
        if code in vals:
            return code
    return min(vals)


# ---- the driver -----------------------------------------------------------------------------


def run_sweep(
    text: str,
    path: str,
    system: str | None,
    axes: Sequence[Axis],
    options: SweepOptions,
    progress: Callable[[str], None] | None = None,
    engine: Engine | None = None,
) -> Sweep:
    """Sweep ``axes`` of the spec ``text``.

    >>> spec = '''system s { tick 1s  param k = 0.5  state x in [-9, 9] init 1
    ...   next x = (1 - k) * x  require stable }'''
    >>> from coherence.sweep.params import knobs_of, parse_vary
    >>> ts, knobs = knobs_of(spec, "s.coh")
    >>> ax = parse_vary("k=0.5..3", knobs, ts.tick)
    >>> sw = run_sweep(spec, "s.coh", None, [ax], SweepOptions(budget=40, jobs=1))
    >>> float(sw.points[sw.safe(0)][:, 0].max()) < 2 < float(sw.points[~sw.safe(0)][:, 0].min())
    True
    """
    start = time.perf_counter()
    ts, _ = spec_of(text, path, system)
    d = len(axes)
    names = tuple(a.knob.name for a in axes)
    step = chunk_size(ts, options.analyses) if options.chunk is None else options.chunk
    own = engine is None
    eng = engine or Engine(options.scheduler, options.jobs)
    values: dict[tuple[float, ...], int] = {}  # value tuple -> row
    rows_v: list[tuple[float, ...]] = []
    status_rows: list[NDArray[np.int8]] = []
    rho_rows: list[float] = []
    coords: dict[Coord, int] = {}
    errors: list[str] = []
    done = [0]
    total = [0]
    cpu = [0.0]
    last = [0.0]

    def value_at(c: Coord) -> tuple[float, ...]:
        return tuple(ax.value(c[i] / top[i]) for i, ax in enumerate(axes))

    def say(msg: str, force: bool = False) -> None:
        now = time.perf_counter()
        if progress and (force or now - last[0] > 0.5):
            last[0] = now
            progress(msg)

    def evaluate_coords(cs: Sequence[Coord], label: str) -> None:
        todo: list[tuple[float, ...]] = []
        for c in cs:
            v = value_at(c)
            if v not in values and v not in todo:
                todo.append(v)
        total[0] += len(todo)
        chunks = [
            Chunk(
                text,
                path,
                system,
                names,
                np.array(todo[a : a + step], dtype=float),
                options.analyses,
                None,
                options.rlimit,
                options.horizon,
            )
            for a in range(0, len(todo), step)
        ]

        def tick(n: int) -> None:
            done[0] += n
            say(f"sweep: {done[0]}/{total[0]} points ({label}){boundary_note()}")

        for chunk, got in zip(chunks, eng.map(chunks, tick), strict=True):
            errors.extend(got.errors)
            cpu[0] += got.cpu_seconds
            for v, st, r in zip(chunk.points, got.status, got.rho, strict=True):
                key = tuple(float(x) for x in v)
                values[key] = len(rows_v)
                rows_v.append(key)
                status_rows.append(st)
                rho_rows.append(float(r))
        for c in cs:
            coords.setdefault(c, values[value_at(c)])

    def boundary_note() -> str:
        if d != 1 or len(rows_v) < 2:
            return ""
        pts = np.array(rows_v)[:, 0]
        st = np.array(status_rows)
        ok = safe_of(st, _judged(st), None)
        order = np.argsort(pts)
        flips = [
            (pts[order[i]], pts[order[i + 1]])
            for i in range(len(order) - 1)
            if ok[order[i]] != ok[order[i + 1]]
        ]
        if not flips:
            return ""
        k = axes[0].knob
        return "; boundary so far: " + ", ".join(
            f"{k.label} between {k.show(a)} and {k.show(b)}" for a, b in flips[:3]
        )

    try:
        # the spec's own point
        cur = tuple(float(a.knob.current) for a in axes)
        cur_chunk = Chunk(
            text,
            path,
            system,
            names,
            np.array([cur]),
            options.analyses,
            None,
            options.rlimit,
            options.horizon,
        )
        cur_v = eng.map([cur_chunk])[0]
        current_status = cur_v.status[0]
        # the base grid, and the lines through the current point
        base = options.budget // 2 if options.refine else options.budget
        n = max(2, math.floor(max(base, 2) ** (1.0 / d)))
        top = [(n - 1) * LATTICE] * d
        grid = [tuple(c) for c in itertools.product(*[range(0, t + 1, LATTICE) for t in top])]
        here = tuple(round(_u(ax, ax.knob.current) * top[i]) for i, ax in enumerate(axes))
        lines: dict[int, list[Coord]] = {}
        if d > 1:
            for i in range(d):
                lines[i] = [(*here[:i], k, *here[i + 1 :]) for k in range(0, top[i] + 1, LATTICE)]
        evaluate_coords(grid + [c for cs in lines.values() for c in cs], "grid")
        cells: list[tuple[Coord, int, tuple[int, ...]]] = [
            (c, LATTICE, tuple(range(d))) for c in grid if all(c[i] < top[i] for i in range(d))
        ]
        for i, cs in lines.items():
            cells += [(c, LATTICE, (i,)) for c in cs if c[i] < top[i]]
        rounds = 1
        while options.refine and len(values) < options.budget and cells:
            st_all = np.array(status_rows)
            judged = _judged(st_all)
            sig = [tuple(safe_of(st_all, judged, r)) for r in judged] + [
                tuple(safe_of(st_all, judged, None))
            ]
            mixed = []
            for c, s, dims in cells:
                corners = [coords[_add(c, o, s, dims)] for o in _offsets(len(dims))]
                if any(len({col[k] for k in corners}) > 1 for col in sig) and s > 1:
                    mixed.append((c, s, dims))
            if not mixed:
                break
            children: list[tuple[Coord, int, tuple[int, ...]]] = []
            new: list[Coord] = []
            for c, s, dims in sorted(mixed):
                h = s // 2
                kids = [(_add(c, o, h, dims), h, dims) for o in _offsets(len(dims))]
                pts = [_add(c, o, h, dims) for o in itertools.product(range(3), repeat=len(dims))]
                fresh = [p for p in pts if p not in coords]
                vals_new = {value_at(p) for p in fresh} - set(values)
                if not vals_new and all(value_at(p) in values for p in fresh):
                    # finer values do not exist (snapped): nothing to learn here
                    for p in fresh:
                        coords[p] = values[value_at(p)]
                    continue
                if len(values) + len({value_at(p) for p in new}) + len(vals_new) > options.budget:
                    break
                new += fresh
                children += kids
            if not new:
                break
            evaluate_coords(new, f"refinement round {rounds}")
            rounds += 1
            cells = children
        certified: list[tuple[F, F, NDArray[np.int8]]] = []
        if options.boxes and "formal" in options.analyses:
            certified = _certify(
                text, path, system, axes, names, coords, top, status_rows, options, eng
            )
        say(f"sweep: {len(values)} points in {rounds} rounds{boundary_note()}", force=True)
    finally:
        if own:
            eng.close()
    status = np.array(status_rows, dtype=np.int8).reshape(len(rows_v), len(ts.requirements))
    return Sweep(
        path,
        ts.name,
        tuple(axes),
        ts.requirements,
        np.array(rows_v, dtype=float).reshape(len(rows_v), d),
        status,
        np.array(rho_rows),
        np.array(cur, dtype=float),
        current_status,
        list(coords),
        _refined_lines(lines, coords, rows_v),
        rounds,
        time.perf_counter() - start,
        eng.where,
        eng.workers,
        step,
        options.analyses,
        certified,
        tuple(dict.fromkeys(errors)),
        cpu[0],
    )


def _refined_lines(
    lines: dict[int, list[Coord]], coords: dict[Coord, int], rows: list[tuple[float, ...]]
) -> dict[int, list[int]]:
    """Each line's points after refinement (the points on it, by value)."""
    out: dict[int, list[int]] = {}
    for i, cs in lines.items():
        fixed = {j: cs[0][j] for j in range(len(cs[0])) if j != i}
        on = {coords[c] for c in coords if all(c[j] == v for j, v in fixed.items())}
        out[i] = sorted(on, key=lambda r: rows[r][i])
    return out


def _judged(st: NDArray[np.int8]) -> list[int]:
    return [r for r in range(st.shape[1]) if np.isin(st[:, r], JUDGED).any()]


def _offsets(k: int) -> list[tuple[int, ...]]:
    return list(itertools.product((0, 1), repeat=k))


def _add(c: Coord, o: Sequence[int], s: int, dims: Sequence[int]) -> Coord:
    out = list(c)
    for j, i in enumerate(dims):
        out[i] += o[j] * s
    return tuple(out)


def _u(ax: Axis, v: float) -> float:
    v = min(max(v, ax.lo), ax.hi)
    if ax.log:
        return (math.log(v) - math.log(ax.lo)) / (math.log(ax.hi) - math.log(ax.lo))
    return (v - ax.lo) / (ax.hi - ax.lo)


def _certify(
    text: str,
    path: str,
    system: str | None,
    axes: Sequence[Axis],
    names: tuple[str, ...],
    coords: dict[Coord, int],
    top: list[int],
    status_rows: list[NDArray[np.int8]],
    options: SweepOptions,
    eng: Engine,
) -> list[tuple[F, F, NDArray[np.int8]]]:
    """Formal certificates of whole boxes: the grid cells of the sampled safe region, each
    analysed with the varied parameters uncertain within the cell (param axes only)."""
    if any(ax.knob.structural for ax in axes):
        return []
    d = len(axes)
    st = np.array(status_rows)
    judged = _judged(st)
    ok = safe_of(st, judged, None)
    step = LATTICE
    boxes: list[tuple[F, F]] = []
    for c in sorted(coords):
        if any(c[i] % step or c[i] >= top[i] for i in range(d)):
            continue
        corners = [_add(c, o, step, range(d)) for o in _offsets(d)]
        if all(k in coords and ok[coords[k]] for k in corners):
            lo = np.array([axes[i].value(c[i] / top[i]) for i in range(d)])
            hi = np.array([axes[i].value((c[i] + step) / top[i]) for i in range(d)])
            boxes.append((lo, hi))
    boxes = boxes[: options.boxes]
    if not boxes:
        return []
    chunks = [
        Chunk(
            text,
            path,
            system,
            names,
            (lo + hi)[None, :] / 2,
            ("formal",),
            np.stack([lo, hi], axis=-1)[None, :, :],
            options.rlimit,
            options.horizon,
        )
        for lo, hi in boxes
    ]
    return [(lo, hi, v.status[0]) for (lo, hi), v in zip(boxes, eng.map(chunks), strict=True)]


# ---- reading the results --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Boundary:
    """Along one axis (the line through the current values), for one requirement (or all):
    the safe intervals found and where the verdict changes (between two sampled values)."""

    axis: int
    requirement: int | None
    safe: tuple[tuple[float, float], ...]
    flips: tuple[tuple[float, float], ...]


def boundaries(sw: Sweep) -> list[Boundary]:
    out: list[Boundary] = []
    for i in range(len(sw.axes)):
        rows = sw.lines.get(i) if len(sw.axes) > 1 else None
        idx = np.array(rows if rows is not None else range(len(sw.points)), dtype=np.intp)
        vals = sw.points[idx, i]
        order = np.argsort(vals, kind="stable")
        idx, vals = idx[order], vals[order]
        for r in [*sw.judged, None]:
            ok = sw.safe(r)[idx]
            safe: list[tuple[float, float]] = []
            flips: list[tuple[float, float]] = []
            k = 0
            while k < len(idx):
                if ok[k]:
                    j = k
                    while j + 1 < len(idx) and ok[j + 1]:
                        j += 1
                    safe.append((float(vals[k]), float(vals[j])))
                    k = j + 1
                else:
                    k += 1
            for k in range(len(idx) - 1):
                if ok[k] != ok[k + 1]:
                    flips.append((float(vals[k]), float(vals[k + 1])))
            out.append(Boundary(i, r, tuple(safe), tuple(flips)))
    return out


_WORDS = {
    "stable": "stable",
    "flapping": "flap-free",
    "no_bad_equilibrium": "free of bad equilibria",
    "coherent": "coherent",
}


def requirement_word(req: Requirement) -> str:
    if req.kind in _WORDS:
        return _WORDS[req.kind]
    return f"meets `{req.text.removeprefix('require ')}`"


def region_words(k: Knob, ax: Axis, safe: Sequence[tuple[float, float]]) -> str:
    if not safe:
        return f"for no {k.label} in {k.show(ax.lo)}..{k.show(ax.hi)}"
    parts = []
    for a, b in safe:
        lo_end = a <= ax.knob.snap(ax.lo) + 1e-12 * max(1.0, abs(a))
        hi_end = b >= ax.knob.snap(ax.hi) - 1e-12 * max(1.0, abs(b))
        if lo_end and hi_end:
            parts.append(f"the whole range {k.show(ax.lo)}..{k.show(ax.hi)} of {k.label}")
        elif hi_end:
            parts.append(f"{k.label} >= {k.show(a)}")
        elif lo_end:
            parts.append(f"{k.label} <= {k.show(b)}")
        elif a == b:
            parts.append(f"{k.label} = {k.show(a)}")
        else:
            parts.append(f"{k.show(a)} <= {k.label} <= {k.show(b)}")
    return "for " + " or ".join(parts)


def answer(sw: Sweep) -> list[str]:
    """The one-line answer per axis: "stable and flap-free for window of hpa >= 135 s at the
    current values of everything else; the current 60 s is outside"."""
    words = [requirement_word(sw.requirements[r]) for r in sw.judged]
    what = " and ".join(words) if words else "judged by nothing selected"
    if len(words) > 2:
        what = ", ".join(words[:-1]) + " and " + words[-1]
    lines: list[str] = []
    for b in boundaries(sw):
        if b.requirement is not None:
            continue
        ax = sw.axes[b.axis]
        k = ax.knob
        where = (
            "at the current values of everything else"
            if len(sw.axes) == 1
            else "at the current values of the other knobs"
        )
        inside = sw.safe_current()
        cur = float(sw.current[b.axis])
        state = "inside" if inside else "outside"
        if not (ax.lo <= cur <= ax.hi):
            state += " (and outside the swept range)"
        lines.append(
            f"{what} {region_words(k, ax, b.safe)} {where}; the current {k.show(cur)} is {state}"
        )
    return lines


def point_words(sw: Sweep, i: int) -> dict[str, str]:
    return {
        sw.requirements[r].text: CODES[int(sw.status[i, r])] for r in range(len(sw.requirements))
    }


def summary(sw: Sweep) -> dict[str, Any]:
    """Counts per verdict, overall."""
    codes = [overall_code(row, sw.judged) for row in sw.status]
    return {CODES[c]: codes.count(c) for c in sorted(set(codes))}
