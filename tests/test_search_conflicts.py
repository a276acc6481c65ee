"""The conflict search (:mod:`coherence.search.conflicts`) against closed forms.

The running example: ``up`` adds 1 to ``y`` every 2 ticks; ``down`` takes 0.5 from it every
tick and wants it low. Both actions are constant, so from any start at which ``up`` acts,
holding ``up`` for ``j`` ticks leaves ``y`` lower by exactly the number of ``up``'s actions
in those ticks, ``ceil(j / 2)``: 3 after 5 ticks. From the initial state (``y = 100``) ``y``
alternates 100 (even ticks, where ``up`` acts) and 100.5, so five ticks after an action the
acting run has ``y = 100.5`` and the holding run ``100 - 5 * 0.5 = 97.5``; on the nominal run
the median of ``|y|`` is 100.25 and the default floor 1.0025.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from coherence.compile import compile_text
from coherence.formal import SmtOptions, analyze
from coherence.formal.conflicts import ALIGNED, CONFLICT, NOT_FOUND, check_all
from coherence.ir import meaning
from coherence.ir.nodes import Const, ObjectiveIR, TransitionSystem
from coherence.ir.transform import hold_loop
from coherence.reports.json import finding_json
from coherence.results import Status
from coherence.search.conflicts import Falsification, falsify, floors, values
from coherence.simulate.engine import simulate
from coherence.smt.solver import SolverStats, own_context
from tests.helpers import assert_replays

UP_DOWN = """system s {
  tick 1s
  %(inputs)s
  state y in [0, 1000] init 100
  loop up { every 2s actuates y by %(step)s }
  loop down { every 1s actuates y by -0.5
    objective minimize y %(objective)s }
  require coherent
}"""

PAIR = ("up", "down")


def compiled(text: str) -> TransitionSystem:
    result = compile_text("t.coh", text)
    assert result.ok, [d.message for d in result.diagnostics]
    return result.systems[0]


def up_down(objective: str = "", inputs: str = "", step: str = "1") -> TransitionSystem:
    return compiled(UP_DOWN % {"objective": objective, "inputs": inputs, "step": step})


def _matrix(r: object) -> dict[tuple[str, str], str]:
    table = next(t for t in r.tables if t.title == "Objective alignment")  # type: ignore[attr-defined]
    cols = table.columns[1:]
    return {
        (str(row[0]), c): str(v) for row in table.rows for c, v in zip(cols, row[1:], strict=True)
    }


# ---- (a) the effect is the closed form's ------------------------------------------------------


@pytest.mark.parametrize(("k", "effect"), [(1, 1.0), (2, 1.0), (3, 2.0), (5, 3.0), (8, 4.0)])
def test_the_effect_is_the_number_of_actions_held(k: int, effect: float) -> None:
    ts = up_down("floor 0.5")
    found = falsify(ts, {PAIR: k})
    w = found.found[PAIR]
    assert w.effect == pytest.approx(effect, abs=1e-12)
    assert w.effect == math.ceil(w.tick / 2)
    assert w.objective == "down.y" and (w.actor, w.affected) == PAIR
    assert w.start_tick % 2 == 0  # up acts on even ticks only
    assert_replays(ts, w)


def test_the_witness_values_are_the_closed_forms() -> None:
    ts = up_down()
    w = falsify(ts, {PAIR: 5}).found[PAIR]
    assert (w.tick, w.effect) == (5, 3.0)
    assert (w.acting, w.holding) == (100.5, 97.5)
    assert w.threshold == pytest.approx(1.0025)  # the default floor: 1% of 100.25
    assert w.change == ""  # only keep objectives cause or deepen a violation
    assert w.run.ticks == w.start_tick + 6 and w.counterfactual.ticks == 6


def test_the_end_to_end_conflict_is_one_finding_for_the_acting_loop() -> None:
    ts = up_down()
    r = analyze(ts)
    (v,) = r.verdicts
    assert v.status is Status.FALSIFIED and v.codes == ("COH401",)
    (f,) = r.findings
    assert f.key == "conflict:up" and f.span == ts.loop("up").span
    pairs = {(p.actor, p.affected): p for p in check_all(ts, SmtOptions(), SolverStats())}
    p = pairs[PAIR]
    assert p.verdict == CONFLICT and p.witness is not None
    # holding up for the pair's k ticks: ceil(k / 2) actions, whatever k the search uses
    assert p.witness.effect == math.ceil(p.witness.tick / 2) == math.ceil(p.depth / 2)
    assert dict(f.data)["effect"] == p.witness.effect
    assert _matrix(r)[PAIR].startswith("conflicting")


def test_one_action_is_below_the_default_floor() -> None:
    # held for one tick, up's single action moves y by 1: under 1% of y's median (y >= 100)
    ts = up_down()
    found = falsify(ts, {PAIR: 1})
    floor = floors(ts, simulate(ts, found.effort.ticks))["down.y"]
    assert floor == pytest.approx(1.0025)  # the median of 100 and 100.5, as many of each
    assert PAIR not in found.found
    assert found.closest[PAIR] == pytest.approx(1.0 / floor)
    assert falsify(ts, {PAIR: 3}).found[PAIR].effect == 2.0


def test_an_effect_equal_to_its_threshold_is_not_material() -> None:
    ts = up_down("floor 1")
    found = falsify(ts, {PAIR: 1})
    assert PAIR not in found.found and found.closest[PAIR] == 1.0
    assert falsify(ts, {PAIR: 3}).found[PAIR].effect == 2.0


def test_a_loop_whose_actions_help_is_not_a_conflict() -> None:
    # up now takes 1 away: holding it leaves y higher, which down does not want
    ts = up_down(step="-1")
    found = falsify(ts, {PAIR: 5})
    assert not found.found and found.closest[PAIR] == 0.0


# ---- (b) the floor ----------------------------------------------------------------------------


def test_a_floor_above_the_effect_silences_it() -> None:
    ts = up_down("floor 3.5")
    assert ts.objective("down.y").floor == 3.5
    found = falsify(ts, {PAIR: 5})
    assert PAIR not in found.found
    assert found.closest[PAIR] == pytest.approx(3.0 / 3.5)


def test_a_floor_just_below_the_effect_keeps_it() -> None:
    ts = up_down("floor 2.9")
    w = falsify(ts, {PAIR: 5}).found[PAIR]
    assert (w.effect, w.threshold) == (3.0, 2.9)
    assert_replays(ts, w)


def test_a_floor_above_every_effect_leaves_no_finding() -> None:
    # within any k up to 16 holding up changes y by at most 8
    ts = up_down("floor 1000")
    r = analyze(ts)
    (v,) = r.verdicts
    assert not [f for f in r.findings if f.code == "COH401"]
    assert v.status is not Status.FALSIFIED
    assert _matrix(r)[PAIR].split(" ")[0] in ("aligned", "not")


def test_the_finding_states_the_floor_it_was_given() -> None:
    # threshold = max(2% of the holding y (95 .. 99.5), 1.5): the tolerance decides
    r = analyze(up_down("tolerance 2% floor 1.5"))
    (f,) = [f for f in r.findings if f.code == "COH401"]
    assert dict(f.data)["threshold"] > 1.5
    (note,) = [n for n in f.notes if "material above" in n]
    assert "floor 1.5" in note


# ---- (c) the relative tolerance ---------------------------------------------------------------


def test_an_effect_within_a_relative_tolerance_is_no_finding() -> None:
    # 5% of the holding run's 97.5 is 4.875 > 3
    ts = up_down("tolerance 5%")
    found = falsify(ts, {PAIR: 5})
    assert PAIR not in found.found
    assert found.closest[PAIR] == pytest.approx(3.0 / 4.875)


def test_an_effect_beyond_a_relative_tolerance_is_one() -> None:
    # 2% of 97.5 is 1.95 < 3, and more than the default floor 1.0025
    ts = up_down("tolerance 2%")
    w = falsify(ts, {PAIR: 5}).found[PAIR]
    assert w.threshold == pytest.approx(0.02 * 97.5)
    assert w.threshold == pytest.approx(0.02 * abs(w.holding))
    assert_replays(ts, w)


# ---- (d) a conflict only from a state no run reaches ------------------------------------------

GATED = """system s {
  tick 1s
  input u in [0, 1] nominal 0.5
  state m in [0, 100] init 0
  state y in [0, 1000] init 100
  next m = if m > 50 then m else min(m + u, 10)
  loop up { every 2s actuates y by if m > 50 then 1 else 0 }
  loop down { every 1s actuates y by -0.5
    objective minimize y }
  require coherent
}"""


def test_a_conflict_only_where_no_run_goes_is_not_found() -> None:
    # m's declared range allows m > 50, where m stays and up's action raises y; from m = 0
    # the dynamics never take m past 10, and there up never moves y
    ts = compiled(GATED)
    held = simulate(hold_loop(ts, "up"), 5, init={"m": 60.0, "y": 100.0})
    acting = simulate(ts, 5, init={"m": 60.0, "y": 100.0})
    gap = acting.state("y")[0] - held.state("y")[0]
    assert gap[5] == 3.0  # the conflict exists from m = 60, a state of the declared box
    found = falsify(ts, {PAIR: 5})
    assert not found.found and found.closest[PAIR] == 0.0
    r = analyze(ts)
    assert not [f for f in r.findings if f.code == "COH401"]
    # the reachable enclosure keeps m within [0, 10]: there up holds still, a proof
    assert _matrix(r)[PAIR].startswith("aligned")
    assert r.verdicts[0].status is Status.PROVED


LAGGED = """system s {
  tick 1s
  input u : 1 in [-1, 1] nominal 0
  state x : 1 in [0, 10] init 5
  state y : 1 in [0, 10] init 5
  state w : 1 in [0, 10] init 5
  next x = x + u
  loop copy { every 1s actuates y to x }
  loop shadow { every 1s actuates w to y
    objective keep lag = y - w <= 3 }
  require coherent
}"""


def test_a_solver_witness_from_the_enclosures_corner_is_no_finding() -> None:
    # one tick after copy acts, y - w is the u of the tick before, at most 1 on every run; the
    # enclosure's box holds x = 10, y = 0, from which copy's action makes the lag 10: the
    # solver's witness is only a candidate. Without the warm recheck the pair is not found,
    # and coherence is unknown (not proved, not falsified)
    ts = compiled(LAGGED)
    with own_context():
        options = SmtOptions(warm_recheck=False)
        pairs = {(p.actor, p.affected): p for p in check_all(ts, options, SolverStats())}
        r = analyze(ts, options)
    p = pairs[("copy", "shadow")]
    assert p.verdict == NOT_FOUND and p.witness is None and p.candidate is not None
    (v,) = r.verdicts
    assert v.status is Status.UNKNOWN
    assert [f.key for f in r.findings] == ["unknown:coherent"]
    assert [f.code for f in r.findings] == ["COH901"]
    assert _matrix(r)[("copy", "shadow")].startswith("not found")
    # with the recheck (the default) the warm start proves it
    with own_context():
        pairs = {(p.actor, p.affected): p for p in check_all(ts, SmtOptions(), SolverStats())}
    assert pairs[("copy", "shadow")].verdict == ALIGNED


# ---- (e) where the run starts -----------------------------------------------------------------


def test_a_conflict_on_the_nominal_run_is_nominal() -> None:
    # u does not matter to the pair: the nominal pattern, first, already shows the conflict
    ts = up_down(inputs="input u in [0, 1] nominal 0.5\n  state z in [0, 1] init 0\n  next z = u")
    w = falsify(ts, {PAIR: 5}).found[PAIR]
    # a window from tick 0 starts at the initial state: "initial" (no nominal run before it)
    assert w.origin == ("nominal" if w.start_tick > 0 else "initial") and w.pattern == "nominal"
    assert np.all(w.run.inputs[0, :, 0] == 0.5)
    assert_replays(ts, w)


GUSTY = """system s {
  tick 1s
  input u in [0, 1] nominal 0.5
  state y in [0, 1000] init 100
  loop up { every 2s actuates y by if u > 0.9 then 1 else 0 }
  loop down { every 1s actuates y by -0.5
    objective minimize y }
  require coherent
}"""


def test_a_conflict_that_needs_other_inputs_comes_from_a_pattern() -> None:
    # up acts only when u > 0.9: never on the nominal run (u = 0.5)
    ts = compiled(GUSTY)
    w = falsify(ts, {PAIR: 5}).found[PAIR]
    assert w.pattern != "nominal" and w.effect == 3.0
    u = w.run.inputs[0, :, 0]
    assert u[w.start_tick] > 0.9  # the input that up's action reads is not nominal
    assert_replays(ts, w)


def test_a_conflict_that_needs_other_inputs_is_not_reported_as_nominal() -> None:
    ts = compiled(GUSTY)
    r = analyze(ts)
    (f,) = [f for f in r.findings if f.code == "COH401"]
    assert not any("with nominal inputs" in n for n in f.notes)
    assert dict(f.data)["origin"] == "initial"


# ---- (f) determinism --------------------------------------------------------------------------


def _same(a: Falsification, b: Falsification) -> None:
    assert a.effort == b.effort and a.closest == b.closest and a.spurious == b.spurious
    assert sorted(a.found) == sorted(b.found)
    for p, v in a.found.items():
        w = b.found[p]
        assert (v.origin, v.pattern, v.start_tick, v.tick, v.objective) == (
            w.origin, w.pattern, w.start_tick, w.tick, w.objective,
        )  # fmt: skip
        assert (v.effect, v.threshold, v.acting, v.holding) == (
            w.effect, w.threshold, w.acting, w.holding,
        )  # fmt: skip
        assert np.array_equal(v.run.inputs, w.run.inputs)
        assert np.array_equal(v.counterfactual.states, w.counterfactual.states)


def test_the_search_is_deterministic() -> None:
    ts = compiled(GUSTY)
    _same(falsify(ts, {PAIR: 5}), falsify(ts, {PAIR: 5}))


def test_the_optimiser_is_deterministic() -> None:
    # close to the tolerance (3 against 4.875) and not found: the cross-entropy search runs
    ts = up_down(
        "tolerance 5%", "input u in [0, 1] nominal 0.5\n  state z in [0, 1] init 0\n  next z = u"
    )
    a, b = falsify(ts, {PAIR: 5}), falsify(ts, {PAIR: 5})
    assert a.effort.scenarios > 31  # the patterns, then the optimiser's populations
    _same(a, b)


# ---- (g) the default floor --------------------------------------------------------------------


def _objective(
    kind: str = "minimize", floor: float | None = None, scale: float = 1.0
) -> ObjectiveIR:
    cmp, bound = ("<=", Const(10.0)) if kind == "keep" else (None, None)
    return ObjectiveIR("o", "l", kind, Const(0.0), cmp, bound, 0.0, False, scale=scale, floor=floor)


def test_the_default_floor_is_a_hundredth_of_the_median_magnitude() -> None:
    o = _objective()
    assert meaning.default_floor(o, np.array([90.0, 100.0, 110.0])) == pytest.approx(1.0)
    assert meaning.default_floor(o, np.array([-300.0, 2.0, -4.0])) == pytest.approx(0.04)
    # values that are not finite do not count
    assert meaning.default_floor(o, np.array([np.nan, np.inf, 50.0])) == pytest.approx(0.5)


def test_the_default_floor_falls_back_on_the_largest_magnitude_then_the_unit() -> None:
    o = _objective()
    assert meaning.default_floor(o, np.array([0.0, 0.0, 0.0, -5.0])) == pytest.approx(0.05)
    assert meaning.default_floor(o, np.zeros(4)) == pytest.approx(0.01)
    ms = _objective(scale=0.001)  # an objective shown in ms: 1% of 1 ms
    assert meaning.default_floor(ms, np.zeros(4)) == pytest.approx(1e-5)
    assert meaning.default_floor(o, np.array([])) == pytest.approx(0.01)


def test_a_keep_objectives_default_floor_reads_its_bound() -> None:
    o = _objective("keep")
    values = np.array([0.0, 1.0, 2.0])
    assert meaning.default_floor(o, values, np.array([10.0, 10.0, 12.0])) == pytest.approx(0.1)
    assert meaning.default_floor(o, values) == pytest.approx(0.01)  # no bound: the values


def test_a_declared_floor_is_taken_as_it_is() -> None:
    assert meaning.default_floor(_objective(floor=7.0), np.array([1e6])) == 7.0
    assert meaning.default_floor(_objective(floor=0.0), np.array([1e6])) == 0.0


def test_a_specs_floor_is_in_canonical_units_and_used_by_the_search() -> None:
    ts = compiled("""system s {
  tick 1s
  state y : s in [0s, 1000s] init 100s
  loop up { every 2s actuates y by 1s }
  loop down { every 1s actuates y by -500ms
    objective minimize y floor 2900ms }
  require coherent
}""")
    assert ts.objective("down.y").floor == pytest.approx(2.9)
    assert floors(ts, simulate(ts, 20))["down.y"] == pytest.approx(2.9)
    w = falsify(ts, {PAIR: 5}).found[PAIR]
    assert w.effect == pytest.approx(3.0) and w.threshold == pytest.approx(2.9)


def test_the_floor_of_the_nominal_run() -> None:
    ts = up_down()
    nominal = simulate(ts, 126)
    assert floors(ts, nominal) == {"down.y": pytest.approx(1.0025)}
    y = values(ts.objective("down.y").expr, nominal)[0]
    assert float(np.median(np.abs(y))) == pytest.approx(100.25)


# ---- (h) the finding's data -------------------------------------------------------------------


def test_the_json_report_carries_where_the_run_starts() -> None:
    ts = up_down("floor 2.9")
    r = analyze(ts)
    (f,) = [f for f in r.findings if f.code == "COH401"]
    out = json.loads(json.dumps(finding_json(f)))
    data = out["data"]
    assert out["key"] == "conflict:up"
    assert data["origin"] == ("nominal" if data["start_tick"] > 0 else "initial")
    assert data["start_tick"] % 2 == 0
    assert data["objective"] == "down.y" and data["affects"] == ["down"]
    assert data["pattern"] == "nominal"
    assert data["threshold"] == 2.9
    # the tick of the effect is the run's: the start and the ticks after it
    assert data["tick"] > data["start_tick"]
    assert data["effect"] == math.ceil((data["tick"] - data["start_tick"]) / 2)
    acting, holding = data["acting"], data["holding"]
    assert acting[0] == holding[0]
    assert (
        acting[data["tick"] - data["start_tick"]] - holding[data["tick"] - data["start_tick"]]
        == data["effect"]
    )
