"""A synthetic run that uses every part of the result model.

The analyses being written (linear, smt) will fill verdicts, tables, data and traces; the
renderers must handle them generically. This run exercises all of it with invented values,
so that the golden files and schema checks cover what real specs cannot produce yet.
"""

from __future__ import annotations

import math

import numpy as np

from coherence.results import (
    AnalysisResult,
    FileReport,
    Finding,
    RunReport,
    Status,
    SystemReport,
    Table,
    TraceStep,
    TraceView,
    Verdict,
)
from coherence.source import SourceFile, Span
from coherence.suppress import Suppressed, Triaged

PATH = "tests/ci/data/overload.coh"


def span(line: int, col: int, end: int) -> Span:
    return Span(PATH, line, col, line, end)


def trace() -> TraceView:
    steps = (
        TraceStep(0, 0.0, (120.0, 8.0, 0.0), ("autoscaler saw latency=0.2 s; held",)),
        TraceStep(1, 1.0, (150.0, 8.0, 70.0), (), significant=True),
        TraceStep(2, 2.0, (150.0, 8.0, math.inf), (), violated=True),
    )
    return TraceView(
        "counterexample (BMC, depth 3)",
        ("demand [req/s]", "replicas [1]", "queue [req]"),
        steps,
        violation_tick=2,
        replayed=True,
        inputs_note="inputs chosen by the solver",
    )


def findings() -> tuple[Finding, ...]:
    return (
        Finding(
            "COH501",
            "`require always latency <= 60 s for 120 ticks` is violated at t=2s",
            span(28, 3, 47),
            notes=("the queue grows while the autoscaler waits for its delayed sensor",),
            help="shorten the sensor delay or scale on queue length",
            related=(span(20, 3, 20), span(23, 5, 56)),
            trace=trace(),
            data=(("depth", 3), ("witness", {"demand": 150.0})),
            key="always:latency",
        ),
        Finding(
            "COH901",
            "the solver could not decide `require stable` (resource limit)",
            span(27, 3, 17),
            key="unknown:stable",
        ),
        Finding(
            "COH303",
            "the coupled system is marginally stable (spectral radius 0.9999)",
            span(20, 3, 20),
            key="marginal",
        ),
    )


def report() -> RunReport:
    fs = findings()
    table = Table(
        "Margins",
        ("loop", "gain margin", "delay margin [s]", "limiting", "note"),
        (
            ("autoscaler", 1.8, 12, True, None),
            ("router", math.nan, math.inf, False, "no operating point"),
        ),
        note="margins by bisection on the lifted system",
    )
    data = (
        ("spectral_radius", 0.9999),
        ("eigenvalues", [complex(0.5, 0.5), complex(0.5, -0.5), 0.25]),
        ("margins", {"autoscaler": {"gain": 1.8, "delay_s": 12}}),
        ("participation", np.array([0.63, 0.37])),
        ("open_loop_radius", math.inf),
        ("stable", np.bool_(True)),
    )
    analyses = (
        AnalysisResult("simulate", (), (), (), (("ticks", 120),)),
        AnalysisResult(
            "linear",
            (fs[2],),
            (Verdict("require stable", "stable", Status.PROVED, span(27, 3, 17), "linear"),),
            (table,),
            data,
        ),
        AnalysisResult(
            "smt",
            (fs[0], fs[1]),
            (
                Verdict(
                    "require always latency <= 60 s for 120 ticks",
                    "always",
                    Status.FALSIFIED,
                    span(28, 3, 47),
                    "smt",
                    depth=3,
                    codes=("COH501",),
                ),
                Verdict(
                    "require stable",
                    "stable",
                    Status.UNKNOWN,
                    span(27, 3, 17),
                    "smt",
                    reason="resource limit",
                    codes=("COH901",),
                ),
                Verdict(
                    "require no bad equilibrium",
                    "no_bad_equilibrium",
                    Status.HOLDS,
                    span(27, 3, 17),
                    "smt",
                    depth=20,
                ),
                Verdict(
                    "require coherent",
                    "coherent",
                    Status.SKIPPED,
                    span(27, 3, 17),
                    "smt",
                    reason="no objectives to compare",
                ),
            ),
        ),
    )
    system = SystemReport("overload", PATH, span(5, 1, 2), analyses, ("autoscaler",))
    from coherence.compile import read_source

    src = read_source(PATH)
    text = src.text if isinstance(src, SourceFile) else ""
    return RunReport((FileReport(PATH, (), (system,), text),), "0.0.0-test")


def triaged() -> Triaged:
    suppressed = Suppressed(
        Finding("COH505", "`queue` is clamped at its upper bound", span(14, 3, 45), key="clip"),
        "inSource",
        "the bound models admission control",
        span(13, 3, 40),
        "overload",
    )
    baselined = Suppressed(
        Finding("COH312", "loops sharing `replicas` run at comparable speeds", span(20, 3, 20)),
        "external",
        "in baseline coherence-baseline.json",
        None,
        "overload",
    )
    return Triaged(report(), (suppressed, baselined), deselected=2)
