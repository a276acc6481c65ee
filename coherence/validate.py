"""Validation of a spec against measured plant parameters (runtime drift of the plant).

For every parameter bound to a calibration profile: the value the spec assumes, the value
measured, and the relative error. Then every analysis runs twice, once on the spec as written
and once with the measured values substituted, and the verdicts, coherence and findings of the
two runs are compared: which verdicts change is what a team needs to know before trusting the
spec's conclusions on this hardware.
"""

from __future__ import annotations

from dataclasses import dataclass

from coherence.ir.nodes import Binding, TransitionSystem
from coherence.ir.transform import with_params
from coherence.pipeline import CheckOptions, analyse_system, analyses_for
from coherence.results import SystemReport, Table


@dataclass(frozen=True, slots=True)
class Change:
    what: str  # "verdict" | "finding" | "coherence"
    subject: str
    assumed: str
    measured: str


@dataclass(frozen=True, slots=True)
class Validation:
    system: str
    bindings: tuple[Binding, ...]
    assumed: SystemReport
    measured: SystemReport
    changes: tuple[Change, ...]

    def bindings_table(self) -> Table:
        rows = []
        for b in self.bindings:
            rel = (b.measured - b.assumed) / abs(b.assumed) if b.assumed else float("inf")
            rows.append(
                (
                    b.param,
                    b.source,
                    b.assumed / b.scale,
                    b.measured / b.scale,
                    b.unit,
                    f"{rel:+.1%}",
                )
            )
        return Table(
            f"{self.system}: bound parameters",
            ("parameter", "measured by", "assumed", "measured", "unit", "relative error"),
            tuple(rows),
        )

    def changes_table(self) -> Table:
        rows = tuple((c.what, c.subject, c.assumed, c.measured) for c in self.changes)
        note = "" if rows else "no verdict, finding or coherence changes with the measured values"
        return Table(
            f"{self.system}: what changes with the measured values",
            ("what", "subject", "as assumed", "as measured"),
            rows,
            note,
        )


def _verdicts(r: SystemReport) -> dict[str, str]:
    return {f"{v.requirement} [{v.analysis}]": v.status.value for v in r.verdicts}


def _findings(r: SystemReport) -> dict[str, str]:
    return {f"{f.code} {f.key or f.message}": str(f.level) for f in r.findings}


def validate_system(ts: TransitionSystem, options: CheckOptions | None = None) -> Validation:
    """Analyse ``ts`` as written and with its bound parameters at their measured values."""
    chosen = analyses_for(options or CheckOptions())
    measured_ts = with_params(ts, {b.param: b.measured for b in ts.bindings})
    a = analyse_system(ts, chosen)
    m = analyse_system(measured_ts, chosen)
    changes: list[Change] = []
    va, vm = _verdicts(a), _verdicts(m)
    for key in sorted(set(va) | set(vm)):
        if va.get(key) != vm.get(key):
            changes.append(Change("verdict", key, va.get(key, "-"), vm.get(key, "-")))
    fa, fm = _findings(a), _findings(m)
    for key in sorted(set(fa) | set(fm)):
        if (key in fa) != (key in fm):
            changes.append(Change("finding", key, fa.get(key, "absent"), fm.get(key, "absent")))
    if a.coherence != m.coherence:
        changes.append(Change("coherence", ts.name, a.coherence.value, m.coherence.value))
    return Validation(ts.name, ts.bindings, a, m, tuple(changes))
