"""The structure of a transition system as the linear analysis reads it.

From the IR alone (no numbers): which names every let and update mentions, which states each
state belongs to (a loop that actuates or owns it, or the plant), what each loop reads through
its laws, guard and sensors and what it actuates, and the control-loop topology: which loop
influences which through shared states and signal paths, the coupling groups (strongly
connected sets of loops) and the cycles of influence.

A loop *reads* a state when the state enters its laws, guard or sensed signals in the same
tick (through lets and through the loop's own registers). A loop *sees* a state when the
state reaches what it reads through the plant's dynamics as well (plant updates, lets), up
to the actuators of loops: a loop M *influences* a loop L when M actuates a state L sees.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from coherence.ir.nodes import Expr, Phase, TransitionSystem, names_in, walk


def has_phase(e: Expr) -> bool:
    return any(isinstance(n, Phase) for n in walk(e))


@dataclass(frozen=True, slots=True)
class Edge:
    """Loop ``source`` influences loop ``target`` through the states ``via``."""

    source: str
    target: str
    via: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Topology:
    """The control-loop topology: loops, what they read and actuate, influence edges, cycles."""

    loops: tuple[str, ...]
    reads: tuple[tuple[str, tuple[str, ...]], ...]  # loop -> states read directly
    actuates: tuple[tuple[str, tuple[str, ...]], ...]
    edges: tuple[Edge, ...]
    groups: tuple[tuple[str, ...], ...]  # coupling groups: strongly connected sets of loops
    cycles: tuple[tuple[str, ...], ...]  # elementary cycles of influence (length >= 2)
    cycles_truncated: bool
    shared: tuple[tuple[str, tuple[str, ...]], ...]  # shared state -> loops that touch it

    def to_data(self) -> dict[str, object]:
        return {
            "loops": list(self.loops),
            "reads": {k: list(v) for k, v in self.reads},
            "actuates": {k: list(v) for k, v in self.actuates},
            "edges": [{"from": e.source, "to": e.target, "via": list(e.via)} for e in self.edges],
            "groups": [list(g) for g in self.groups],
            "cycles": [list(c) for c in self.cycles],
            "cycles_truncated": self.cycles_truncated,
            "shared_states": {k: list(v) for k, v in self.shared},
        }


class Structure:
    """Name-level facts about one transition system (computed once, read by every stage)."""

    def __init__(self, ts: TransitionSystem) -> None:
        self.ts = ts
        self.state_names = ts.state_names
        self.state_index = {n: i for i, n in enumerate(self.state_names)}
        self.let_names = tuple(d.name for d in ts.lets)
        self.let_index = {n: i for i, n in enumerate(self.let_names)}
        self.let_expr = {d.name: d.expr for d in ts.lets}
        self.input_names = frozenset(u.name for u in ts.inputs)
        self.param_names = frozenset(p.name for p in ts.params)
        self.kind = {s.name: s.kind for s in ts.states}
        self.let_deps = {d.name: names_in(d.expr) for d in ts.lets}
        self.update_deps = {s.name: names_in(s.update) for s in ts.states}
        self.sensed = frozenset(sn.name for lp in ts.loops for sn in lp.sensors)
        self.sensor_loop = {sn.name: lp.name for lp in ts.loops for sn in lp.sensors}
        self.loop_names = tuple(lp.name for lp in ts.loops)
        self.actuators: dict[str, tuple[str, ...]] = {}
        for lp in ts.loops:
            for a in lp.actions:
                self.actuators[a.state] = (*self.actuators.get(a.state, ()), lp.name)
        # owner of each state: "plant", a loop, or the loops actuating it (several share it)
        owners: list[tuple[str, ...]] = []
        for s in ts.states:
            if s.owner is not None:
                owners.append((s.owner,))
            elif s.name in self.actuators:
                owners.append(self.actuators[s.name])
            else:
                owners.append(("plant",))
        self.owners = tuple(owners)
        self._let_states: dict[str, frozenset[str]] = {}
        self.reads = {lp.name: self._loop_reads(lp.name) for lp in ts.loops}
        self.sees = {name: self._closure(r) for name, r in self.reads.items()}
        self.writes = {lp.name: lp.actuates for lp in ts.loops}

    # ---- reads ------------------------------------------------------------------------------

    def _loop_reads(self, loop: str) -> frozenset[str]:
        """States a loop reads in the same tick through its laws, guard and sensors."""
        lp = self.ts.loop(loop)
        own = set(lp.states)
        roots: set[str] = set()
        for a in lp.actions:
            roots |= names_in(a.law)
        roots |= self.let_deps.get(lp.fires, frozenset())
        for sn in lp.sensors:
            roots |= names_in(sn.signal)
        seen: set[str] = set()
        out: set[str] = set()
        todo = deque(roots)
        while todo:
            n = todo.popleft()
            if n in seen:
                continue
            seen.add(n)
            if n in self.let_deps:
                todo.extend(self.let_deps[n])
            elif n in self.state_index:
                if n in own:
                    if self.kind[n] == "cooldown":
                        continue
                    todo.extend(self.update_deps[n])
                else:
                    out.add(n)
        return frozenset(out)

    def _closure(self, states: frozenset[str]) -> frozenset[str]:
        """``states`` and every state that reaches them through plant updates and lets."""
        seen: set[str] = set()
        todo = deque(states)
        lets_seen: set[str] = set()
        while todo:
            n = todo.popleft()
            if n in self.let_deps:
                if n in lets_seen:
                    continue
                lets_seen.add(n)
                todo.extend(self.let_deps[n])
                continue
            if n not in self.state_index or n in seen:
                continue
            seen.add(n)
            if self.kind[n] == "plant":
                todo.extend(self.update_deps[n])
        return frozenset(seen)

    def signal_path(self, state: str, loop: str) -> tuple[str, ...]:
        """A chain of names by which ``state`` reaches what ``loop`` reads (for messages)."""
        lp = self.ts.loop(loop)
        targets: set[str] = set()
        for a in lp.actions:
            targets |= names_in(a.law)
        for sn in lp.sensors:
            targets.add(sn.name)
        targets |= self.let_deps.get(lp.fires, frozenset())
        dependents: dict[str, set[str]] = {}
        for name, deps in self.let_deps.items():
            for d in deps:
                dependents.setdefault(d, set()).add(name)
        for s in self.ts.states:
            if s.kind == "plant" or s.owner == loop:
                for d in self.update_deps[s.name]:
                    dependents.setdefault(d, set()).add(s.name)
        parent: dict[str, str | None] = {state: None}
        todo = deque([state])
        while todo:
            n = todo.popleft()
            if n in targets:
                path = [n]
                while parent[path[-1]] is not None:
                    p = parent[path[-1]]
                    assert p is not None
                    path.append(p)
                return tuple(x for x in reversed(path) if x == state or not _internal(x))
            for m in sorted(dependents.get(n, ())):
                if m not in parent:
                    parent[m] = n
                    todo.append(m)
        return (state,)

    def owner_label(self, i: int) -> str:
        return "+".join(self.owners[i])

    # ---- topology ---------------------------------------------------------------------------

    def topology(self, max_cycles: int = 50, max_length: int = 8) -> Topology:
        loops = self.loop_names
        edges: list[Edge] = []
        for m in loops:
            for lname in loops:
                if m == lname:
                    continue
                via = tuple(sorted(set(self.writes[m]) & self.sees[lname]))
                if via:
                    edges.append(Edge(m, lname, via))
        succ: dict[str, list[str]] = {x: [] for x in loops}
        for e in edges:
            succ[e.source].append(e.target)
        groups = _sccs(loops, succ)
        cycles, truncated = _cycles(loops, succ, max_cycles, max_length)
        touch: dict[str, set[str]] = {}
        for lp in loops:
            for s in self.writes[lp]:
                touch.setdefault(s, set()).add(lp)
            for s in self.reads[lp]:
                touch.setdefault(s, set()).add(lp)
        shared = tuple((s, tuple(sorted(v))) for s, v in sorted(touch.items()) if len(v) > 1)
        return Topology(
            loops,
            tuple((x, tuple(sorted(self.reads[x]))) for x in loops),
            tuple((x, self.writes[x]) for x in loops),
            tuple(edges),
            tuple(g for g in groups if len(g) > 1),
            cycles,
            truncated,
            shared,
        )

    def mutual(self) -> set[frozenset[str]]:
        """Pairs of loops that influence each other (both ways, possibly through others)."""
        topo_succ: dict[str, set[str]] = {x: set() for x in self.loop_names}
        for m in self.loop_names:
            for lname in self.loop_names:
                if m != lname and set(self.writes[m]) & self.sees[lname]:
                    topo_succ[m].add(lname)
        out: set[frozenset[str]] = set()
        for a in self.loop_names:
            for b in topo_succ[a]:
                if a in topo_succ[b]:
                    out.add(frozenset((a, b)))
        return out

    def shares_state(self, a: str, b: str) -> tuple[str, ...]:
        """States two loops share: both actuate it, or one actuates what the other sees."""
        wa, wb = set(self.writes[a]), set(self.writes[b])
        return tuple(sorted((wa & wb) | (wa & self.sees[b]) | (wb & self.sees[a])))


def _internal(name: str) -> bool:
    return "." in name


def _sccs(nodes: tuple[str, ...], succ: dict[str, list[str]]) -> list[tuple[str, ...]]:
    """Tarjan's strongly connected components (iterative), each sorted, in a stable order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[tuple[str, ...]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on.add(v)
            children = succ[v]
            if i < len(children):
                work.append((v, i + 1))
                w = children[i]
                if w not in index:
                    work.append((w, 0))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                out.append(tuple(sorted(comp, key=nodes.index)))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return sorted(out, key=lambda c: nodes.index(c[0]))


def _cycles(
    nodes: tuple[str, ...], succ: dict[str, list[str]], limit: int, max_length: int
) -> tuple[tuple[tuple[str, ...], ...], bool]:
    """Elementary cycles of length 2..max_length, each starting at its first node in ``nodes``
    order, at most ``limit`` of them (depth-first, deterministic)."""
    order = {n: i for i, n in enumerate(nodes)}
    out: list[tuple[str, ...]] = []
    truncated = False
    for start in nodes:
        s = order[start]
        path = [start]
        on_path = {start}
        iters = [iter(sorted(succ[start], key=order.__getitem__))]
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                iters.pop()
                on_path.discard(path.pop())
                continue
            if order[nxt] < s:
                continue
            if nxt == start:
                if len(path) >= 2:
                    out.append(tuple(path))
                    if len(out) >= limit:
                        return tuple(out), True
                continue
            if nxt in on_path or len(path) >= max_length:
                if nxt not in on_path:
                    truncated = True
                continue
            path.append(nxt)
            on_path.add(nxt)
            iters.append(iter(sorted(succ[nxt], key=order.__getitem__)))
    return tuple(out), truncated
