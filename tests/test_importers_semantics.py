"""What an imported spec *does*: the controller's timing, simulated, against hand-derived runs.

Each test imports a real-shaped manifest, compiles the generated spec and simulates it, then
compares the trace with the controller's documented rule worked out by hand (tick by tick, in
the comments). The rules:

- Knative KPA: panic mode begins when the panic window asks for at least panic-threshold x the
  ready pods, and ends once no tick has been over the threshold for a stable window ("The
  Autoscaler will leave panic mode if there has been no reason to react quickly during the
  stable window timeframe", https://knative.dev/docs/serving/autoscaling/kpa-specific/;
  knative/serving pkg/autoscaler/scaling/autoscaler.go: un-panic when
  ``panicTime.Add(StableWindow).Before(now)``). scale-down-delay is a window over the desired
  pod count (autoscaler.go ``delayWindow``): it delays the pods, never the panic timer.
- Kubernetes HPA scaling policies: the change allowed is measured against the replica count at
  the start of the policy's period (pkg/controller/podautoscaler/horizontal.go,
  ``calculateScaleDownLimitWithBehaviors``: ``periodStartReplicas = currentReplicas -
  replicasAddedInCurrentPeriod + replicasDeletedInCurrentPeriod``).
- HPA minReplicas/maxReplicas clamp the HPA's own desired count (horizontal.go: "Current number
  of replicas above Spec.MaxReplicas" -> desired = maxReplicas); another writer may set the
  scale outside them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from coherence.compile import compile_text
from coherence.importers import import_file
from coherence.ir.nodes import TransitionSystem
from coherence.simulate.engine import simulate

KSVC = """\
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {{name: llama}}
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/target: "24"
        autoscaling.knative.dev/min-scale: "1"
        autoscaling.knative.dev/max-scale: "40"
{delay}    spec:
      containerConcurrency: 32
      containers: [{{image: x}}]
"""


def _compile(name: str, text: str) -> TransitionSystem:
    result = compile_text(name, text)
    errors = [d for d in result.diagnostics if d.level.name == "ERROR"]
    assert not errors, "\n".join(f"{d.code} {d.message} (line {d.span.line})" for d in errors)
    return result.systems[0]


def _knative(tmp_path: Path, delay: str | None, plant: dict[str, str] | None = None) -> str:
    lines = f'        autoscaling.knative.dev/scale-down-delay: "{delay}"\n' if delay else ""
    path = tmp_path / f"ksvc_{delay or 'none'}.yaml"
    path.write_text(KSVC.format(delay=lines))
    text = import_file("knative", str(path))
    for old, new in (plant or {}).items():  # replace the placeholder plant, as a user would
        assert old in text, old
        text = text.replace(old, new)
    return text


def _burst(ts: TransitionSystem, ticks: int, level: float, start: int, length: int) -> np.ndarray:
    demand = np.full((1, ticks, 1), ts.inputs[0].nominal)
    demand[0, start : start + length, 0] = level
    return demand


# A plant simple enough to follow by hand: concurrency is demand x service time (Little's law,
# no queue) and a pod is ready one tick after the autoscaler asks for it.
SIMPLE_PLANT = {
    "let observed = in_service + queue": "let observed = demand * service",
    "next ready = if pods < ready then pods else ready + (pods - ready) * tick / startup": (
        "next ready = pods"
    ),
}


def test_knative_panic_ends_a_stable_window_after_the_last_tick_over_the_threshold(
    tmp_path: Path,
) -> None:
    # Worked by hand (tick = 2 s; target 24 x 70% = 16.8 per pod; 10 pods; nominal demand
    # 21 req/s x 8 s = 168 concurrent; burst 60 req/s = 480 concurrent on ticks 10..19;
    # panic window 3 ticks, threshold 2 x ready):
    #   tick 10: panic avg (480+168+168)/3 = 272, ceil(272/16.8) = 17 <  2 x 10: stable
    #   tick 11: (480+480+168)/3 = 376, ceil = 23 >= 20: PANIC; pods -> ceil(376/16.8) = 23
    #   tick 12: 480, ceil = 29 >= 2 x ready(10): still over; pods -> 29
    #   tick 13: ready = 23, 29 < 46: not over, and never again (ready >= 29 after)
    # Last tick over the threshold: 12 (24 s). Knative un-panics at the first tick with
    # 24 s + 60 s < now: tick 43 (86 s). So panic mode holds on ticks 11..42.
    for delay in (None, "5m"):
        ts = _compile("k.coh", _knative(tmp_path, delay, SIMPLE_PLANT))
        trace = simulate(ts, 400, inputs=_burst(ts, 400, 60, 10, 10))
        panicking = trace.series("panicking")[0] > 0.5
        assert np.flatnonzero(panicking).tolist() == list(range(11, 43)), delay
        pods = trace.state("pods")[0]
        assert pods[12] == 23 and pods[13:44].tolist() == [29.0] * 31  # no scale-down in panic
        # out of panic at tick 43: stable average over ticks 14..43 = (6 x 480 + 24 x 168)/30
        # = 230.4 -> 14 pods, and the down rate allows floor(29 / 2) = 14
        if delay is None:
            assert pods[44] == 14
        else:
            # 5 min = 150 ticks of desired counts: the last 29 was desired on tick 42, so the
            # window lets go of it on tick 42 + 150 = 192, and 14 shows on tick 193
            assert pods[44:193].tolist() == [29.0] * 149 and pods[193] == 14


def test_knative_scale_down_delay_does_not_hold_the_panic_timer(tmp_path: Path) -> None:
    # the report of issue 30: with the generated (placeholder) plant and a burst, panic lasted
    # to the end of the run once scale-down-delay was 5m; it must end when it ends without it
    runs = {}
    for delay in (None, "5m"):
        ts = _compile("k.coh", _knative(tmp_path, delay))
        trace = simulate(ts, 400, inputs=_burst(ts, 400, 60, 10, 10))
        runs[delay] = (trace.series("panicking")[0] > 0.5, trace.state("pods")[0])
    (calm, pods), (calm_delayed, pods_delayed) = runs[None], runs["5m"]
    assert calm.any() and not calm[-100:].any()
    assert calm_delayed.tolist() == calm.tolist()
    first_down = int(np.argmax(np.diff(pods) < 0))
    first_down_delayed = int(np.argmax(np.diff(pods_delayed) < 0))
    assert first_down_delayed - first_down >= 150 - 1  # the pods' scale-down is delayed


HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {{name: web}}
spec:
  scaleTargetRef: {{kind: Deployment, name: web}}
  minReplicas: 1
  maxReplicas: 10
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 50}}}}
{behavior}"""


def _hpa(tmp_path: Path, behavior: str, edits: dict[str, str]) -> TransitionSystem:
    path = tmp_path / "hpa.yaml"
    path.write_text(HPA.format(behavior=behavior))
    text = import_file("hpa", str(path))
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return _compile("hpa.coh", text)


def test_hpa_pods_policy_per_120s_removes_one_pod_per_120s(tmp_path: Path) -> None:
    behavior = (
        "  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 0\n"
        "      policies: [{type: Pods, value: 1, periodSeconds: 120}]\n"
    )
    # start at 10 replicas (the placeholder init is the middle of the range) with no load
    ts = _hpa(tmp_path, behavior, {"init 6": "init 10"})
    trace = simulate(ts, 80, inputs=np.zeros((1, 80, 1)))
    replicas = trace.state("replicas")[0]
    # By hand (sync = tick = 15 s): the HPA wants 1 at once; the policy allows the count to
    # drop by 1 below the count at the start of the 120 s period. The period of the sync at
    # tick t holds the scale events of ticks t-7..t-1 (the one of t-8 was recorded 120 s plus
    # a little ago), so the allowed count is replicas(t-7) - 1: removals on ticks 0, 8, 16, ...
    # 64, one per 120 s, the ninth 8 x 120 s after the first; replicas is 9 - k on ticks
    # 1 + 8k .. 8 + 8k and 1 from tick 65 on (975 s). One pod per 15 s would reach 1 at tick 9.
    expected = [10.0] + [float(9 - min(k // 8, 8)) for k in range(80)]  # ticks 0..80
    assert replicas.tolist() == expected
    assert replicas[9] == 8  # not 1: not 8x too fast


def test_hpa_percent_policy_measured_from_the_start_of_its_period(tmp_path: Path) -> None:
    behavior = (
        "  behavior:\n    scaleDown:\n      stabilizationWindowSeconds: 0\n"
        "      policies: [{type: Percent, value: 50, periodSeconds: 60}]\n"
    )
    ts = _hpa(tmp_path, behavior, {"init 6": "init 10"})
    trace = simulate(ts, 20, inputs=np.zeros((1, 20, 1)))
    # floor(replicas(t-3) x 0.5): 10 -> 5 on tick 0; held while the period still starts at 10
    # (ticks 1..3: floor(10 / 2) = 5); tick 4 measures from 5 -> 2; tick 8 from 2 -> 1
    assert trace.state("replicas")[0, :10].tolist() == [10, 5, 5, 5, 5, 2, 2, 2, 2, 1]


def test_hpa_min_max_bound_its_own_count_not_another_writers(tmp_path: Path) -> None:
    # the generated HPA and a hand-written `kubectl apply` that sets 15 replicas at 60 s;
    # Kubernetes objects are last-writer-wins (docs/language.md, "Several writers: combine")
    ts = _hpa(
        tmp_path,
        "",
        {
            "init 6": "init 6 combine last",
            "  require stable": (
                "  loop kubectl { every 600s phase 60s actuates replicas to 15 }\n  require stable"
            ),
        },
    )
    assert ts.state("replicas").hi >= 15
    replicas = simulate(ts, 12).state("replicas")[0]
    # nominal load: the HPA holds 6; kubectl writes 15 on tick 4 (shows on tick 5), above
    # maxReplicas 10; at the next sync (tick 5) the HPA finds the count above its maximum and
    # sets it to maxReplicas at once (horizontal.go), stabilization and policies aside
    assert replicas.tolist() == [6, 6, 6, 6, 6, 15, 10, 10, 10, 10, 10, 10, 10]  # ticks 0..12


def test_hpa_policy_after_the_default_stabilization_window(tmp_path: Path) -> None:
    behavior = (
        "  behavior:\n    scaleDown:\n"
        "      policies: [{type: Pods, value: 1, periodSeconds: 120}]\n"
    )
    ts = _hpa(tmp_path, behavior, {})  # 6 replicas at nominal load; default 300 s window
    replicas = simulate(ts, 60, inputs=np.zeros((1, 60, 1))).state("replicas")[0]
    # The load stops at tick 0: the HPA wants 1 (minReplicas), but scales down only to the
    # highest desired count of the last 20 syncs (300 s), 6 until tick 19. From tick 19 the
    # policy alone holds it back: 6 -> 5 on tick 19 (the period began at 6), then one pod
    # every 8 syncs (120 s): ticks 27, 35, 43, 51. The window must not hold each step for
    # another 300 s (a limit recorded as a recommendation would).
    steps = [t for t in range(60) if replicas[t + 1] < replicas[t]]
    assert steps == [19, 27, 35, 43, 51]
    assert replicas[52] == 1
