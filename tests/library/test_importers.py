"""`coherence import hpa|keda|knative`: real-shaped manifests in, compilable specs out.

The fixtures under tests/library/data/ are shaped like the examples of the Kubernetes, KEDA
and Knative documentation. Each generated spec must compile, carry the controller's periods,
windows and tolerances (from the YAML or the built-in defaults), and say on every value line
where the value came from. Bad input is a located error, never a traceback.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pytest

from coherence.cli import main
from coherence.compile import compile_text
from coherence.importers import import_file
from coherence.ir.nodes import TransitionSystem
from coherence.simulate.engine import simulate

DATA = Path(__file__).resolve().parent / "data"


def generate(kind: str, name: str) -> tuple[str, TransitionSystem]:
    text = import_file(kind, str(DATA / name))
    result = compile_text(f"{name}.coh", text)
    errors = [d for d in result.diagnostics if d.level.name == "ERROR"]
    assert not errors, "\n".join(f"{d.code} {d.message} (line {d.span.line})" for d in errors)
    assert len(result.systems) == 1
    return text, result.systems[0]


def param(ts: TransitionSystem, name: str) -> float:
    return ts.param(name).value


def line_with(text: str, start: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(start)]
    assert lines, f"no line starts with `{start}`"
    return lines[0]


def history(ts: TransitionSystem, loop: str = "hpa") -> int:
    return len(ts.loop(loop).actions[0].history)


VALUE_LINES = (
    "tick",
    "input",
    "param",
    "state",
    "every",
    "senses",
    "actuates",
    "rate",
    "stabilize",
)


def assert_every_value_line_is_sourced(text: str) -> None:
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(VALUE_LINES):
            assert "#" in line, f"no provenance comment on `{line}`"
            comment = line.split("#", 1)[1]
            assert re.search(
                r"from \S+\.yaml:\d+|default:|PLACEHOLDER|formula:|derived:|model:", comment
            ), line


# ---- HorizontalPodAutoscaler ----------------------------------------------------------------


def test_hpa_with_every_default() -> None:
    text, ts = generate("hpa", "hpa_cpu.yaml")
    assert ts.tick == 15.0 and ts.loop("hpa").period == 1  # sync period 15 s
    assert param(ts, "tol") == pytest.approx(0.1)
    assert param(ts, "cpu_target") == 50
    replicas = ts.state("replicas")
    # minReplicas/maxReplicas bound the HPA's own count, not the state (issue 30): the state's
    # bounds are physical, 0 to a placeholder capacity of 10 x maxReplicas
    assert (replicas.lo, replicas.hi, replicas.integer) == (0, 100, True)
    assert (param(ts, "min_replicas"), param(ts, "max_replicas")) == (1, 10)
    assert history(ts) == 300 // 15 - 1  # default scale-down stabilization, 300 s
    assert "rate up 100% down 100%" in text
    assert "from hpa_cpu.yaml:20 spec.metrics[0].resource.target.averageUtilization" in text
    assert "default: 300s, --horizontal-pod-autoscaler-downscale-stabilization" in line_with(
        text, "stabilize down"
    )
    assert "default: 0.1, --horizontal-pod-autoscaler-tolerance" in line_with(text, "param tol ")
    assert_every_value_line_is_sourced(text)


def test_hpa_generated_plant_sits_at_the_targets() -> None:
    _, ts = generate("hpa", "hpa_cpu.yaml")
    trace = simulate(ts, 40)
    assert set(trace.state("replicas")[0].tolist()) == {6.0}  # nominal load: no scaling


def test_hpa_behavior_and_two_metrics() -> None:
    text, ts = generate("hpa", "hpa_behavior.yaml")
    assert (ts.state("replicas").lo, ts.state("replicas").hi) == (0, 200)
    assert (param(ts, "min_replicas"), param(ts, "max_replicas")) == (2, 20)
    # a policy of 1 pod per 60 s limits the change since the period began, which a per-action
    # `rate` cannot say (issue 30): the law carries the windows and the limits itself, with the
    # replica count 45 s back (the period began 3 syncs ago)
    assert "rate " not in text and "stabilize " not in text
    assert "let hpa_up_2 = min(hpa_desired, delay(hpa_desired, 15s))" in text  # 30 s: 2 syncs
    assert "let hpa_down = max(hpa_down_8, delay(hpa_down_32, 120s))" in text  # 600 s: 40
    assert "min(replicas, delay(replicas, 45s) - 1)" in line_with(text, "actuates replicas")
    # up: selectPolicy Max of {100%, 4 pods} per 15 s, from the current count
    assert "max(replicas, max(ceil(replicas * 2), replicas + 4))" in line_with(
        text, "actuates replicas"
    )
    assert param(ts, "vllm_num_requests_waiting_target") == 5
    assert param(ts, "gateway_queue_depth_target") == 30
    law = line_with(text, "let hpa_desired")
    assert law.startswith("let hpa_desired = min(max(max(")  # the largest proposal, clamped
    # an External AverageValue target divides by the replica count (GetExternalPerPodMetricReplicas)
    assert "gateway_queue_depth / (gateway_queue_depth_target * replicas)" in law
    assert_every_value_line_is_sourced(text)


def test_hpa_scales_out_under_load() -> None:
    _, ts = generate("hpa", "hpa_cpu.yaml")
    inputs = __import__("numpy").full((1, 40, 1), 1.6)
    trace = simulate(ts, 40, inputs=inputs)
    assert trace.state("replicas")[0, -1] == 10  # 1.6 x 6 = 9.6 -> 10 replicas


def test_hpa_v1_and_defaulted_metric(tmp_path: Path) -> None:
    path = tmp_path / "v1.yaml"
    path.write_text(
        "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\n"
        "spec:\n  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 4\n"
    )
    text = import_file("hpa", str(path))
    assert "param cpu_target = 80" in text and "targetCPUUtilizationPercentage 80" in text
    assert compile_text("v1.coh", text).ok


def test_hpa_per_direction_tolerance(tmp_path: Path) -> None:
    path = tmp_path / "tol.yaml"
    path.write_text(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\n"
        "spec:\n  scaleTargetRef: {kind: Deployment, name: web}\n  maxReplicas: 8\n"
        "  behavior:\n    scaleUp: {tolerance: 0.05}\n    scaleDown: {tolerance: 0.2, selectPolicy: Disabled}\n"
    )
    text = import_file("hpa", str(path))
    result = compile_text("tol.coh", text)
    assert result.ok
    ts = result.systems[0]
    assert (param(ts, "tol_up"), param(ts, "tol_down")) == (0.05, 0.2)
    assert (
        "rate up 100% down 0" in text
    )  # scale-down disabled; 100% beats 4 pods from 5 replicas up


# ---- KEDA ScaledObject ------------------------------------------------------------------------


def test_keda_defaults_and_scale_to_zero() -> None:
    text, ts = generate("keda", "keda_prometheus.yaml")
    assert ts.tick == 15.0
    assert ts.loop("hpa").period == 1 and ts.loop("keda").period == 2  # pollingInterval 30 s
    assert param(ts, "cooldown") == 300
    # The Deployment's count is physical (0 to 10 x maxReplicaCount, a placeholder): KEDA's
    # and the HPA's own bounds are in their laws, so another writer may go outside them.
    assert (ts.state("replicas").lo, ts.state("replicas").hi) == (0, 160)
    assert (param(ts, "min_replicas"), param(ts, "max_replicas")) == (1, 16)
    assert "default: pollingInterval 30s" in line_with(text, "every 30s")
    assert "default: cooldownPeriod 300s" in line_with(text, "param cooldown")
    assert "GetHPAMinReplicas" in text  # HPA minReplicas = max(minReplicaCount, 1)
    assert param(ts, "prometheus_target") == 10 and param(ts, "prometheus_activation") == 1
    assert_every_value_line_is_sourced(text)


def test_keda_scales_to_zero_after_the_cooldown() -> None:
    import numpy as np

    _, ts = generate("keda", "keda_prometheus.yaml")
    inputs = np.zeros((1, 60, 1))  # no load at all
    trace = simulate(ts, 60, inputs=inputs)
    replicas = trace.state("replicas")[0]
    first_zero = int(np.argmax(replicas == 0))
    assert replicas[-1] == 0 and 300 / 15 <= first_zero <= (300 + 30) / 15 + 1


def test_keda_default_max_replicas(tmp_path: Path) -> None:
    path = tmp_path / "so.yaml"
    path.write_text(
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: q}\n"
        "spec:\n  scaleTargetRef: {name: q}\n  triggers:\n  - type: aws-sqs-queue\n"
        "    metadata: {queueURL: https://sqs/q}\n"
    )
    text = import_file("keda", str(path))
    result = compile_text("so.coh", text)
    assert result.ok
    assert param(result.systems[0], "max_replicas") == 100  # maxReplicaCount default
    assert "default: maxReplicaCount 100" in text
    assert "default: queueLength 5" in text  # the scaler's own default target


def test_keda_full_spec() -> None:
    text, ts = generate("keda", "keda_full.yaml")
    assert ts.tick == 5.0  # gcd(15 s sync, 10 s polling)
    assert ts.loop("hpa").period == 3
    assert [lp.name for lp in ts.loops] == ["hpa"]  # minReplicaCount 2: KEDA never scales to 0
    assert (ts.state("replicas").lo, ts.state("replicas").hi) == (0, 300)
    assert (param(ts, "min_replicas"), param(ts, "max_replicas")) == (2, 30)
    assert history(ts) == 120 // 15 - 1
    assert "rate up 100% down 50%" in text
    assert param(ts, "kafka_target") == 50 and param(ts, "cpu_target") == 70
    assert_every_value_line_is_sourced(text)


# ---- Knative ------------------------------------------------------------------------------


def test_knative_annotations_and_defaults() -> None:
    text, ts = generate("knative", "knative_service.yaml")
    assert ts.tick == 2.0 and ts.loop("kpa").period == 1
    stable, panic = ts.loop("kpa").sensors
    # 60 s in 2 s ticks; the panic window (10% of it, 3 ticks) is written out as two one-tick
    # delays outside the loop, so that the panic timer is a plant state the scale-down delay
    # cannot hold (issue 30); the loop senses that average as it is
    assert (stable.window, panic.window) == (30, 1)
    assert "let panic_c = ((observed + panic_obs_1) + panic_obs_2) / 3" in text
    assert param(ts, "target") == pytest.approx(24 * 0.7)  # annotation x default utilization
    assert param(ts, "panic_threshold") == 2.0
    assert (param(ts, "up_rate"), param(ts, "down_rate")) == (1000, 2)
    assert (ts.state("pods").lo, ts.state("pods").hi) == (1, 40)
    assert param(ts, "slots") == 32  # containerConcurrency
    assert "stabilize down 30s" in text  # scale-down-delay
    assert "default: stable-window 60s" in line_with(text, "senses observed as stable_c")
    assert_every_value_line_is_sourced(text)


def test_knative_config_map_overrides_defaults() -> None:
    text, ts = generate("knative", "knative_config.yaml")
    stable, _ = ts.loop("kpa").sensors
    assert stable.window == 60  # 120 s
    assert "let panic_c = ((observed + panic_obs_1) + panic_obs_2) / 3" in text  # 5% = 6 s
    assert param(ts, "target") == pytest.approx(50 * 0.8)
    assert param(ts, "panic_threshold") == 3.0
    assert (param(ts, "up_rate"), param(ts, "down_rate")) == (10, 4)
    assert "from knative_config.yaml:11 data.stable-window" in text
    assert (ts.state("pods").lo, ts.state("pods").hi) == (
        0,
        100,
    )  # max-scale 0: a placeholder bound


def test_knative_target_capped_by_container_concurrency(tmp_path: Path) -> None:
    path = tmp_path / "ksvc.yaml"
    path.write_text(
        "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: m}\n"
        "spec:\n  template:\n    metadata:\n      annotations:\n"
        '        autoscaling.knative.dev/target: "50"\n'
        '        autoscaling.knative.dev/target-utilization-percentage: "80"\n'
        "    spec:\n      containerConcurrency: 10\n      containers: [{image: x}]\n"
    )
    ts = compile_text("k.coh", import_file("knative", str(path))).systems[0]
    assert param(ts, "target") == pytest.approx(10 * 0.8)


# ---- errors: located, exit 2, no traceback --------------------------------------------------

ERRORS = [
    ("hpa", "bad_syntax.yaml", 7, 14, "YAML syntax error"),
    ("hpa", "bad_kind.yaml", 2, 7, "expected a HorizontalPodAutoscaler, found `Deployment`"),
    ("hpa", "bad_api.yaml", 1, 13, "unsupported apiVersion `autoscaling/v9`"),
    ("hpa", "bad_metric.yaml", 15, 11, "unsupported metric type `Custom`"),
    ("hpa", "bad_missing.yaml", 6, 3, "`spec` has no `maxReplicas`"),
    ("keda", "bad_keda_trigger.yaml", 9, 11, "unsupported trigger type `carrier-pigeon`"),
    ("knative", "bad_knative_class.yaml", 9, 40, "is not the KPA"),
    ("keda", "hpa_cpu.yaml", 4, 7, "expected a ScaledObject, found `HorizontalPodAutoscaler`"),
]


@pytest.mark.parametrize(("kind", "name", "line", "col", "message"), ERRORS)
def test_errors_are_located(kind: str, name: str, line: int, col: int, message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    path = str(DATA / name)
    assert main(["import", kind, path], out, err) == 2
    first, *rest = err.getvalue().splitlines()
    assert first.startswith(f"{path}:{line}:{col}: error: "), first
    assert message in first
    assert rest and rest[0].startswith("hint: ")
    assert "Traceback" not in err.getvalue() and out.getvalue() == ""


def test_missing_file_is_an_error() -> None:
    err = io.StringIO()
    assert main(["import", "hpa", str(DATA / "nope.yaml")], io.StringIO(), err) == 2
    assert "no such file" in err.getvalue()


def test_without_pyyaml_exit_2_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml -> ImportError
    err = io.StringIO()
    assert main(["import", "hpa", str(DATA / "hpa_cpu.yaml")], io.StringIO(), err) == 2
    assert "pip install coherence[yaml]" in err.getvalue()


def test_cli_writes_the_spec(tmp_path: Path) -> None:
    out = io.StringIO()
    assert main(["import", "hpa", str(DATA / "hpa_cpu.yaml")], out, io.StringIO()) == 0
    assert out.getvalue().startswith("# Generated by `coherence import hpa hpa_cpu.yaml`")
    target = tmp_path / "web.coh"
    assert (
        main(["import", "knative", str(DATA / "knative_service.yaml"), "--out", str(target)]) == 0
    )
    assert compile_text(str(target), target.read_text()).ok
