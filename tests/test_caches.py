"""The per-process caches: bounded, keyed by content, all registered."""

from __future__ import annotations

from coherence import caches
from coherence.compile import compile_text
from coherence.ir.transform import hold_loop
from coherence.simulate import engine

SPEC = """system s {
  tick 1s
  state x in [0, 10] init 1
  loop up { every 2s actuates x by 1 }
}"""


def test_a_kept_map_forgets_the_least_recently_used() -> None:
    k: caches.Kept[int] = caches.Kept("test.lru", 2)
    k.put("a", 1)
    k.put("b", 2)
    assert k.get("a") == 1  # now "b" is the oldest
    k.put("c", 3)
    assert (k.get("a"), k.get("b"), k.get("c"), len(k)) == (1, None, 3, 2)
    assert caches.REGISTRY["test.lru"] is k
    caches.clear_all()
    assert len(k) == 0


def test_equal_systems_share_their_entries_and_different_ones_do_not() -> None:
    ts = compile_text("a.coh", SPEC).systems[0]
    twin = compile_text("a.coh", SPEC).systems[0]
    other = compile_text("a.coh", SPEC.replace("by 1", "by 2")).systems[0]
    assert ts is not twin and ts.content_key == twin.content_key
    assert other.content_key != ts.content_key
    assert engine.compiled(ts) is engine.compiled(twin)
    assert engine.compiled(other) is not engine.compiled(ts)
    assert hold_loop(ts, "up") is hold_loop(twin, "up")
    # a counterfactual is a different system: its own key, its own compiled simulator
    held = hold_loop(ts, "up")
    assert held.content_key != ts.content_key
    assert engine.compiled(held) is not engine.compiled(ts)
    x = engine.simulate(engine.compiled(held), 3).state("x")[0].tolist()
    assert x == [1.0, 1.0, 1.0, 1.0]
