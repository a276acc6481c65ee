"""Attribution and interaction: coupling-induced instability, loops unstable alone, marginal
systems, the relative gain array, the Niederlinski index and timescale separation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from coherence.ir.nodes import TransitionSystem
from coherence.ir.transform import with_params
from coherence.linear import LinearOptions, analyze
from coherence.results import Status

Spec = Callable[[str], TransitionSystem]


def test_coupling_induced_instability_names_the_pair_and_the_coupling(spec: Spec) -> None:
    ts = spec("fight")
    r = analyze(ts)
    (v,) = r.verdicts
    assert v.status == Status.FALSIFIED and "local" in v.reason
    (f,) = [f for f in r.findings if f.code == "COH302"]
    assert "`a` and `b`" in f.message
    # the coupling: each loop actuates a state the other reads, and through which let
    assert "`a` actuates `u1`, which `b` reads (`u1` -> `y2`)" in f.message
    assert "`b` actuates `u2`, which `a` reads (`u2` -> `y1`)" in f.message
    assert f.span == ts.loop("a").span and f.related == (ts.loop("b").span,)
    assert any("the coupling that decides stability" in n for n in f.notes)
    assert "COH301" not in {x.code for x in r.findings}  # the specific code, not both
    data = dict(r.data)
    assert data["spectral_radius"] == pytest.approx(1.5)
    assert data["alone"] == {"a": pytest.approx(0.5), "b": pytest.approx(0.5)}
    assert data["pairs"] == [{"loops": ["a", "b"], "radius": pytest.approx(1.5)}]
    stability = next(t for t in r.tables if t.title == "Stability")
    assert ("a + b", pytest.approx(1.5), "unstable") in stability.rows


def test_fight_pairing_measures(spec: Spec) -> None:
    r = analyze(spec("fight"))
    (inter,) = dict(r.data)["interaction"]
    # G = [[1, 2], [2, 1]]: RGA diagonal 1 / (1 - 4) = -1/3, NI = det G / (1 * 1) = -3
    assert inter["gain"] == [
        [pytest.approx(1.0), pytest.approx(2.0)],
        [pytest.approx(2.0), pytest.approx(1.0)],
    ]
    assert inter["rga"][0][0] == pytest.approx(-1 / 3)
    assert inter["rga"][0][1] == pytest.approx(4 / 3)
    assert inter["niederlinski"] == pytest.approx(-3.0)
    codes = [f.code for f in r.findings]
    assert codes.count("COH310") == 2 and codes.count("COH311") == 1


def test_weak_coupling_is_stable_with_a_good_pairing(
    spec: Spec, spec_text: Callable[[str], str], compile_ts: Callable[[str], TransitionSystem]
) -> None:
    text = (
        spec_text("fight")
        .replace("u1 + 2 * u2", "u1 + 0.2 * u2")
        .replace("2 * u1 + u2", "0.2 * u1 + u2")
    )
    r = analyze(compile_ts(text))
    assert r.verdicts[0].status == Status.HOLDS
    (inter,) = dict(r.data)["interaction"]
    # RGA diagonal 1 / (1 - 0.04), NI = 0.96
    assert inter["rga"][0][0] == pytest.approx(1 / 0.96)
    assert inter["niederlinski"] == pytest.approx(0.96)
    assert not {"COH302", "COH310", "COH311"} & {f.code for f in r.findings}


def test_loop_unstable_alone(spec: Spec) -> None:
    ts = with_params(spec("integral"), {"KI": 0.3})  # critical 0.25
    r = analyze(ts)
    codes = {f.code for f in r.findings}
    assert {"COH301", "COH304"} <= codes
    (f,) = [f for f in r.findings if f.code == "COH304"]
    assert "`integral`" in f.message and f.span == ts.loop("integral").span
    margins = next(t for t in r.tables if t.title == "Margins")
    assert "unstable" in margins.note


def test_marginal_twin_integrators(spec: Spec) -> None:
    r = analyze(spec("twin_integrators"))
    assert r.verdicts[0].status == Status.UNKNOWN
    assert "within" in r.verdicts[0].reason
    codes = [f.code for f in r.findings]
    assert "COH303" in codes
    (same,) = [f for f in r.findings if f.code == "COH310"]
    assert "integrate the same signal `y`" in same.message
    # the marginal mode is the split between the two actuators
    mode = dict(r.data)["modes"][0]
    assert mode["magnitude"] == pytest.approx(1.0)
    assert set(mode["loops"]) == {"a", "b"}


def test_marginal_tolerance_is_configurable(spec: Spec) -> None:
    ts = with_params(spec("integral"), {"KI": 0.25 * 0.999999})  # rho ~ 1 - 5e-7
    assert analyze(ts).verdicts[0].status == Status.UNKNOWN  # marginal at 1e-6
    r = analyze(ts, LinearOptions(marginal_tol=1e-8))
    assert r.verdicts[0].status == Status.HOLDS


def test_timescale_warning_and_threshold(spec: Spec) -> None:
    ts = spec("multirate")
    (f,) = [f for f in analyze(ts).findings if f.code == "COH312"]
    assert "`f` (every 2 s)" in f.message and "`g` (every 3 s)" in f.message
    assert "ratio 1.5 < 5" in f.message
    quiet = analyze(ts, LinearOptions(timescale_ratio=1.2))
    assert "COH312" not in {x.code for x in quiet.findings}


def test_gain_and_delay_warning_thresholds(spec: Spec) -> None:
    ts = spec("shaped")
    loud = {f.code for f in analyze(ts).findings}
    assert {"COH308", "COH309"} <= loud
    quiet = analyze(ts, LinearOptions(gain_margin_warn=1.1, delay_margin_warn=1))
    assert not {"COH308", "COH309"} & {f.code for f in quiet.findings}


def test_topology_of_the_tipping_point(
    spec_text: Callable[[str], str], compile_ts: Callable[[str], TransitionSystem]
) -> None:
    from pathlib import Path

    from coherence.linear import topology

    root = Path(__file__).resolve().parents[2]
    ts = compile_ts((root / "specs/seed/tipping_point.coh").read_text())
    topo = topology(ts)
    edges = {(e.source, e.target): e.via for e in topo.edges}
    assert edges[("cost_controller", "agent_retries")] == ("context",)
    assert edges[("agent_retries", "cost_controller")] == ("retry",)
    assert edges[("agent_retries", "router")] == ("retry",)  # retries -> load -> queue
    assert ("cost_controller", "agent_retries") in topo.cycles
    assert topo.groups == (("cost_controller", "agent_retries"),)
    assert topo.to_data()["edges"][0]["via"]


def test_smallest_failing_set_beyond_pairs(spec: Spec) -> None:
    r = analyze(spec("triple"))
    data = dict(r.data)
    assert data["spectral_radius"] == pytest.approx(1.34)
    assert all(p["radius"] == pytest.approx(0.82) for p in data["pairs"])
    (f,) = [f for f in r.findings if f.code == "COH302"]
    assert "`a`, `b` and `c` are each stable alone but unstable together" in f.message
    assert len(f.related) == 2


THREE = """system s {
  tick 1s
  input d in [0, 2] nominal 1
  state a in [0, 10] init 1
  state b in [0, 10] init 1
  state c in [0, 10] init 1
  loop la { every 5s actuates a by 0.1 * (d + b + c - 3 * a) }
  loop lb { every 5s actuates b by 0.1 * (d + a + c - 3 * b) }
  loop lc { every %ds actuates c by 0.1 * (d + a + b - 3 * c) }
}"""


def test_loops_that_chase_each_other_are_one_timescale_finding() -> None:
    from coherence.compile import compile_text

    # three loops at 5 s, each moving what the other two see: three pairs, one finding
    ts = compile_text("t.coh", THREE % 5).systems[0]
    found = [f for f in analyze(ts).findings if f.code == "COH312"]
    assert len(found) == 1
    (f,) = found
    assert f.key == "la,lb,lc:timescale"
    assert sorted(map(tuple, dict(f.data)["pairs"])) == [("la", "lb"), ("la", "lc"), ("lb", "lc")]
    assert len(f.notes) == 3
    # the third loop 10x slower: only the fast pair remains, a finding of its own
    ts = compile_text("t.coh", THREE % 50).systems[0]
    keys = [f.key for f in analyze(ts).findings if f.code == "COH312"]
    assert keys == ["la,lb:timescale"]
