"""The per-process caches, in one place: bounded, keyed by content.

What an analysis computes once per system and shares with the next (a compiled simulator,
the nominal run, a loop's counterfactual) is kept in a :class:`Kept`: a small LRU map whose
keys are *content* keys (:attr:`coherence.ir.nodes.TransitionSystem.content_key`, a hash of
the lowered system), never ``id()``: two equal systems share an entry, and an entry can never
answer for a different system that happens to reuse a freed object's address. Every cache
registers itself by name (:data:`REGISTRY`), so a test or a long-lived process can list
them and empty them all (:func:`clear_all`).

The results cache between runs is another thing (:mod:`coherence.cache`, files on disk).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

V = TypeVar("V")

REGISTRY: dict[str, Kept[object]] = {}


class Kept(Generic[V]):
    """A bounded map from content keys to values, least recently used first out.

    >>> k: Kept[int] = Kept("example", 2)
    >>> k.put("a", 1); k.put("b", 2); k.put("c", 3)
    >>> k.get("a") is None, k.get("c")
    (True, 3)
    """

    def __init__(self, name: str, size: int) -> None:
        self.name = name
        self.size = size
        self._items: OrderedDict[Hashable, V] = OrderedDict()
        REGISTRY[name] = self  # type: ignore[assignment]

    def get(self, key: Hashable) -> V | None:
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
        return hit

    def put(self, key: Hashable, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


def clear_all() -> None:
    """Empty every registered cache."""
    for kept in REGISTRY.values():
        kept.clear()
