"""`coherence sweep`: knobs, closed-form boundaries, shipped specs, verified fixes, the CLI.

Everything here runs in this process (``jobs=1``); the Dask paths are in
``test_dask_cluster.py``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest

from coherence.cli import main
from coherence.diagnostics import CoherenceError
from coherence.sweep.dask_engine import Engine
from coherence.sweep.evaluate import CODES, FALSIFIED, HOLDS, Chunk, evaluate
from coherence.sweep.params import knobs_of, parse_vary, with_values
from coherence.sweep.regions import SweepOptions, answer, boundaries, run_sweep

ROOT = Path(__file__).resolve().parents[1]
HPA = ROOT / "specs" / "conflicts" / "hpa_lag_broken.coh"
RETRY = ROOT / "specs" / "conflicts" / "retry_storm_broken.coh"
POWER = ROOT / "specs" / "conflicts" / "power_cap_broken.coh"


def proportional(delay: str) -> str:
    """x[k+1] = x[k] + K (r - x[k-d]): an integrating actuator under proportional control."""
    return f"""system p {{ tick 1s
  param K = 0.5
  param r = 10
  state x in [-1000000, 1000000] init 0
  loop c {{ senses x as xm{delay}  actuates x by K * (r - xm) }}
  require stable }}"""


def sweep(text: str, path: str, *vary: str, budget: int = 40, **kw: object) -> object:
    ts, knobs = knobs_of(text, path)
    spacing = str(kw.pop("spacing", "auto"))
    axes = [parse_vary(v, knobs, ts.tick, spacing) for v in vary]
    return run_sweep(text, path, None, axes, SweepOptions(budget=budget, jobs=1, **kw))  # type: ignore[arg-type]


# ---- closed form ---------------------------------------------------------------------------


@pytest.mark.parametrize(("delay", "critical"), [("", 2.0), (" delay 1s", 1.0)])
def test_the_boundary_of_a_proportional_loop_is_its_critical_gain(
    delay: str, critical: float
) -> None:
    # Without delay x[k+1] = (1 - K) x[k] + K r: one pole at 1 - K, stable iff 0 < K < 2.
    # With one tick of measurement delay the characteristic polynomial is z^2 - z + K; Jury's
    # conditions (Astrom & Wittenmark, Computer-Controlled Systems, 3rd ed., sec. 3.2:
    # P(1) = K > 0, P(-1) = 2 + K > 0, |a0| = K < 1) give 0 < K < 1.
    sw = sweep(proportional(delay), "p.coh", "K=0.2..3", spacing="linear",
               analyses=("linear",))  # fmt: skip
    overall = [b for b in boundaries(sw) if b.requirement is None]  # type: ignore[arg-type]
    assert len(overall) == 1 and len(overall[0].flips) == 1
    lo, hi = overall[0].flips[0]
    assert lo < critical < hi
    # the base grid's step is 2.8 / 19; refinement halves the bracket round after round
    assert hi - lo < 2.8 / 19 / 2**5
    assert overall[0].safe == ((0.2, lo),)


def test_the_linear_verdicts_come_from_one_batched_eigenvalue_problem() -> None:
    chunk = Chunk(proportional(""), "p.coh", None, ("K",), np.array([[0.5], [1.5], [2.5]]))
    v = evaluate(chunk)
    # the pole is 1 - K: |1 - K| is the spectral radius
    assert np.allclose(v.rho, [0.5, 0.5, 1.5])
    assert [CODES[int(c)] for c in v.status[:, 0]] == ["holds", "holds", "falsified"]


def test_results_do_not_depend_on_how_points_are_chunked() -> None:
    text = HPA.read_text()
    points = np.array([[15.0], [60.0], [195.0], [300.0], [450.0]])
    one = [
        evaluate(Chunk(text, str(HPA), None, ("hpa.window",), points[i : i + 1])) for i in range(5)
    ]
    whole = evaluate(Chunk(text, str(HPA), None, ("hpa.window",), points))
    assert np.array_equal(np.concatenate([v.status for v in one]), whole.status)


# ---- knobs ---------------------------------------------------------------------------------


def test_vary_takes_units_and_bare_shaping_names() -> None:
    ts, knobs = knobs_of(HPA.read_text(), str(HPA))
    ax = parse_vary("window=30s..10min", knobs, ts.tick)
    assert (ax.knob.name, ax.lo, ax.hi, ax.log) == ("hpa.window", 30.0, 600.0, True)
    assert parse_vary("hpa.every=15s..1min", knobs, ts.tick).knob.name == "hpa.period"
    # durations snap to whole ticks (15 s here)
    assert ax.value(0.01) % 15 == 0


def test_a_changed_value_is_the_spec_text_edited() -> None:
    text = HPA.read_text()
    _, knobs = knobs_of(text, str(HPA))
    new = with_values(text, knobs, {"hpa.stabilize_down": 180.0, "target": 0.8})
    assert "stabilize down 180s" in new and "param target  = 0.8 " in new
    ts, k2 = knobs_of(new, str(HPA))
    assert k2["hpa.stabilize_down"].current == 180.0 and ts.param("target").value == 0.8


@pytest.mark.parametrize(
    ("vary", "message"),
    [
        ("targt=0.1..0.9", "no param or shaping value `targt`"),
        ("window=10min..30s", "LO must be below HI"),
        ("window=30..", "not a number"),
        ("window=1kW..2kW", "is not a duration"),
        ("target", "write NAME=LO..HI"),
    ],
)
def test_bad_vary_is_a_usage_error(vary: str, message: str) -> None:
    ts, knobs = knobs_of(HPA.read_text(), str(HPA))
    with pytest.raises(CoherenceError, match=message):
        parse_vary(vary, knobs, ts.tick)


# ---- shipped specs ---------------------------------------------------------------------------


def test_the_flapping_autoscaler_needs_a_longer_window() -> None:
    sw = sweep(HPA.read_text(), str(HPA), "window=15s..10min", budget=30)
    (line,) = answer(sw)  # type: ignore[arg-type]
    assert line.startswith("flap-free for window of hpa >= ")
    assert line.endswith("the current 60 s is outside")
    (b,) = [b for b in boundaries(sw) if b.requirement is None]  # type: ignore[arg-type]
    lo, hi = b.flips[0]
    assert 60 < lo < hi <= 600 and hi - lo == 15  # refined down to one tick


def test_the_retry_storm_needs_a_retry_budget() -> None:
    sw = sweep(RETRY.read_text(), str(RETRY), "max_retries=0..2", budget=24,
               spacing="linear")  # fmt: skip
    b = {x.requirement: x for x in boundaries(sw)}  # type: ignore[arg-type]
    assert b[0].safe == ((0.0, 2.0),)  # stable everywhere: both equilibria are stable
    (safe,) = b[1].safe  # no bad equilibrium only below a budget of retries
    assert safe[0] == 0.0 and 0.1 < safe[1] < 1.0
    assert answer(sw)[0].endswith("the current 2 is outside")  # type: ignore[arg-type]


def test_the_power_cap_has_a_maximum_replica_count() -> None:
    sw = sweep(POWER.read_text(), str(POWER), "replicas.max=40..72", budget=5,
               refine=False, spacing="linear", analyses=("simulate",))  # fmt: skip
    by = {tuple(p): s for p, s in zip(sw.points.tolist(), sw.status, strict=True)}  # type: ignore[attr-defined]
    always = 2  # require always sustained <= 1.05 * budget
    assert by[(48.0,)][always] != FALSIFIED and by[(72.0,)][always] == FALSIFIED
    assert not sw.safe_current()  # type: ignore[attr-defined]


# ---- verified fixes ----------------------------------------------------------------------------


def test_a_fix_is_rechecked_and_attached_to_its_finding() -> None:
    from coherence.sweep.fixes import attach, search

    text = HPA.read_text()
    with Engine(jobs=1) as engine:
        fixes, before = search(text, str(HPA), None, engine, only=("hpa.stabilize_down",))
    (fix,) = fixes
    assert fix.rechecked and fix.added and fix.knob == "hpa.stabilize_down"
    assert fix.sentence.startswith("adding `stabilize down ")
    assert fix.sentence.endswith("to loop hpa removes the flapping of replicas (re-checked)")
    assert dict(fix.verdicts)[fix.requirement] in ("proved", "holds")
    report = attach(before, fixes)
    (flap,) = [f for f in report.findings if f.code == "COH503"]
    assert flap.help == fix.sentence and dict(flap.data)["fix"]["to"] == fix.new


# ---- the command -------------------------------------------------------------------------------


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def test_sweep_command_json_and_map(tmp_path: Path) -> None:
    svg = tmp_path / "map.svg"
    code, out, err = run_cli(
        "sweep", str(HPA), "--vary", "window=15s..10min", "--vary", "target=0.5..0.9",
        "--points", "30", "-j", "1", "--format", "json", "--map", str(svg),
    )  # fmt: skip
    assert code == 1, err  # the current values are outside the safe region
    data = json.loads(out)
    assert [a["name"] for a in data["axes"]] == ["hpa.window", "target"]
    assert data["current"]["safe"] is False
    assert {p["overall"] for p in data["points"]} == {"falsified", "not found"}
    assert len(data["answer"]) == 2 and "sweep:" in err
    assert svg.read_text().startswith("<?xml") and "window of hpa" in svg.read_text()


def test_sweep_command_text_says_what_it_could_not_judge() -> None:
    code, out, _ = run_cli(
        "sweep", str(POWER), "--vary", "p_dyn=4kW..5kW", "--points", "3", "--no-refine",
        "-j", "1", "--no-progress", "--spacing", "linear",
    )  # fmt: skip
    assert code in (0, 1)
    assert "not judged by the selected analyses: `require coherent`" in out
    assert "p_dyn" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "nothing to do"),
        (("--vary", "target=0.5..0.9", "--map", "m.png"), "--map needs exactly two"),
        (("--vary", "target=0.5..0.9", "--boxes", "3"), "--boxes certifies"),
        (("--vary", "nope=1..2"), "no param or shaping value `nope`"),
    ],
)
def test_sweep_usage_errors(argv: tuple[str, ...], message: str) -> None:
    code, _, err = run_cli("sweep", str(HPA), *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_formal_certifies_a_box_of_parameters() -> None:
    # with K uncertain within a cell the formal analysis proves `always` for the whole cell
    text = """system q { tick 1s
  param K = 0.5
  state x in [0, 100] init 0
  loop c { actuates x by K * (10 - x) }
  require always x <= 10.5 for 20 ticks }"""
    sw = sweep(text, "q.coh", "K=0.2..0.8", budget=3, refine=False, spacing="linear",
               analyses=("simulate", "formal"), boxes=2)  # fmt: skip
    assert len(sw.certified) == 2  # type: ignore[attr-defined]
    for lo, hi, st in sw.certified:  # type: ignore[attr-defined]
        assert hi[0] > lo[0] and CODES[int(st[0])] == "proved"


def test_unknown_is_never_safe() -> None:
    from coherence.sweep.evaluate import UNKNOWN
    from coherence.sweep.regions import safe_of

    st = np.array([[HOLDS], [UNKNOWN], [FALSIFIED]], dtype=np.int8)
    assert safe_of(st, [0], None).tolist() == [True, False, False]


def test_check_and_lint_do_not_import_dask_or_matplotlib() -> None:
    import subprocess
    import sys

    code = (
        "import io, sys\n"
        "from coherence.cli import main\n"
        f"main(['lint', {str(HPA)!r}], io.StringIO(), io.StringIO())\n"
        "print(sorted(m for m in ('dask', 'distributed', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("spec", [POWER, RETRY])
def test_the_batched_radius_is_the_linear_analysis_radius(spec: Path) -> None:
    import coherence.linear as linear
    from coherence.sweep.params import with_params

    text = spec.read_text()
    ts, knobs = knobs_of(text, str(spec))
    name = "p_dyn" if spec == POWER else "capacity"
    values = [knobs[name].current * f for f in (0.9, 1.0, 1.1)]
    v = evaluate(Chunk(text, str(spec), None, (name,), np.array(values)[:, None], ("linear",)))
    for x, rho in zip(values, v.rho, strict=True):
        data = dict(linear.analyze(with_params(ts, {name: x})).data)
        assert rho == pytest.approx(data["spectral_radius"], rel=1e-9, abs=1e-12)
