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
