"""Hypothesis strategies for the policy teams change most: stabilization windows, cooldowns,
tolerances; invalid draws are filtered out, never raised."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from coherence.strategies import Limit, PolicyChange, knobs, load_spec, policy_changes

ROOT = Path(__file__).resolve().parent.parent
# HPA every 15 s (1 tick) with `stabilize down 300s` (20 ticks) and an objective tolerance of
# 10%; VPA every minute with `tolerance 10%`; a global objective without a tolerance
HPA_VPA = load_spec(ROOT / "specs" / "conflicts" / "hpa_vpa_broken.coh")
DRAWS = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def value(change: PolicyChange, kind: str, target: str) -> float:
    return next(v for k, v in change.values if k.kind == kind and k.target == target)


def window(change: PolicyChange) -> int:
    return round(value(change, "stabilization", "hpa"))


def test_the_knobs_read_the_spec() -> None:
    ks = knobs(
        HPA_VPA,
        stabilizations=["hpa"],
        tolerances={"vpa": Limit(lo=0, hi=30), "hpa.util": 0.5, "pod_quota": Limit(hi=5)},
        cooldowns={"hpa": Limit(lo=0, hi=8)},
    )
    got = {(k.kind, k.target): (k.current, k.lo, k.hi, k.unit) for k in ks}
    assert got[("stabilization", "hpa")] == (20.0, 16, 24, "")  # 300 s at a 15 s tick, ±20%
    assert got[("tolerance", "vpa")] == (10.0, 0.0, 30, "%")
    assert got[("tolerance", "hpa.util")] == (10.0, 5.0, 15.0, "%")
    assert got[("tolerance", "pod_quota")] == (0.0, 0.0, 5, "%")  # none written: 0%
    assert got[("cooldown", "hpa")] == (0.0, 0, 8, "")
    with pytest.raises(KeyError, match="no stabilization window"):
        knobs(HPA_VPA, stabilizations=["vpa"])
    with pytest.raises(KeyError, match="no tolerance clause"):
        knobs(HPA_VPA, tolerances=["hpa"])
    with pytest.raises(TypeError, match="load_spec"):
        knobs(HPA_VPA.ts, stabilizations=["hpa"])


def test_changes_reach_the_lowered_system() -> None:
    ks = knobs(HPA_VPA, stabilizations=["hpa"], tolerances=["vpa", "hpa.util"])
    chosen = {"stabilization": 4.0, "tolerance": 0.0}
    ts = PolicyChange(HPA_VPA, tuple((k, chosen[k.kind]) for k in ks)).apply()
    # a window of n periods keeps n - 1 past recommendations (coherence/ir/lower.py)
    (action,) = ts.loop("hpa").actions
    assert len(action.history) == 3
    assert len(HPA_VPA.ts.loop("hpa").actions[0].history) == 19  # the spec is unchanged
    assert ts.objective("hpa.util").tolerance == 0.0
    assert HPA_VPA.ts.objective("hpa.util").tolerance == pytest.approx(0.1)


POLICY = policy_changes(
    HPA_VPA,
    periods={"hpa": Limit(lo=1, hi=4)},
    stabilizations={"hpa": Limit(lo=0, hi=40)},
    cooldowns={"hpa": Limit(lo=0, hi=8)},
    tolerances={"vpa": Limit(lo=0, hi=30), "hpa.util": Limit(lo=0, hi=20)},
    bounds={"replicas.lo": Limit(lo=2, hi=14)},  # above the initial 10 replicas: invalid
)


EDGES: dict[str, Callable[[PolicyChange], bool]] = {
    "no stabilization window": lambda c: window(c) == 0,
    "the longest window": lambda c: window(c) == 40,
    "a window under a longer period": lambda c: value(c, "period", "hpa") == 4 and window(c) > 0,
    "no cooldown": lambda c: value(c, "cooldown", "hpa") == 0,
    "the longest cooldown": lambda c: value(c, "cooldown", "hpa") == 8,
    "a zero loop tolerance": lambda c: value(c, "tolerance", "vpa") == 0.0,
    "a zero objective tolerance": lambda c: value(c, "tolerance", "hpa.util") == 0.0,
    "the widest tolerance": lambda c: value(c, "tolerance", "vpa") == 30.0,
    "the spec as written": lambda c: repr(c) == "PolicyChange(as written)",
}


def test_two_hundred_draws_never_raise_and_reach_the_edge_cases() -> None:
    seen: Counter[str] = Counter()

    @DRAWS
    @given(POLICY)
    def draw(change: PolicyChange) -> None:
        ts = change.apply()  # never InvalidChange: such draws are filtered out
        hpa = ts.loop("hpa")
        assert hpa.period == value(change, "period", "hpa")
        assert window(change) % hpa.period == 0  # a whole number of (drawn) periods
        assert ts.state("replicas").lo <= 10  # the initial value stays in range
        assert ts.objective("hpa.util").tolerance >= 0.0
        seen["draws"] += 1
        seen.update(name for name, edge in EDGES.items() if edge(change))

    draw()
    assert seen["draws"] == 200
    missing = [name for name in EDGES if not seen[name]]
    assert not missing, f"never drawn: {missing}"


def test_windows_are_whole_numbers_of_the_period(tmp_path: Path) -> None:
    # the VPA acts every 4 ticks: its windows are drawn in steps of 4 ticks
    spec = ROOT / "specs" / "conflicts" / "hpa_vpa_broken.coh"
    text = spec.read_text(encoding="utf-8").replace(
        "    tolerance 10%", "    stabilize up 4min\n    tolerance 10%"
    )
    path = tmp_path / "vpa.coh"
    path.write_text(text, encoding="utf-8")
    vpa = load_spec(path)
    (k,) = knobs(vpa, stabilizations={"vpa.up": Limit(lo=1, hi=30)})
    assert (k.current, k.lo, k.hi, k.step) == (16.0, 4, 28, 4)
    windows: set[int] = set()

    @settings(DRAWS, max_examples=40)
    @given(policy_changes(vpa, stabilizations={"vpa.up": Limit(lo=1, hi=30)}))
    def draw(change: PolicyChange) -> None:
        change.apply()
        windows.add(round(change.values[0][1]))

    draw()
    assert windows <= {4, 8, 12, 16, 20, 24, 28} and {4, 28} <= windows
