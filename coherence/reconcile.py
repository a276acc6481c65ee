"""Reconciliation: the analyses of one system never contradict each other.

Each analysis reads the same transition system but sees a different part of its behaviour: the
linear analysis the neighbourhood of the operating point, the formal analysis every run up to
a depth (or for all time), the simulator the nominal run. This stage reads their results
together and settles what only the combination can: a pure function from a
:class:`~coherence.results.SystemReport` to one in which

1. ``require stable`` is FALSIFIED where a replayed run shows the system oscillating: a
   flapping requirement falsified with a replayed trace (COH503), or a nominal run that never
   settles (COH313). The linear certificate is local, the replayed run is not; the verdict
   names the evidence and carries its code (the finding is not repeated).
2. a ``stable`` verdict that holds locally says so when the system also has a bad
   equilibrium (COH504): both points can be locally stable; the verdict stays HOLDS.
3. a linear instability (COH301) computed at an operating point on a switching surface
   (COH307), in a system whose every flapping requirement is PROVED for all time, is a
   warning, not an error, with a note saying why the two differ, and ``require stable``
   is UNKNOWN rather than FALSIFIED. Why: at a switching surface the Jacobian is the slope of
   whichever branch the point happens to sit on; the growth it predicts is a claim about a
   smooth system the spec does not describe, and no run shows it, while the proof says the
   actuators do not keep reversing. Neither settles stability, so the verdict is undecided
   (and `unknown` never counts as a pass), and the finding stays, as a warning that explains
   itself, so the operator still sees the branch that would grow.

Nothing is computed here but verdicts and findings rewritten from what the report holds.

>>> from coherence.results import SystemReport
>>> from coherence.source import Span
>>> empty = SystemReport("s", "a.coh", Span("a.coh", 1, 1, 1, 1), ())
>>> reconcile(empty) == empty
True
"""

from __future__ import annotations

from dataclasses import replace

from coherence.diagnostics import Severity
from coherence.ir.deps import states_of
from coherence.ir.nodes import TransitionSystem, names_in
from coherence.results import AnalysisResult, Finding, Status, SystemReport, Verdict


def reconcile(report: SystemReport, ts: TransitionSystem | None = None) -> SystemReport:
    """``report`` with its verdicts and findings made consistent with each other (and, given
    the system it reports on, one overload reported once: :func:`root_causes`)."""
    if ts is not None:
        report = root_causes(report, ts)
    verdicts = report.verdicts
    findings = report.findings
    merged = _merged(findings)
    if merged is None and not any(v.kind == "stable" for v in verdicts):
        return report
    flaps = [v for v in verdicts if v.kind == "flapping"]
    evidence = _oscillation_evidence(flaps, findings)
    bad = _bad_equilibrium(verdicts, findings)
    smooth_out = _corner_instability(flaps, findings)
    analyses: list[AnalysisResult] = []
    for a in report.analyses:
        vs = tuple(_stable(v, evidence, bad, smooth_out) for v in a.verdicts)
        fs = a.findings
        if smooth_out is not None:
            fs = tuple(_explained(f, smooth_out) for f in fs)
        if merged is not None:
            fs = tuple(_noted(f, merged) for f in fs if f.code != "COH313")
            vs = tuple(replace(v, codes=_swap(v.codes)) for v in vs)
        if vs != a.verdicts or fs != a.findings:
            a = replace(a, verdicts=vs, findings=fs)
        analyses.append(a)
    return replace(report, analyses=tuple(analyses))


# ---- one overload, one finding ----------------------------------------------------------------


def root_causes(report: SystemReport, ts: TransitionSystem) -> SystemReport:
    """A keep objective that the nominal run violates (COH506) and a bounded requirement
    that a run violates (COH501) are one overload when they are about the same states (the
    plant and actuator states their expressions read, lets followed; one set within the
    other): the requirement's finding is the root cause, and the objective's is attached to
    it as a note and in its data (``includes``), not repeated beside it."""
    findings = report.findings
    always = [f for f in findings if f.code == "COH501"]
    nominal = [f for f in findings if f.code == "COH506" and f.key.startswith("objective:")]
    if not always or not nominal:
        return report
    about: dict[str, frozenset[str]] = {}
    for f in always:
        req = next((r for r in ts.requirements if r.span == f.span and r.cond is not None), None)
        if req is not None and req.cond is not None:
            about[f.key] = states_of(ts, names_in(req.cond))
    folded: dict[str, list[Finding]] = {}  # COH501 key -> the COH506 findings it absorbs
    for f in nominal:
        try:
            o = ts.objective(f.key.removeprefix("objective:"))
        except KeyError:
            continue
        mine = states_of(ts, names_in(o.expr))
        for key, theirs in sorted(about.items()):
            if mine and mine == theirs:
                folded.setdefault(key, []).append(f)
                break
    if not folded:
        return report
    gone = {id(f) for fs in folded.values() for f in fs}
    analyses: list[AnalysisResult] = []
    for a in report.analyses:
        fs: list[Finding] = []
        for f in a.findings:
            if id(f) in gone:
                continue
            if f.code == "COH501" and f.key in folded:
                extra = folded[f.key]
                notes = tuple(
                    f"the same overload: {g.message} (COH506, reported here once)" for g in extra
                )
                includes = tuple(f"{g.code} {g.key}" for g in extra)
                f = replace(f, notes=(*f.notes, *notes), data=(*f.data, ("includes", includes)))
            fs.append(f)
        if len(fs) != len(a.findings) or tuple(fs) != a.findings:
            a = replace(a, findings=tuple(fs))
        analyses.append(a)
    return replace(report, analyses=tuple(analyses))


# ---- the evidence ---------------------------------------------------------------------------


def _oscillation_evidence(
    flaps: list[Verdict], findings: tuple[Finding, ...]
) -> tuple[str, str] | None:
    """(code, sentence) of a replayed run in which the system oscillates, if any: a flapping
    trace first (an admissible run the formal analysis found and the simulator replayed),
    then the nominal run."""
    if any(v.status is Status.FALSIFIED for v in flaps):
        for f in findings:
            if f.code == "COH503" and f.trace is not None and f.trace.replayed:
                return "COH503", f"a replayed run flaps (COH503: {f.message})"
    for f in findings:
        if f.code == "COH313":
            return "COH313", f"the nominal run oscillates (COH313: {_first(f.message)})"
    return None


def _merged(findings: tuple[Finding, ...]) -> str | None:
    """Where the nominal run flaps the same actuator that a replayed COH503 trace shows
    flapping, one cause: the note that COH503 takes over from COH313 (which goes)."""
    osc = next((f for f in findings if f.code == "COH313"), None)
    if osc is None:
        return None
    states = dict(osc.data).get("states") or ()
    state = dict(states[0]).get("state") if states else None
    flapping = [f for f in findings if f.code == "COH503" and f.message.startswith(f"`{state}`")]
    if not flapping:
        return None
    return "the nominal run flaps too: " + _first(osc.message).removeprefix(
        "the nominal run does not settle: "
    )


def _noted(f: Finding, note: str) -> Finding:
    return replace(f, notes=(*f.notes, note)) if f.code == "COH503" else f


def _swap(codes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sorted({"COH503" if c == "COH313" else c for c in codes}))


def _bad_equilibrium(verdicts: tuple[Verdict, ...], findings: tuple[Finding, ...]) -> bool:
    return any(f.code == "COH504" for f in findings) or any(
        v.kind == "no_bad_equilibrium" and v.status is Status.FALSIFIED for v in verdicts
    )


def _corner_instability(flaps: list[Verdict], findings: tuple[Finding, ...]) -> str | None:
    """The explanation owed where linear COH301 was computed on a switching surface and no
    flapping is proved for all time; None where that is not the case."""
    codes = {f.code for f in findings}
    if not flaps or not {"COH301", "COH307"} <= codes:
        return None
    if not all(v.status is Status.PROVED for v in flaps):
        return None
    proved = ", ".join(f"`{v.requirement}`" for v in flaps)
    return (
        "the operating point sits on a switching surface (COH307): the linearization there "
        "takes the slope of one side of a deadband, saturation or cooldown, which the system "
        f"does not follow; {proved} is proved for all time, so the growing oscillation this "
        "mode predicts does not happen; the linear test does not decide stability here"
    )


# ---- rewriting ------------------------------------------------------------------------------


def _stable(
    v: Verdict, evidence: tuple[str, str] | None, bad: bool, smooth_out: str | None
) -> Verdict:
    if v.kind != "stable" or v.status in (Status.SKIPPED,):
        return v
    if evidence is not None and v.status is not Status.FALSIFIED:
        code, what = evidence
        local = (
            f"; the linear certificate is local only ({v.reason.split(' (')[0]})"
            if v.reason
            else ""
        )
        return replace(
            v,
            status=Status.FALSIFIED,
            reason=f"falsified: {what}{local}",
            codes=_with(v.codes, code),
        )
    if smooth_out is not None and v.status is Status.FALSIFIED and v.analysis == "linear":
        return replace(
            v,
            status=Status.UNKNOWN,
            reason=f"undecided: {v.reason.removeprefix('local, linear: ')}; but {smooth_out}",
        )
    # a linear `stable` that holds is a local certificate (coherence.linear: never PROVED)
    if bad and v.status is Status.HOLDS and v.analysis == "linear":
        rest = v.reason.removeprefix("holds locally")
        return replace(
            v,
            reason="holds locally (the system also has a bad equilibrium: see COH504)" + rest,
            codes=_with(v.codes, "COH504"),
        )
    return v


def _explained(f: Finding, why: str) -> Finding:
    if f.code != "COH301":
        return f
    return replace(f, severity=Severity.WARNING, notes=(*f.notes, why))


def _with(codes: tuple[str, ...], code: str) -> tuple[str, ...]:
    return tuple(sorted({*codes, code}))


def _first(message: str) -> str:
    """A finding's message up to its first semicolon (the fact, not the commentary)."""
    return message.split(";", 1)[0]
