"""One overload, one finding: a nominal objective violation (COH506) about the same states as
a violated bounded requirement (COH501) is attached to it, not repeated beside it."""

from __future__ import annotations

from coherence.compile import compile_text
from coherence.pipeline import CheckOptions, analyse_system, analyses_for

QUEUE = """system s {{
  tick 1s
  input demand : req/s in [50, 150] nominal 120
  param capacity = 100 req/s
  state queue : req in [0, 100000] init 0
  let wait = queue / capacity
  next queue = max(0 req, queue + (demand - capacity) * tick)
  objective keep {objective} <= 5s
  require always queue <= 500 req for 60 ticks
}}"""


def _codes(objective: str) -> tuple[list[str], dict[str, object]]:
    ts = compile_text("q.coh", QUEUE.format(objective=objective)).systems[0]
    r = analyse_system(ts, analyses_for(CheckOptions(linear=False)))
    codes = sorted(f.code for f in r.findings if f.code in ("COH501", "COH506"))
    cex = next((f for f in r.findings if f.code == "COH501"), None)
    return codes, dict(cex.data) if cex is not None else {}


def test_a_nominal_violation_of_the_same_state_is_attached_to_the_requirement() -> None:
    # `wait` is queue / capacity: about `queue`, like the requirement (demand 120 > 100 grows it)
    codes, data = _codes("wait")
    assert codes == ["COH501"]
    assert data["includes"] == ("COH506 objective:wait",)


def test_a_violation_of_other_states_stays_its_own_finding() -> None:
    # an objective about the input alone is not the queue's overload
    codes, data = _codes("demand / capacity * 10s")
    assert codes == ["COH501", "COH506"]
    assert "includes" not in data
