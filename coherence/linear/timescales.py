"""The structural part of the linear report: what needs the loops' structure, no numbers.

:func:`timescales` finds the loops that share a state and run at comparable speeds
(COH312: one finding per group of loops that chase each other); :func:`topology_tables`
writes the control-loop topology (:class:`coherence.ir.topology.Topology`) as the
Topology and Cycles of influence tables. Both run whether or not an operating point exists.
"""

from __future__ import annotations

from typing import Any

from coherence.ir.nodes import TransitionSystem
from coherence.ir.topology import Structure, Topology
from coherence.linear import findings
from coherence.linear.options import LinearOptions
from coherence.results import Cell, Finding, Table


def timescales(
    ts: TransitionSystem, st: Structure, o: LinearOptions
) -> tuple[list[dict[str, Any]], list[Finding]]:
    """Every pair of loops where one actuates a state the other actuates or sees, with its
    period ratio (the rows of ``data["timescales"]``), and the COH312 findings for the pairs
    below ``o.timescale_ratio``."""
    order = {x: i for i, x in enumerate(st.loop_names)}
    writers: dict[str, set[str]] = {}
    seers: dict[str, set[str]] = {}
    for lp in st.loop_names:
        for s in st.writes[lp]:
            writers.setdefault(s, set()).add(lp)
        for s in st.sees[lp]:
            seers.setdefault(s, set()).add(lp)
    cand: set[tuple[str, str]] = set()
    for state, ws in writers.items():
        for w in ws:
            for other in ws | seers.get(state, set()):
                if w != other:
                    cand.add((w, other) if order[w] < order[other] else (other, w))
    rows: list[dict[str, Any]] = []
    flagged: list[findings.TimescalePair] = []
    for an, bn in sorted(cand, key=lambda p: (order[p[0]], order[p[1]])):
        la, lb = ts.loop(an), ts.loop(bn)
        shared = st.shares_state(an, bn)
        ratio = max(la.period, lb.period) / min(la.period, lb.period)
        both = set(st.writes[an]) & set(st.writes[bn])
        two_way = bool(set(st.writes[an]) & st.sees[bn]) and bool(set(st.writes[bn]) & st.sees[an])
        one_way = not both and not two_way
        rows.append({"loops": [an, bn], "shared": list(shared), "ratio": ratio, "one_way": one_way})
        # loops chase each other when both act on a state or each moves what the other
        # sees; a one-way pair (one loop's moves are the other's disturbance) only warns
        # when asked to (LinearOptions.timescale_one_way)
        if ratio < o.timescale_ratio and (not one_way or o.timescale_one_way):
            how = (
                "both actuate" if both else ("share" if two_way else "are coupled one way through")
            )
            text = findings.timescale_pair(
                ts, an, bn, how, sorted(both) or shared, ratio, o.timescale_ratio
            )
            flagged.append((an, bn, text, ratio, list(shared)))
    return rows, _groups(ts, flagged, order)


def _groups(
    ts: TransitionSystem, flagged: list[findings.TimescalePair], order: dict[str, int]
) -> list[Finding]:
    """One COH312 per group of loops that chase each other (the flagged pairs' connected
    components): one cause, one finding; each pair in its notes."""
    group: dict[str, str] = {}

    def root(x: str) -> str:
        while group.get(x, x) != x:
            x = group[x]
        return x

    for an, bn, *_ in flagged:
        group.setdefault(an, an)
        group.setdefault(bn, bn)
        ra, rb = root(an), root(bn)
        if ra != rb:
            group[max(ra, rb, key=order.__getitem__)] = min(ra, rb, key=order.__getitem__)
    components: dict[str, list[findings.TimescalePair]] = {}
    for pair in flagged:
        components.setdefault(root(pair[0]), []).append(pair)
    out: list[Finding] = []
    for pairs in components.values():
        loops = sorted({x for p in pairs for x in p[:2]}, key=order.__getitem__)
        out.append(findings.timescale_overlap(ts, pairs, loops))
    return out


def topology_tables(ts: TransitionSystem, topo: Topology) -> tuple[Table, Table]:
    """The Topology table (what each loop reads, actuates and influences) and the Cycles of
    influence."""
    infl: dict[str, list[str]] = {x: [] for x in topo.loops}
    for e in topo.edges:
        infl[e.source].append(f"{e.target} via {', '.join(e.via)}")
    reads = dict(topo.reads)
    acts = dict(topo.actuates)
    rows: list[tuple[Cell, ...]] = []
    for lp in ts.loops:
        rows.append(
            (
                lp.name,
                lp.period * ts.tick,
                ", ".join(reads[lp.name]),
                ", ".join(acts[lp.name]),
                "; ".join(infl[lp.name]),
            )
        )
    groups = "; ".join("{" + ", ".join(g) + "}" for g in topo.groups) or "none"
    crow: list[tuple[Cell, ...]] = [(" -> ".join((*c, c[0])),) for c in topo.cycles]
    return (
        Table(
            "Topology",
            ("loop", "every [s]", "reads", "actuates", "influences"),
            tuple(rows),
            f"coupling groups (loops that influence each other): {groups}",
        ),
        Table(
            "Cycles of influence",
            ("cycle",),
            tuple(crow),
            "truncated: more cycles than listed" if topo.cycles_truncated else "",
        ),
    )
