"""The verdict of every requirement at a chunk of parameter points: plain arrays in, out.

A :class:`Chunk` carries the spec's text, the names of the varied knobs and the points
(canonical units, already snapped); :func:`evaluate` returns per point and requirement a
status code (``CODES``) and the spectral radius of the lifted linearization. Everything a
worker builds from the text (the compiled system, one per structure a shaping value gives,
the linear engines' symbolic derivatives, Z3 contexts) stays in that worker's process,
cached by the spec's hash; nothing that cannot be pickled crosses a process boundary.

The analyses, per requirement kind:

- ``stable``: the linear analysis's own stages (operating point at nominal input, per-tick
  Jacobians, lifting over the hyperperiod) give one monodromy matrix per point; the spectra
  of all points of a structure are one call of ``numpy.linalg.eigvals`` on the stacked
  matrices. rho > 1 is falsified (a local certificate of instability), rho < 1 holds locally,
  rho within 1e-6 of 1 and no operating point are unknown;
- ``always``, ``response``, ``flapping``: the input patterns the check itself tries first
  (:func:`coherence.search.bounded.pattern_inputs`, seed 0), simulated for every point at once
  (points x patterns scenarios, each point with its own parameter values), judged with the
  reference requirement semantics; a violation is a replayed run (falsified); none is
  ``not found`` (evidence, not a proof);
- ``no bad equilibrium``: bursts of each input to each end of its range (5, 21 and 89
  ticks) after a settling run, then nominal input; a run whose keep-objective is still
  violated in each of the last five hyperperiods is a self-sustaining bad state (falsified);
- ``coherent``: the conflict analysis is formal: judged with ``formal`` only;
- ``formal``: the formal analysis of the point's system (or, in box mode, of the system
  with the varied parameters uncertain within the box: a proof there covers every point
  of the box).

The status of a requirement is the strongest word of the analyses that judged it:
falsified, then proved, holds, unknown, not found, not judged.
"""

from __future__ import annotations

import math
import os
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import Requirement, TransitionSystem
from coherence.sweep.params import (
    Knob,
    knobs_of,
    spec_hash,
    with_param_box,
    with_params,
    with_values,
)

NOT_JUDGED, NOT_FOUND, UNKNOWN, HOLDS, PROVED, FALSIFIED, INVALID = 0, 1, 2, 3, 4, 5, 6
CODES = {
    NOT_JUDGED: "not judged",
    NOT_FOUND: "not found",
    UNKNOWN: "unknown",
    HOLDS: "holds",
    PROVED: "proved",
    FALSIFIED: "falsified",
    INVALID: "invalid",
}
SAFE = (NOT_FOUND, HOLDS, PROVED)
MARGINAL = 1e-6
SIM_VALUES = 4_000_000  # values one vectorised simulation holds at most (32 MB)
BURSTS = (5, 21, 89)

Int8 = NDArray[np.int8]
F = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Chunk:
    """One task: a spec's text and a chunk of points. Plain data: it pickles."""

    text: str
    path: str
    system: str | None
    knobs: tuple[str, ...]
    points: F  # [P, d] canonical values
    analyses: tuple[str, ...] = ("linear", "simulate")
    boxes: F | None = None  # [P, d, 2]: formal box mode (param knobs only)
    rlimit: int | None = None
    horizon: int | None = None


@dataclass(frozen=True, slots=True)
class Verdicts:
    """What :func:`evaluate` returns: ``status[p, r]`` (``CODES``), ``rho[p]`` (nan where not
    computed), the chunk's wall seconds."""

    status: Int8
    rho: F
    seconds: float = 0.0
    errors: tuple[str, ...] = field(default=())
    cpu_seconds: float = 0.0  # the worker's CPU time for the chunk (contention-free cost)


def combine(a: Int8, b: Int8) -> Int8:
    """Elementwise: the stronger word of two status arrays (the codes are in rank order)."""
    return np.maximum(a, b).astype(np.int8)


# ---- the per-process caches --------------------------------------------------------------------

_SPECS: OrderedDict[tuple[str, str | None], tuple[TransitionSystem, dict[str, Knob]]] = (
    OrderedDict()
)
_STRUCTS: OrderedDict[
    tuple[str, str | None, tuple[str, ...], tuple[float, ...]], TransitionSystem | str
] = OrderedDict()
_KEEP = 64


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> Any:
    cache[key] = value
    while len(cache) > _KEEP:
        cache.popitem(last=False)
    return value


def spec_of(text: str, path: str, system: str | None) -> tuple[TransitionSystem, dict[str, Knob]]:
    """The compiled system and its knobs, once per process and spec text."""
    key = (spec_hash(text), system)
    hit = _SPECS.get(key)
    if hit is None:
        hit = _remember(_SPECS, key, knobs_of(text, path, system))
    return hit


def structure(
    chunk: Chunk, names: Sequence[str], values: tuple[float, ...]
) -> TransitionSystem | str:
    """The system with the shaping values ``values`` of knobs ``names`` (an error message if
    the spec rejects them), once per process."""
    ts, knobs = spec_of(chunk.text, chunk.path, chunk.system)
    if not names:
        return ts
    key = (spec_hash(chunk.text), chunk.system, tuple(names), values)
    hit = _STRUCTS.get(key)
    if hit is None:
        from coherence.compile import compile_text
        from coherence.diagnostics import Severity

        text = with_values(chunk.text, knobs, dict(zip(names, values, strict=True)))
        r = compile_text(chunk.path, text)
        errs = [d for d in r.diagnostics if d.level == Severity.ERROR]
        if errs:
            hit = f"{errs[0].code}: {errs[0].message}"
        else:
            hit = next(s for s in r.systems if s.name == ts.name)
        _remember(_STRUCTS, key, hit)
    return hit


# ---- one chunk ----------------------------------------------------------------------------------


def evaluate(chunk: Chunk) -> Verdicts:
    """Every requirement's status at every point of ``chunk``.

    >>> spec = '''system s { tick 1s  param k = 0.5  state x in [-9, 9] init 1
    ...   next x = (1 - k) * x  require stable }'''
    >>> v = evaluate(Chunk(spec, "s.coh", None, ("k",), np.array([[0.5], [2.5]])))
    >>> [CODES[int(c)] for c in v.status[:, 0]], v.rho.round(3).tolist()
    (['holds', 'falsified'], [0.5, 1.5])
    """
    start, cpu = time.perf_counter(), time.process_time()
    ts0, knobs = spec_of(chunk.text, chunk.path, chunk.system)
    ks = [knobs[n] for n in chunk.knobs]
    P, R = len(chunk.points), len(ts0.requirements)
    status = np.zeros((P, R), dtype=np.int8)
    rho = np.full(P, np.nan)
    errors: list[str] = []
    s_idx = [j for j, k in enumerate(ks) if k.structural]
    p_idx = [j for j, k in enumerate(ks) if not k.structural]
    groups: dict[tuple[float, ...], list[int]] = {}
    for i, row in enumerate(chunk.points):
        groups.setdefault(tuple(float(row[j]) for j in s_idx), []).append(i)
    for key in sorted(groups):
        idx = np.array(groups[key], dtype=np.intp)
        ts = structure(chunk, [ks[j].name for j in s_idx], key)
        if isinstance(ts, str):
            status[idx, :] = INVALID
            errors.append(ts)
            continue
        pvals = chunk.points[idx][:, p_idx] if p_idx else np.zeros((len(idx), 0))
        names = [ks[j].name for j in p_idx]
        boxes = chunk.boxes[idx][:, p_idx] if chunk.boxes is not None else None
        st, r = _evaluate_group(ts, names, pvals, chunk, boxes)
        status[idx] = st
        rho[idx] = r
    return Verdicts(
        status, rho, time.perf_counter() - start, tuple(errors), time.process_time() - cpu
    )


def _evaluate_group(
    ts: TransitionSystem, names: list[str], pvals: F, chunk: Chunk, boxes: F | None
) -> tuple[Int8, F]:
    P, R = len(pvals), len(ts.requirements)
    status = np.zeros((P, R), dtype=np.int8)
    rho = np.full(P, np.nan)
    reqs = ts.requirements
    if boxes is not None:  # formal certificates of whole boxes
        for i in range(P):
            box = {n: (float(boxes[i, j, 0]), float(boxes[i, j, 1])) for j, n in enumerate(names)}
            status[i] = _formal(with_param_box(ts, box), chunk)
        return status, rho
    if "linear" in chunk.analyses and any(r.kind == "stable" for r in reqs):
        codes, rho = linear_verdicts(ts, names, pvals)
        for j, r in enumerate(reqs):
            if r.kind == "stable":
                status[:, j] = combine(status[:, j], codes)
    if "simulate" in chunk.analyses:
        for j, r in enumerate(reqs):
            if r.kind in ("always", "response", "flapping"):
                status[:, j] = combine(status[:, j], bounded_verdicts(ts, r, names, pvals, chunk))
            elif r.kind == "no_bad_equilibrium":
                status[:, j] = combine(status[:, j], equilibrium_verdicts(ts, names, pvals))
    if "formal" in chunk.analyses:
        for i in range(P):
            point = {n: float(pvals[i, j]) for j, n in enumerate(names)}
            status[i] = combine(status[i], _formal(with_params(ts, point), chunk))
    return status, rho


# ---- linear: batched eigenvalues ------------------------------------------------------------


def monodromies(
    ts: TransitionSystem, names: list[str], pvals: F, batched: bool | None = None
) -> list[F | None]:
    """The lifted monodromy matrix of each point (None where there is no operating point).

    By default the points are settled and linearized together
    (:func:`coherence.sweep.batched.batched_monodromies`); the points that path does not
    cover (see its module) go through :func:`per_point_monodromies`, the linear analysis run
    once per point, which ``batched=False`` (or the environment variable
    ``COHERENCE_SWEEP_PER_POINT=1``, which reaches the Dask workers) uses for every point."""
    if batched is None:
        batched = os.environ.get("COHERENCE_SWEEP_PER_POINT", "") in ("", "0")
    if not batched:
        return per_point_monodromies(ts, names, pvals)
    from coherence.sweep.batched import batched_monodromies

    out, todo = batched_monodromies(ts, names, pvals)
    if todo.any():
        idx = np.flatnonzero(todo)
        for i, m in zip(idx, per_point_monodromies(ts, names, pvals[idx]), strict=True):
            out[int(i)] = m
    return out


def per_point_monodromies(ts: TransitionSystem, names: list[str], pvals: F) -> list[F | None]:
    """The lifted monodromy matrix of each point (None where there is no operating point),
    without the actuators that hold at the operating point: as in the linear analysis, their
    multiplier 1 is a hold by design (inside a tolerance band, a guard false), not a feedback
    mode. A state whose row of every A_t is the unit row keeps that row in the product, so
    deleting its row and column removes exactly that multiplier 1 from the spectrum."""
    from coherence.linear.analysis import linearize
    from coherence.linear.linearize import LinearizationError
    from coherence.linear.options import LinearOptions

    # the operating point the check linearizes at is the nominal run's (its perturbed extra
    # starts only look for *other* equilibria, which a verdict on stability does not read)
    options = LinearOptions(starts=0)
    out: list[F | None] = []
    for row in pvals:
        point = {name: float(row[j]) for j, name in enumerate(names)}
        try:
            with np.errstate(all="ignore"):
                lin = linearize(with_params(ts, point), options)
                m = lin.monodromy()
        except (ValueError, LinearizationError, ArithmeticError, np.linalg.LinAlgError):
            out.append(None)
            continue
        held = _neutral(lin.model)
        keep = np.array([i for i in range(m.shape[0]) if i not in held], dtype=np.intp)
        m = m[np.ix_(keep, keep)]
        out.append(m if np.isfinite(m).all() else None)
    return out


def _neutral(model: Any) -> set[int]:
    """Actuators whose row of every per-tick matrix is the unit row."""
    return {int(a) for a in model.actuator_actions if model.holds(a)}


def spectral_radii(mats: F) -> F:
    """max |lambda| of every matrix of a stack ``[P, n, n]``: one batched eigenvalue call."""
    if mats.shape[0] == 0 or mats.shape[1] == 0:
        return np.zeros(mats.shape[0])
    return np.asarray(np.abs(np.linalg.eigvals(mats)).max(axis=1), dtype=float)


def linear_verdicts(ts: TransitionSystem, names: list[str], pvals: F) -> tuple[Int8, F]:
    """``require stable`` at every point, and the spectral radii: the matrices of one size
    are one stacked eigenvalue problem."""
    mats = monodromies(ts, names, pvals)
    rho = np.full(len(pvals), np.nan)
    sizes: dict[int, list[int]] = {}
    for i, m in enumerate(mats):
        if m is not None:
            sizes.setdefault(m.shape[0], []).append(i)
    for _, idx in sorted(sizes.items()):
        stack = np.stack([mats[i] for i in idx])  # type: ignore[misc]
        rho[idx] = spectral_radii(stack)
    ok = ~np.isnan(rho)
    codes = np.full(len(pvals), UNKNOWN, dtype=np.int8)
    codes[ok & (rho > 1 + MARGINAL)] = FALSIFIED
    codes[ok & (rho < 1 - MARGINAL)] = HOLDS
    return codes, rho


# ---- simulation: points x patterns at once -------------------------------------------------


def _batches(P: int, per_point: int) -> list[slice]:
    size = max(1, SIM_VALUES // max(per_point, 1))
    return [slice(a, min(a + size, P)) for a in range(0, P, size)]


def _params(names: list[str], pvals: F, rows: slice, repeat: int) -> dict[str, F]:
    return {n: np.repeat(pvals[rows, j], repeat) for j, n in enumerate(names)}


def bounded_verdicts(
    ts: TransitionSystem, req: Requirement, names: list[str], pvals: F, chunk: Chunk
) -> Int8:
    """A bounded requirement at every point, under the check's input patterns."""
    from coherence.search.bounded import pattern_inputs, robust
    from coherence.simulate.engine import simulate

    T = max(1, req.horizon)
    if ts.inputs:
        pats = pattern_inputs(ts, T, req.inputs == "held", 0)
    else:
        pats = np.zeros((1, T, 0))
    Q = len(pats)
    judged = robust(req, 1e-6)
    out = np.full(len(pvals), NOT_FOUND, dtype=np.int8)
    for rows in _batches(len(pvals), Q * (T + 1) * (len(ts.states) + len(ts.lets))):
        k = rows.stop - rows.start
        with np.errstate(all="ignore"):
            tr = simulate(
                ts, T, inputs=np.tile(pats, (k, 1, 1)), params=_params(names, pvals, rows, Q)
            )
        bad = first_failure(judged, tr).reshape(k, Q) >= 0
        out[rows] = np.where(bad.any(axis=1), FALSIFIED, NOT_FOUND)
    return out


def first_failure(req: Requirement, trace: Any) -> NDArray[np.int64]:
    """Per scenario, the first tick at which ``req`` fails (-1: never); vectorised forms of
    :mod:`coherence.simulate.requirements` (the same definitions)."""
    from coherence.simulate.engine import evaluate as evaluate_expr
    from coherence.simulate.requirements import check_always, reversals

    if req.kind == "always":
        return check_always(req, trace)
    h = min(req.horizon, trace.ticks)
    if req.kind == "flapping":
        assert req.state is not None
        rev = reversals(trace.state(req.state)[:, : h + 1]).astype(np.int64)
        T = rev.shape[1]
        csum = np.concatenate([np.zeros((rev.shape[0], 1), np.int64), np.cumsum(rev, 1)], 1)
        ends = np.arange(1, T + 1)
        counts = csum[:, ends] - csum[:, np.maximum(0, ends - req.within)]
        over = counts > req.max_reversals
        return np.where(over.any(axis=1), over.argmax(axis=1), -1).astype(np.int64)
    assert req.kind == "response" and req.cond is not None and req.trigger is not None
    n = req.within
    trig = evaluate_expr(req.trigger, trace)[:, :h] != 0
    resp = evaluate_expr(req.cond, trace)[:, :h] != 0
    if h - n <= 0:
        return np.full(trace.scenarios, -1, dtype=np.int64)
    cr = np.concatenate([np.zeros((resp.shape[0], 1), np.int64), np.cumsum(resp, 1)], 1)
    t = np.arange(0, h - n)
    missed = trig[:, t] & ((cr[:, t + n + 1] - cr[:, t]) == 0)
    return np.where(missed.any(axis=1), missed.argmax(axis=1) + n, -1).astype(np.int64)


def burst_inputs(ts: TransitionSystem) -> tuple[F, int]:
    """The burst scenarios ``[Q, T, m]`` (the first is nominal throughout) and ``T``."""
    from coherence.search.equilibria import stay_ticks

    H = ts.hyperperiod
    pre = math.ceil(max(20 * H, 100) / H) * H
    T = pre + max(BURSTS) + stay_ticks(ts)
    nom = np.array([u.nominal for u in ts.inputs])
    base = np.broadcast_to(nom, (T, len(nom)))
    pats = [base.copy()]
    for j, u in enumerate(ts.inputs):
        for level in (u.hi, u.lo):
            if level == u.nominal:
                continue
            for d in BURSTS:
                p = base.copy()
                p[pre : pre + d, j] = level
                pats.append(p)
    return np.stack(pats) if len(nom) else np.zeros((1, T, 0)), T


def equilibrium_verdicts(ts: TransitionSystem, names: list[str], pvals: F) -> Int8:
    """``no bad equilibrium`` at every point: does a run stay bad at nominal input?"""
    from coherence.search.equilibria import keep_objectives, stays_bad
    from coherence.simulate.engine import simulate

    keeps = keep_objectives(ts)
    out = np.full(len(pvals), NOT_FOUND, dtype=np.int8)
    if not keeps:
        return out
    pats, T = burst_inputs(ts)
    Q = len(pats)
    for rows in _batches(len(pvals), Q * (T + 1) * (len(ts.states) + len(ts.lets))):
        k = rows.stop - rows.start
        with np.errstate(all="ignore"):
            tr = simulate(
                ts, T, inputs=np.tile(pats, (k, 1, 1)), params=_params(names, pvals, rows, Q)
            )
        bad = np.zeros(k * Q, dtype=bool)
        for o in keeps:
            bad |= stays_bad(ts, o, tr)
        out[rows] = np.where(bad.reshape(k, Q).any(axis=1), FALSIFIED, NOT_FOUND)
    return out


# ---- formal ---------------------------------------------------------------------------------


def _formal(ts: TransitionSystem, chunk: Chunk) -> Int8:
    """The formal analysis's word on each requirement of ``ts``."""
    from coherence.formal import analyze
    from coherence.pipeline import CheckOptions, smt_options
    from coherence.results import Status

    opts = smt_options(CheckOptions(rlimit=chunk.rlimit, horizon=chunk.horizon))
    words = {
        Status.PROVED: PROVED,
        Status.HOLDS: HOLDS,
        Status.FALSIFIED: FALSIFIED,
        Status.UNKNOWN: UNKNOWN,
        Status.SKIPPED: NOT_JUDGED,
    }
    try:
        result = analyze(ts, opts)
    except Exception:  # an analysis bug at one point must not take the sweep down
        return np.full(len(ts.requirements), UNKNOWN, dtype=np.int8)
    out = np.zeros(len(ts.requirements), dtype=np.int8)
    for j, r in enumerate(ts.requirements):
        for v in result.verdicts:
            if v.kind == r.kind and v.requirement == r.text:
                out[j] = max(out[j], words[v.status])
    return out
