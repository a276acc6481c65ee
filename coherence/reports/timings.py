"""``coherence check --timings``: what each piece of the run cost, slowest first.

A check runs, per system, the nominal simulation, the linear analysis and the pieces of the
formal analysis (:func:`coherence.formal.analyze.parts`: each bounded requirement, the conflict
search, the equilibria); with ``-j`` they run in worker processes, so the run's wall time is
bounded below by its slowest piece. The table lists every piece with its wall time in the
process that ran it, its solver calls, how many ended ``unknown`` and the rlimit they spent:
a piece whose calls end unknown after spending the whole limit is the one a larger
``--rlimit`` may decide and a smaller one makes cheaper. It is written to standard error:
no report format carries timings, so a report's bytes do not depend on the machine.
A system read from the results cache (:mod:`coherence.cache`) was not analysed by the run:
it has no rows, and the note counts it.
"""

from __future__ import annotations

from coherence.results import PieceTime, RunReport, Table


def piece_rows(report: RunReport) -> list[tuple[str, PieceTime]]:
    """(spec, piece) for every piece of every analysis, slowest first (ties in report
    order); the spec is its path, with the system's name where the file holds several.
    An analysis that is not split into pieces is one (the linear analysis, the nominal
    simulation); one that took no time of its own is left out (the topology, read off the
    others), and so is a system read from the results cache (its times are an earlier run's)."""
    out: list[tuple[str, PieceTime]] = []
    for f in report.files:
        for s in f.systems:
            if s.cached:
                continue
            where = f.path if len(f.systems) == 1 else f"{f.path} ({s.name})"
            for a in s.analyses:
                if a.pieces:
                    out += [(where, p) for p in a.pieces]
                elif a.seconds > 0.0:
                    status = ", ".join(v.status.value for v in a.verdicts)
                    out.append((where, PieceTime(a.analysis, a.seconds, result=status)))
    order = sorted(range(len(out)), key=lambda i: (-out[i][1].seconds, i))
    return [out[i] for i in order]


def timings_table(report: RunReport, wall: float, jobs: int) -> Table:
    """The pieces of ``report`` by wall time, with a note that sums them up against the
    run's ``wall`` time with ``jobs`` workers."""
    rows = piece_rows(report)
    total = sum(p.seconds for _, p in rows)
    starved = [p for _, p in rows if p.unknown and p.unknown == p.calls]
    cells = tuple(
        (
            spec,
            p.piece,
            f"{p.seconds:.2f}",
            str(p.calls) if p.calls else "-",
            str(p.unknown) if p.calls else "-",
            f"{p.rlimit:,}" if p.calls else "-",
            p.result or "-",
        )
        for spec, p in rows
    )
    workers = f"{jobs} worker process{'es' if jobs != 1 else ''}" if jobs > 1 else "one process"
    pieces = f"{len(rows)} piece{'s' if len(rows) != 1 else ''}"
    note = f"{pieces}, {total:.2f} s in all; the run took {wall:.2f} s of wall time in {workers}"
    formal = any(a.pieces for f in report.files for s in f.systems for a in s.analyses)
    if jobs > 1 and formal:
        note += (
            " (what several pieces of a system share, its reachable enclosure and nominal run,"
            " is computed before them and is in no row)"
        )
    cached = [s for f in report.files for s in f.systems if s.cached]
    if cached:
        one = len(cached) == 1
        note += (
            f". {len(cached)} system{'' if one else 's'} came from the results cache and "
            f"{'is' if one else 'are'} in no row (--no-cache analyses {'it' if one else 'them'} "
            "again)"
        )
    if starved:
        spent = sum(p.seconds for p in starved)
        note += (
            f". {len(starved)} piece{'s' if len(starved) != 1 else ''} ({spent:.2f} s) ended "
            "every solver call unknown: --rlimit trades their time against what they decide"
        )
    columns = ("spec", "piece", "wall s", "calls", "unknown", "rlimit", "result")
    return Table("Timings", columns, cells, note)
