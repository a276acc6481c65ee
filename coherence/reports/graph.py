"""The coupling graph as text: Mermaid (for Markdown job summaries) and Graphviz DOT.

Both render the *coupling table* of a system: a :class:`~coherence.results.Table` titled
``Coupling graph`` with the columns ``from, from kind, relation, to, to kind``. Kinds are
``loop``, ``state`` and ``input``; relations are ``actuates`` (loop -> state), ``senses``
(state or input -> loop, through the loop's sensors), ``reads`` (state or input -> loop, in
its control law or guard) and ``drives`` (state or input -> plant state, in its ``next``
update). ``coherence check`` adds that table from the IR (see :mod:`coherence.plot`); an
analysis that produces a table with the same title and columns is used instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from coherence.results import SystemReport, Table

COUPLING_TITLE = "Coupling graph"
COUPLING_COLUMNS = ("from", "from kind", "relation", "to", "to kind")
RELATIONS = ("actuates", "senses", "reads", "drives")

Edge = tuple[str, str, str, str, str]


def is_coupling_table(t: Table) -> bool:
    return t.title == COUPLING_TITLE and tuple(t.columns) == COUPLING_COLUMNS


def coupling_table_of(s: SystemReport) -> Table | None:
    """The first coupling table any analysis of the system produced."""
    for a in s.analyses:
        for t in a.tables:
            if is_coupling_table(t):
                return t
    return None


def edges_of(t: Table) -> list[Edge]:
    return [tuple(str(c) for c in row) for row in t.rows]  # type: ignore[misc]


def nodes_of(edges: Iterable[Edge]) -> list[tuple[str, str]]:
    """(name, kind) in order of first appearance: loops, then states, then inputs."""
    seen: dict[str, str] = {}
    for a, ak, _, b, bk in edges:
        seen.setdefault(a, ak)
        seen.setdefault(b, bk)
    order = {"loop": 0, "state": 1, "input": 2}
    return sorted(seen.items(), key=lambda nk: (order.get(nk[1], 3), nk[0]))


def mermaid(t: Table, direction: str = "LR") -> str:
    """A Mermaid flowchart: loops as stadiums, states as boxes, inputs as parallelograms."""
    edges = edges_of(t)
    nodes = nodes_of(edges)
    ids = {name: f"n{i}" for i, (name, _) in enumerate(nodes)}
    shape = {"loop": '(["{}"])', "state": '["{}"]', "input": '[/"{}"/]'}
    arrow = {"actuates": "==>", "senses": "-.->", "reads": "-.->", "drives": "-->"}
    lines = [f"flowchart {direction}"]
    for name, kind in nodes:
        lines.append(f"  {ids[name]}{shape.get(kind, '[{}]').format(_mm(name))}")
    for a, _, rel, b, _ in edges:
        lines.append(f"  {ids[a]} {arrow.get(rel, '-->')}|{rel}| {ids[b]}")
    lines += [
        "  classDef loop fill:#dbeafe,stroke:#1e40af",
        "  classDef input fill:#f3f4f6,stroke:#6b7280",
    ]
    for kind in ("loop", "input"):
        members = [ids[n] for n, k in nodes if k == kind]
        if members:
            lines.append(f"  class {','.join(members)} {kind}")
    return "\n".join(lines) + "\n"


def _mm(name: str) -> str:
    return name.replace('"', "#quot;")


def dot(t: Table, name: str = "coupling") -> str:
    """A Graphviz digraph of the coupling table."""
    edges = edges_of(t)
    nodes = nodes_of(edges)
    shape = {
        "loop": 'shape=box, style="rounded,filled", fillcolor="#dbeafe"',
        "state": "shape=box",
        "input": 'shape=parallelogram, style=filled, fillcolor="#f3f4f6"',
    }
    style = {"actuates": "bold", "senses": "dashed", "reads": "dotted", "drives": "solid"}
    lines = [f"digraph {_q(name)} {{", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    for n, kind in nodes:
        lines.append(f"  {_q(n)} [{shape.get(kind, 'shape=box')}];")
    for a, _, rel, b, _ in edges:
        lines.append(f"  {_q(a)} -> {_q(b)} [label={_q(rel)}, style={style.get(rel, 'solid')}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
