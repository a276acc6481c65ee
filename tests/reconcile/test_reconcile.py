"""The analyses never contradict each other: a local linear certificate holds locally, and a
replayed oscillation or flapping run falsifies `require stable` (coherence.reconcile)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from coherence.compile import compile_text
from coherence.diagnostics import Severity
from coherence.linear import analyze
from coherence.pipeline import CheckOptions, analyse_system, analyses_for, check_paths
from coherence.reconcile import reconcile
from coherence.results import AnalysisResult, Finding, Status, SystemReport, Verdict
from coherence.source import Span

DATA = Path(__file__).parent / "data"


def _system(name: str, smt: bool = True) -> SystemReport:
    report = check_paths([str(DATA / name)], CheckOptions(smt=smt))
    (system,) = report.files[0].systems
    return system


def _verdict(system: SystemReport, kind: str) -> Verdict:
    return next(v for v in system.verdicts if v.kind == kind)


@pytest.mark.parametrize("a", [0.5, -0.9, 0.25])
def test_scalar_contraction_holds_locally_with_radius_abs_a(a: float) -> None:
    # x' = a x: the operating point is 0 and the spectral radius is |a| (closed form)
    ts = compile_text(
        "a.coh",
        f"system s {{ tick 1s state x in [-10, 10] init 1 next x = {a} * x require stable }}",
    ).systems[0]
    (v,) = analyze(ts).verdicts
    assert v.status is Status.HOLDS
    assert v.reason.startswith(f"holds locally: spectral radius {abs(a):.4g} ")


def test_flapping_hpa_is_not_proved_stable() -> None:
    # inside its 10% tolerance band the HPA holds (spectral radius 0); outside it flaps
    system = _system("hpa_tolerance_flaps.coh")
    assert _verdict(system, "flapping").status is Status.FALSIFIED
    stable = _verdict(system, "stable")
    assert stable.status is Status.FALSIFIED
    assert "flaps" in stable.reason and "COH503" in stable.codes
    # one cause, one finding: the nominal run's flapping is a note on COH503, not a second one
    codes = [f.code for f in system.findings]
    assert codes.count("COH503") == 1 and "COH313" not in codes
    (flap,) = [f for f in system.findings if f.code == "COH503"]
    assert any(n.startswith("the nominal run flaps too") for n in flap.notes)


def test_flapping_help_names_what_the_loop_lacks() -> None:
    system = _system("hpa_tolerance_flaps.coh")
    (flap,) = [f for f in system.findings if f.code == "COH503"]
    assert "stabilize down 300s" in flap.help  # it has no window: the requirement's 5 min
    assert "already has" in flap.help  # its tolerance band
    assert "30s delay" in flap.help


def test_flapping_help_does_not_suggest_a_window_the_loop_has() -> None:
    ts = compile_text(
        "a.coh",
        """system s { tick 15s
          state r in [1, 40] init 10  state y in [0, 100] init 50  next y = 2 * r
          loop hpa { senses y actuates r to r * y / 20 stabilize down 300s cooldown 60s }
          require no flapping of r max 2 within 5min }""",
    ).systems[0]
    from coherence.formal.findings import flapping_help

    text = flapping_help(ts, "r", 20)
    assert "already has `stabilize down 300s`" in text
    assert "lengthen its cooldown (now 60s)" in text
    assert "add a stabilization window" not in text


def test_windowed_hpa_holds_locally_and_flapping_is_proved() -> None:
    system = _system("hpa_window_holds.coh")
    assert _verdict(system, "flapping").status is Status.PROVED
    stable = _verdict(system, "stable")
    assert stable.status is Status.HOLDS and stable.reason.startswith("holds locally")


def test_seed_holds_locally_beside_its_bad_equilibrium() -> None:
    system = _system("tipping_point.coh")
    assert _verdict(system, "no_bad_equilibrium").status is Status.FALSIFIED
    stable = _verdict(system, "stable")
    assert stable.status is Status.HOLDS
    assert stable.reason.startswith(
        "holds locally (the system also has a bad equilibrium: see COH504)"
    )


@pytest.mark.parametrize("name", ["stable_on_2cycle.coh", "stable_without_second_loop.coh"])
def test_a_two_cycle_is_not_an_operating_point(name: str) -> None:
    # replicas alternates 1 <-> 14.9 every tick; a second loop every 2 s must not hide it
    system = _system(name, smt=False)
    stable = _verdict(system, "stable")
    assert stable.status is Status.FALSIFIED
    # the equilibrium the cycle swings around: 50 / (12 * 0.7) replicas, where the scaler's
    # multiplier is 1 - 4 * 0.7 = -1.8 per tick
    rho = 1.8 ** (2 if name == "stable_on_2cycle.coh" else 1)
    assert f"spectral radius {rho:.4g}" in stable.reason
    assert "COH306" not in {f.code for f in system.findings}  # the cycle is no 2nd equilibrium


def test_nominal_oscillation_falsifies_stability() -> None:
    # an integer actuator stepping by whole units towards 4.5: the nominal run ends in the
    # relay cycle 4, 5, 4, 5 (no rest point exists); the replayed run decides the verdict
    ts = compile_text(
        "relay.coh",
        """system s { tick 1s
          state r : 1 integer in [0, 10] init 0
          loop up { actuates r by if r < 4.5 then 1 else -1 }
          require stable }""",
    ).systems[0]
    system = analyse_system(ts, analyses_for(CheckOptions(smt=False)))
    stable = _verdict(system, "stable")
    assert stable.status is Status.FALSIFIED
    assert "COH313" in stable.codes and "nominal run oscillates" in stable.reason
    (osc,) = [f for f in system.findings if f.code == "COH313"]
    assert "repeats every 2 ticks" in osc.message
    assert osc.trace is not None and osc.trace.replayed


# ---- the reconciliation alone, on reports put together by hand --------------------------------

SPAN = Span("a.coh", 1, 1, 1, 2)


def _report(*analyses: AnalysisResult) -> SystemReport:
    return SystemReport("s", "a.coh", SPAN, analyses)


def test_corner_instability_with_flapping_proved_is_explained_not_failed() -> None:
    linear = AnalysisResult(
        "linear",
        (
            Finding("COH301", "the coupled system is unstable: spectral radius 1.2", SPAN),
            Finding("COH307", "the operating point of loop `hpa` sits on a deadband", SPAN),
        ),
        (
            Verdict(
                "require stable",
                "stable",
                Status.FALSIFIED,
                SPAN,
                "linear",
                reason="local, linear: spectral radius 1.2 > 1 at the operating point",
                codes=("COH301", "COH307"),
            ),
        ),
    )
    smt = AnalysisResult(
        "smt",
        (),
        (Verdict("no flapping of r max 2 within 5 min", "flapping", Status.PROVED, SPAN, "smt"),),
    )
    out = reconcile(_report(linear, smt))
    (f301,) = [f for f in out.findings if f.code == "COH301"]
    assert f301.level is Severity.WARNING
    assert any("switching surface" in n and "proved for all time" in n for n in f301.notes)
    stable = next(v for v in out.verdicts if v.kind == "stable")
    assert stable.status is Status.UNKNOWN and "switching surface" in stable.reason
    # without the proof, the instability stands
    unproved = replace(smt, verdicts=(replace(smt.verdicts[0], status=Status.HOLDS),))
    kept = reconcile(_report(linear, unproved))
    assert kept == _report(linear, unproved)


def test_reconcile_leaves_reports_without_stability_alone() -> None:
    smt = AnalysisResult(
        "smt", (), (Verdict("no flapping", "flapping", Status.FALSIFIED, SPAN, "smt"),)
    )
    assert reconcile(_report(smt)) == _report(smt)


def test_nominal_flapping_is_a_note_on_coh503_without_require_stable() -> None:
    flap = Finding("COH503", "`r` flaps: more than 2 reversals within 300s", SPAN)
    osc = Finding(
        "COH313",
        "the nominal run does not settle: `r` swings between 2 and 40; local",
        SPAN,
        data=(("states", ((("state", "r"), ("low", 2.0), ("high", 40.0)),)),),
    )
    out = reconcile(_report(AnalysisResult("linear", (osc,)), AnalysisResult("smt", (flap,))))
    assert [f.code for f in out.findings] == ["COH503"]
    assert out.findings[0].notes == ("the nominal run flaps too: `r` swings between 2 and 40",)
