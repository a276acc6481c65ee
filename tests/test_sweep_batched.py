"""The batched linearization of a sweep gives the per-point linear analysis's spectral radii.

The per-point path (the linear analysis's own ``linearize`` at each point) is the reference;
the batched path settles and linearizes a chunk of points at once and must give the same
radius (or, where it does not cover a point, leave it to the per-point path).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from coherence.sweep.batched import batched_monodromies
from coherence.sweep.evaluate import monodromies, per_point_monodromies
from coherence.sweep.params import knobs_of

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs" / "conflicts"


def radius(m: np.ndarray | None) -> float:
    if m is None:
        return float("nan")
    return float(np.abs(np.linalg.eigvals(m)).max()) if m.size else 0.0


def proportional(delay: str) -> str:
    return f"""system p {{ tick 1s
  param K = 0.5
  param r = 10
  state x in [-1000000, 1000000] init 0
  loop c {{ senses x as xm{delay}  actuates x by K * (r - xm) }}
  require stable }}"""


@pytest.mark.parametrize("delay", ["", " delay 1s"])
def test_the_batched_radius_of_a_proportional_loop_is_the_closed_form(delay: str) -> None:
    # x[k+1] = (1 - K) x[k] + K r: pole 1 - K. With one tick of delay the poles are the roots
    # of z^2 - z + K (Astrom & Wittenmark, Computer-Controlled Systems, 3rd ed., sec. 3.2).
    ts, _ = knobs_of(proportional(delay), "p.coh")
    K = np.linspace(0.1, 2.9, 15)
    mats, todo = batched_monodromies(ts, ["K"], K[:, None])
    assert not todo.any()
    if delay:
        want = np.array([np.abs(np.roots([1.0, -1.0, k])).max() for k in K])
    else:
        want = np.abs(1 - K)
    got = [radius(m) for m in mats]
    assert np.allclose(got, want, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("spec", "name", "lo", "hi"),
    [
        ("power_cap_broken.coh", "p_dyn", 0.5, 1.5),
        ("retry_storm_broken.coh", "capacity", 0.5, 1.5),
        ("hpa_lag_broken.coh", "target", 0.6, 1.3),
    ],
)
def test_the_batched_radius_is_the_per_point_radius(
    spec: str, name: str, lo: float, hi: float
) -> None:
    path = SPECS / spec
    text = path.read_text()
    ts, knobs = knobs_of(text, str(path))
    pts = (knobs[name].current * np.linspace(lo, hi, 10))[:, None]
    ref = per_point_monodromies(ts, [name], pts)
    got, todo = batched_monodromies(ts, [name], pts)
    assert (~todo).any()  # points it does not cover (see its module) go the per-point way
    for i in np.flatnonzero(~todo):
        assert (got[i] is None) == (ref[i] is None)  # no operating point: decided alike
        if ref[i] is None:
            continue
        assert got[i].shape == ref[i].shape  # type: ignore[union-attr]
        assert radius(got[i]) == pytest.approx(radius(ref[i]), rel=1e-6, abs=1e-12)
    # the sweep's entry point: batched where covered, the per-point path for the rest
    both = monodromies(ts, [name], pts)
    for a, b in zip(both, ref, strict=True):
        assert (a is None) == (b is None)
        assert np.isnan(radius(a)) or radius(a) == pytest.approx(radius(b), rel=1e-6, abs=1e-12)


def test_a_sweep_chunk_has_the_same_verdicts_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    from coherence.sweep.evaluate import Chunk, evaluate

    path = ROOT / "specs" / "seed" / "tipping_point.coh"
    text = path.read_text()
    grid = np.array([[s, b] for s in (1.0, 2.0, 4.0) for b in (500.0, 900.0, 1400.0)])
    chunk = Chunk(text, str(path), None, ("slo", "budget"), grid, ("linear",))
    fast = evaluate(chunk)
    monkeypatch.setenv("COHERENCE_SWEEP_PER_POINT", "1")
    slow = evaluate(chunk)
    assert np.array_equal(fast.status, slow.status)
    assert np.allclose(fast.rho, slow.rho, rtol=1e-6, atol=1e-12, equal_nan=True)
    assert not np.isnan(fast.rho).all()
