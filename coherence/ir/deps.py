"""The one dependency analysis of a transition system: what reads what, and what a loop's
action can reach within k ticks.

Every analysis that asks "are these two loops coupled?" reads this module: the conflict
search (which pairs need a query, and through which names), the influence cycles the report
lists, and the falsification search (:mod:`coherence.search.conflicts`).

- :func:`influence`: the names (states and lets) that a change of some names reaches, with the
  first tick at which each is reached (a let the same tick, a state the tick after);
- :func:`reads`: what a loop's objectives, laws and sensors read;
- :func:`coupling`: the names through which loop A reaches loop B within k ticks;
- :func:`influence_cycles`: the elementary cycles of influence between loops (the one
  topology of :mod:`coherence.ir.topology`, which the linear analysis reports too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from coherence.ir.nodes import ObjectiveIR, TransitionSystem, names_in

GLOBAL = "(global objectives)"  # the spec's own objectives, owned by no loop


def influence(ts: TransitionSystem, sources: Iterable[str], k: int) -> dict[str, int]:
    """The names (states and lets) that a change of ``sources`` reaches, with the first tick
    (0 = the tick of the change) at which each is reached, within ``k`` ticks.

    A let is reached at the tick one of the names it reads is; a state the tick after.
    Propagated along the reverse dependencies: each name's readers are visited once.

    >>> from coherence.compile import compile_text
    >>> ts = compile_text("a.coh", "system s { tick 1s state x in [0, 9] init 0 "
    ...                   "state y in [0, 9] init 0 let z = 2 * x next x = x next y = z }"
    ...                   ).systems[0]
    >>> sorted(influence(ts, ["x"], 2).items())
    [('x', 0), ('y', 1), ('z', 0)]
    """
    let_readers: dict[str, list[str]] = {}
    state_readers: dict[str, list[str]] = {}
    for d in ts.lets:
        for n in sorted(names_in(d.expr)):
            let_readers.setdefault(n, []).append(d.name)
    for st in ts.states:
        for n in sorted(names_in(st.update)):
            state_readers.setdefault(n, []).append(st.name)
    reached: dict[str, int] = {}
    frontier = sorted(set(sources))
    for t in range(k + 1):
        new = [n for n in frontier if n not in reached]
        for n in new:
            reached[n] = t
        i = 0
        while i < len(new):  # lets of the same tick
            for reader in let_readers.get(new[i], ()):
                if reader not in reached:
                    reached[reader] = t
                    new.append(reader)
            i += 1
        frontier = sorted({s for n in new for s in state_readers.get(n, ()) if s not in reached})
        if not frontier:
            break  # nothing new: later ticks reach nothing more
    return reached


def objectives_of(ts: TransitionSystem, b: str) -> list[ObjectiveIR]:
    """Loop B's objectives; for ``GLOBAL``, the spec's objectives that no loop owns."""
    if b == GLOBAL:
        return [o for o in ts.objectives if o.owner is None]
    return [ts.objective(n) for n in ts.loop(b).objectives]


def reads(ts: TransitionSystem, b: str) -> set[str]:
    """What B's objectives and laws read (directly; lets are followed by ``influence``)."""
    out: set[str] = set()
    for o in objectives_of(ts, b):
        out |= names_in(o.expr)
        if o.bound is not None:
            out |= names_in(o.bound)
    if b == GLOBAL:
        return out
    lp = ts.loop(b)
    for a in lp.actions:
        out |= names_in(a.law) | {a.target}
    for sn in lp.sensors:
        out |= names_in(sn.signal)
    return out


def coupling(
    ts: TransitionSystem, a: str, b: str, k: int, reach: Mapping[str, int] | None = None
) -> tuple[str, ...]:
    """The names through which A reaches B within k ticks (empty: no query needed);
    ``reach`` is ``influence(ts, A's actuators, k)`` when the caller has it."""
    if reach is None:
        reach = influence(ts, ts.loop(a).actuates, k)
    hit = reads(ts, b) & set(reach)
    return tuple(sorted(hit, key=lambda n: (reach[n], n)))


def states_of(ts: TransitionSystem, names: Iterable[str]) -> frozenset[str]:
    """The plant and actuator states that ``names`` read, lets followed to what they read:
    what an expression is *about* (``hot_wait = hot_queue / mu`` is about ``hot_queue``)."""
    lets = {d.name: d.expr for d in ts.lets}
    kinds = {s.name: s.kind for s in ts.states}
    seen: set[str] = set()
    out: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        if n in lets:
            todo.extend(names_in(lets[n]))
        elif kinds.get(n) in ("plant", "actuator"):
            out.add(n)
    return frozenset(out)


def user_names(ts: TransitionSystem, names: Iterable[str]) -> tuple[str, ...]:
    """``names`` spelled as the spec's author wrote them: a loop's internal names
    (``router.latency``, ``keda.replicas.target``, a delay register ``cost.r3``) become the
    user's name they stand for; duplicates dropped, order kept."""
    users = set(ts.state_names) | {d.name for d in ts.lets if d.owner is None}
    users |= set(ts.input_names)
    out: list[str] = []
    for n in names:
        name = n
        if name not in users:
            parts = name.split(".")
            for i in range(len(parts), 0, -1):
                if ".".join(parts[:i]) in users:
                    name = ".".join(parts[:i])
                    break
                if parts[i - 1] in users:
                    name = parts[i - 1]
                    break
        if name not in out:
            out.append(name)
    return tuple(out)


MAX_CYCLES = 50  # the cycles listed at most (the topology says when the list is cut)
MAX_CYCLE_LENGTH = 8


def influence_cycles(ts: TransitionSystem) -> list[tuple[str, ...]]:
    """The elementary cycles of influence between loops, as the control-loop topology
    defines them (:class:`coherence.ir.topology.Topology`: loop M influences loop L when M
    actuates a state L sees); at most ``MAX_CYCLES`` of them, of at most
    ``MAX_CYCLE_LENGTH`` loops. The linear analysis' topology table and the formal
    analysis' data list the same cycles."""
    from coherence.ir.topology import Structure

    topo = Structure(ts).topology(MAX_CYCLES, MAX_CYCLE_LENGTH)
    return [tuple(c) for c in topo.cycles]
