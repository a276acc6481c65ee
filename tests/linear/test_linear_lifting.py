"""Lifting and the loop structure: the monodromy matrix against hand-computed products, the
block decomposition against a dense eigen-solve, and the loop-structured variants against
re-linearizing the transformed system (hold_loop, with_params, with_extra_delay)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from coherence.ir.nodes import TransitionSystem
from coherence.ir.transform import hold_loop, loop_gain_params, with_extra_delay, with_params
from coherence.linear import LinearOptions, analyze, linearize
from coherence.linear.margins import Variants
from coherence.linear.spectrum import Spectrum, continuous

Spec = Callable[[str], TransitionSystem]


def test_multirate_monodromy_by_hand(spec: Spec) -> None:
    ts = spec("multirate")
    lin = linearize(ts)
    assert ts.hyperperiod == 6 and lin.hyperperiod == 6
    assert lin.state_names == ("x", "u", "v")
    np.testing.assert_allclose(lin.operating_point.x, 0.0, atol=1e-9)

    def a_t(t: int) -> np.ndarray:
        # x: 0.9 x + 0.1 u + 0.05 v; f (every 2, phase 0): u += -0.5 x;
        # g (every 3, phase 1): v = -0.3 x (a `to` law with gain 1), else v holds
        u_row = [-0.5, 1.0, 0.0] if t % 2 == 0 else [0.0, 1.0, 0.0]
        v_row = [-0.3, 0.0, 0.0] if t % 3 == 1 else [0.0, 0.0, 1.0]
        return np.array([[0.9, 0.1, 0.05], u_row, v_row])

    for t in range(6):
        np.testing.assert_allclose(lin.matrices[t].toarray(), a_t(t), atol=1e-12)
    M = np.eye(3)
    for t in range(6):
        M = a_t(t) @ M
    np.testing.assert_allclose(lin.monodromy(), M, atol=1e-12)
    rho = max(abs(np.linalg.eigvals(M)))
    assert lin.spectral_radius() == pytest.approx(rho, rel=1e-12)
    assert dict(analyze(ts).data)["spectral_radius"] == pytest.approx(rho, rel=1e-12)


def test_block_decomposition_matches_dense_eigvals(spec: Spec) -> None:
    for name in ("shaped", "fight", "multirate", "delayed_integrator"):
        lin = linearize(spec(name))
        dense = max(abs(np.linalg.eigvals(lin.monodromy())))
        assert Spectrum(list(lin.matrices)).radius == pytest.approx(dense, rel=1e-9), name


def test_mode_period_and_damping(spec: Spec) -> None:
    # x(k+1) = x(k) - K x(k - 1), K = 0.9: z^2 - z + 0.9, roots 0.5 +- j sqrt(0.65)
    ts = with_params(spec("delayed_integrator"), {"K": 0.9})
    mode = dict(analyze(ts).data)["modes"][0]
    lam = complex(0.5, math.sqrt(0.65))
    assert mode["magnitude"] == pytest.approx(abs(lam))
    s = complex(math.log(abs(lam)), math.atan2(lam.imag, lam.real))  # per 1 s hyperperiod
    assert mode["period_s"] == pytest.approx(2 * math.pi / s.imag)
    assert mode["damping"] == pytest.approx(-s.real / abs(s))
    assert sum(mode["states"].values()) == pytest.approx(1.0)
    assert set(mode["loops"]) == {"integrator"}
    assert continuous(0.0, 1.0) == (1.0, None, 0.0)


def test_participation_names_loops_and_plant(spec: Spec) -> None:
    modes = dict(analyze(spec("integral")).data)["modes"]
    shares = modes[0]["loops"]
    assert set(shares) == {"integral", "plant"}
    assert sum(shares.values()) == pytest.approx(1.0)


def _rows(lin: object, t: int, rows: list[int]) -> np.ndarray:
    return lin.matrices[t].toarray()[rows]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["fight", "multirate", "shaped", "twin_integrators"])
def test_variants_match_transformed_systems(spec: Spec, name: str) -> None:
    ts = spec(name)
    lin = linearize(ts, LinearOptions(starts=0))
    model = lin.model
    for lp in ts.loops:
        rows = model.loop_rows([lp.name])
        # only this loop acts: hold every other loop
        held = ts
        for other in ts.loops:
            if other.name != lp.name:
                held = hold_loop(held, other.name)
        ref = linearize(held, LinearOptions(starts=0))
        for t in range(model.H):
            got = model.rows(t, rows, active=frozenset([lp.name])).toarray()
            np.testing.assert_allclose(got, _rows(ref, t, rows), atol=1e-10)
            fast = model.fast_rows(t, rows, active=frozenset([lp.name])).toarray()
            np.testing.assert_allclose(fast, got, atol=1e-12)
        # gain: for `by` laws, scaling the loop's gain parameters
        if all(a.mode == "by" for a in lp.actions):
            gains = {g: 1.7 * ts.param(g).value for g in loop_gain_params(ts, lp.name)}
            ref = linearize(with_params(ts, gains), LinearOptions(starts=0))
            for t in range(model.H):
                got = model.rows(t, rows, factors={lp.name: 1.7}).toarray()
                np.testing.assert_allclose(got, _rows(ref, t, rows), atol=1e-10)
                fast = model.fast_rows(t, rows, factors={lp.name: 1.7}).toarray()
                np.testing.assert_allclose(fast, got, atol=1e-12)


@pytest.mark.parametrize("name", ["fight", "shaped", "delayed_integrator"])
def test_delay_variants_match_with_extra_delay(spec: Spec, name: str) -> None:
    ts = spec(name)
    lin = linearize(ts, LinearOptions(starts=0))
    coupled = Spectrum(list(lin.matrices))
    variants = Variants(lin.model, coupled, None)
    for lp in ts.loops:
        if not lp.sensors:
            continue
        for extra in (1, 2, 5):
            ref = linearize(with_extra_delay(ts, lp.name, extra), LinearOptions(starts=0))
            assert variants.delayed(lp.name, extra) == pytest.approx(
                ref.spectral_radius(), rel=1e-9, abs=1e-12
            ), (lp.name, extra)


def test_the_gain_of_a_to_law_scales_the_loop_not_its_memory(
    spec_text: Callable[[str], str], compile_ts: Callable[[str], TransitionSystem]
) -> None:
    # scaling a `to` loop's gain by f scales the loop, broken at the actuator, not the law's
    # reference to its own actuator (the controller's memory): u = -K y + c u  ->
    # u = f (-K y) + c u, as `by` writes the same controller
    text = spec_text("proportional").replace("param c = 0", "param c = 0.3")
    ts = compile_ts(text)
    lin = linearize(ts, LinearOptions(starts=0))
    variants = Variants(lin.model, Spectrum(list(lin.matrices)), None)
    scaled = compile_ts(text.replace("to -K * y + c * u", "to 1.6 * (-K * y) + c * u"))
    ref = linearize(scaled, LinearOptions(starts=0))
    assert variants.scaled("p", 1.6) == pytest.approx(ref.spectral_radius(), rel=1e-9)


def test_coupling_sensitivity_matches_finite_differences(spec: Spec) -> None:
    ts = spec("fight")
    lin = linearize(ts, LinearOptions(starts=0))
    sp = Spectrum(list(lin.matrices))
    lam, block = sp.dominant(1)[0]
    sens = {(r, c): v for r, c, v in sp.sensitivity(lam, block)}
    # scale the entry u2 -> u1 (row u1, column u2) by 1 + eps
    eps = 1e-6
    mats = [a.toarray() for a in lin.matrices]
    for m in mats:
        m[0, 1] *= 1 + eps
    rho = max(abs(np.linalg.eigvals(np.linalg.multi_dot(mats[::-1]) if len(mats) > 1 else mats[0])))
    fd = (math.log(rho) - math.log(sp.radius)) / eps
    assert sens[(0, 1)] == pytest.approx(fd, rel=1e-4)
