"""The engine against hostile and odd input (issue 30): stated limits (COH905) instead of
hangs and memory blow-ups, no cycle taken for an operating point, no internal error from a
constant the solver cannot take, and a command line that never loses its diagnostics."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from coherence.cli import main
from coherence.compile import compile_path, compile_text
from coherence.pipeline import CheckOptions, analyse_system, analyses_for
from coherence.results import Status, SystemReport

DATA = Path(__file__).parent / "data" / "repro"


def _check(ts: object, **kw: object) -> SystemReport:
    return analyse_system(ts, analyses_for(CheckOptions(**kw)))  # type: ignore[arg-type]


def _stable(report: SystemReport) -> tuple[Status, str]:
    v = next(v for v in report.verdicts if v.kind == "stable")
    return v.status, v.reason


CYCLE_6 = (
    (DATA / "stable_proved_on_2cycle.coh")
    .read_text(encoding="utf-8")
    .replace(
        "  require stable",
        "  loop third {\n    every 3s\n    senses util as u3\n    actuates dummy to 0\n  }\n"
        "  require stable",
    )
)


@pytest.mark.parametrize(
    ("name", "text", "period"),
    [
        ("stable_proved_on_2cycle.coh", None, 2),
        ("stable_falsified_without_second_loop.coh", None, 1),
        ("hyperperiod 6", CYCLE_6, 6),
    ],
)
def test_a_two_cycle_sampled_once_per_hyperperiod_is_no_operating_point(
    name: str, text: str | None, period: int
) -> None:
    # replicas alternates 1 <-> 14.9 every tick; with loops every 2 s and 3 s the hyperperiod
    # is 6 ticks and the cycle returns once per hyperperiod. The equilibrium it swings around
    # is 50 / (12 * 0.7) replicas, where the scaler's per-tick multiplier is 1 - 4 * 0.7 =
    # -1.8, so the lifted radius is 1.8^H (H the hyperperiod).
    ts = (compile_text(name, text) if text else compile_path(DATA / name)).systems[0]
    status, reason = _stable(_check(ts, smt=False))
    assert status is Status.FALSIFIED
    assert f"spectral radius {1.8**period:.4g}" in reason


def test_a_self_sustained_cycle_without_an_equilibrium_falsifies_stability() -> None:
    # an integer relay stepping by 1 towards 4.5 ends in 4, 5, 4, 5 (no rest point exists);
    # a second loop every 2 s makes that cycle a fixed point of the hyperperiod map
    ts = compile_text(
        "relay.coh",
        """system s {
          tick 1s
          state r : 1 integer in [0, 10] init 0
          state dummy : 1 in [0, 1] init 0
          loop up { actuates r by if r < 4.5 then 1 else -1 }
          loop other { every 2s senses r as q actuates dummy to 0 }
          require stable
        }""",
    ).systems[0]
    report = _check(ts, smt=False)
    status, reason = _stable(report)
    assert status is Status.FALSIFIED
    assert "oscillates" in reason and "between 4 and 5" in reason


def test_a_hyperperiod_beyond_the_limit_is_stated_and_leaves_stability_unknown() -> None:
    ts = compile_text(
        "h.coh",
        """system s {
          tick 1s
          state x : 1 in [0, 10] init 1
          state y : 1 in [0, 10] init 1
          loop a { every 99991s senses x actuates x by 0.1 * (5 - x) }
          loop b { every 99989s senses y actuates y by 0.1 * (5 - y) }
          require stable
        }""",
    ).systems[0]
    report = _check(ts)
    status, reason = _stable(report)
    assert status is Status.UNKNOWN
    assert "limit of 10,000 ticks" in reason
    assert {f.code for f in report.findings} == {"COH905"}


def _loops(n: int) -> str:
    body = "".join(
        f"  loop l{i} {{ every 1s senses x actuates x by 0.0001 * ({i} - x) + 0.001 * u "
        f"objective keep x <= {i % 9 + 1} }}\n"
        for i in range(n)
    )
    return (
        "system s {\n  tick 1s\n  input u : 1 in [0, 1] nominal 0.5\n"
        f"  state x : 1 in [0, 10] init 1\n{body}  require coherent\n}}\n"
    )


def test_a_conflict_analysis_beyond_its_loop_limit_is_unknown_not_a_hang() -> None:
    ts = compile_text("loops.coh", _loops(20)).systems[0]
    report = _check(ts, linear=False, simulate=False)
    v = next(v for v in report.verdicts if v.kind == "coherent")
    assert v.status is Status.UNKNOWN
    assert "at most 12 loops" in v.reason and "380 ordered pairs" in v.reason
    assert "COH905" in {f.code for f in report.findings}


def test_pairs_beyond_the_proof_limit_are_not_found_with_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import coherence.formal.conflicts as conflicts
    from coherence.smt.options import SmtOptions
    from coherence.smt.solver import SolverStats

    ts = compile_text("loops.coh", _loops(4)).systems[0]
    monkeypatch.setattr(conflicts, "MAX_PROVED_PAIRS", 2)
    pairs = conflicts.check_all(ts, SmtOptions(rlimit=100_000), SolverStats())
    limited = [p for p in pairs if "at most 2 coupled pairs" in p.reason]
    assert limited and all(p.verdict == conflicts.NOT_FOUND for p in limited)


def test_the_twelve_loop_reproducer_runs_without_a_conflict_search_blowup() -> None:
    ts = compile_path(DATA / "conflicts_blowup_12_loops.coh").systems[0]
    status, _ = _stable(_check(ts, smt=False))
    assert status is Status.HOLDS  # twelve loops of gain 1e-4 each towards 5: 1 - 12e-4


def test_a_nominal_run_beyond_the_tick_limit_is_shortened_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import coherence.simulate.nominal as nominal

    monkeypatch.setattr(nominal, "MAX_RUN_TICKS", 500)
    # the reproducer's 2^31-tick window is the front end's error now; its limit, 10^6, is not
    text = (DATA / "flapping_within_2p31_ticks_coh903.coh").read_text(encoding="utf-8")
    text = text.replace("within 2147483648 ticks", "within 1000000 ticks")
    system = compile_text("flap.coh", text).systems[0]
    r = nominal.nominal_analysis(system, 10**9)
    assert dict(r.data)["ticks"] == 500
    (f,) = [f for f in r.findings if f.code == "COH905"]
    assert "500 ticks, not 1,000,000,000" in f.message


def test_a_constant_the_solver_cannot_take_is_unknown_not_an_internal_error() -> None:
    from coherence.formal.analyze import analyze

    ts = compile_text(
        "a.coh",
        "system s { tick 1s input u in [0, 1] nominal 0 state x in [0, 10] init 0 "
        "param g = 2 next x = min(x + u, g) require always x <= 9 for 5 ticks }",
    ).systems[0]
    # the front end rejects non-finite numbers; the engine must not crash on one regardless
    ts = replace(ts, params=tuple(replace(p, value=float("inf")) for p in ts.params))
    r = analyze(ts)
    (v,) = r.verdicts
    assert v.status is Status.UNKNOWN and "not finite" in v.reason


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out, err)
    return code, out.getvalue(), err.getvalue()


def test_simulate_beyond_the_run_limit_is_a_clear_error() -> None:
    code, _, err = _run(
        ["simulate", str(DATA / "stable_falsified_without_second_loop.coh"), "--ticks", "10**9"]
    )
    assert code == 2  # not a whole number
    code, _, err = _run(
        ["simulate", str(DATA / "stable_falsified_without_second_loop.coh"), "--ticks",
         "1000000000"]
    )  # fmt: skip
    assert code == 2
    assert "beyond the limit of 125,000,000 values" in err and "internal" not in err


@pytest.mark.parametrize("columns", ["abc", "", "0", "-5", "99999999999"])
def test_an_invalid_columns_never_loses_the_diagnostics(
    columns: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = tmp_path / "bad.coh"
    spec.write_text("system s {\n  tick 1s\n  state x in [0, 1] init 2\n}\n", encoding="utf-8")
    monkeypatch.setenv("COLUMNS", columns)
    code, out, err = _run(["lint", str(spec)])
    assert code == 1
    assert "bad.coh:3:" in out + err


def test_every_output_option_creates_missing_directories(tmp_path: Path) -> None:
    spec = str(DATA / "stable_falsified_without_second_loop.coh")
    csv = tmp_path / "a" / "b" / "run.csv"
    code, _, err = _run(["simulate", spec, "--ticks", "5", "--csv", str(csv)])
    assert code in (0, 1), err
    assert csv.read_text(encoding="utf-8").startswith("scenario,tick")
    js = tmp_path / "c" / "run.json"
    _run(["simulate", spec, "--ticks", "5", "--json", str(js)])
    assert js.exists()


def test_a_hyperperiod_beyond_the_limit_is_stated_with_worker_processes(tmp_path: Path) -> None:
    # the parallel path runs each analysis as its own piece: each must state the limit
    # (it once lifted the astronomical hyperperiod in the linear analysis and hung)
    from coherence.pipeline import check_paths

    spec = tmp_path / "h.coh"
    spec.write_text(
        """system s {
          tick 1s
          state x : 1 in [0, 10] init 1
          state y : 1 in [0, 10] init 1
          loop a { every 99991s senses x actuates x by 0.1 * (5 - x) }
          loop b { every 99989s senses y actuates y by 0.1 * (5 - y) }
          require stable
        }"""
    )
    report = check_paths([str(spec)], CheckOptions(jobs=2, cache=None))
    (system,) = report.files[0].systems
    assert {f.code for f in system.findings} == {"COH905"}
    assert all(v.status is Status.UNKNOWN for v in system.verdicts)
