"""Knative autoscaling (the KPA) to spec loop declarations.

Reads a Knative Service, Configuration or Revision (serving.knative.dev/v1), its
``autoscaling.knative.dev/*`` annotations and ``containerConcurrency``, and, when the same
file holds it, the ``config-autoscaler`` ConfigMap: annotation over ConfigMap over built-in
default, per key. The KPA is written as in knative/serving pkg/autoscaler/scaling/
autoscaler.go: every 2 s, desired pods from the stable window's average, panic mode when the
panic window asks for at least panic-threshold x the ready pods, no scale-down in panic,
scale-up and scale-down capped by the max rates. Defaults: docs/defaults.md section 4.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from coherence.importers.emit import (
    PLACEHOLDER,
    SpecWriter,
    balanced,
    default,
    ident,
    num,
    origin,
    quote,
    seconds,
)
from coherence.importers.yamlsrc import Node, find_kind

PREFIX = "autoscaling.knative.dev/"
CONFIG = "knative/serving pkg/autoscaler/config/config.go defaultConfig()"
TICK = 2.0  # pkg/autoscaler/scaling/multiscaler.go tickInterval
SCALE = "pkg/autoscaler/scaling/autoscaler.go (*autoscaler).Scale"

# spec key -> (annotation names, ConfigMap key)
KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    "class": (("class",), ""),
    "metric": (("metric",), ""),
    "target": (("target",), ""),
    "utilization": (
        ("target-utilization-percentage", "targetUtilizationPercentage"),
        "container-concurrency-target-percentage",
    ),
    "window": (("window",), "stable-window"),
    "panic_window": (
        ("panic-window-percentage", "panicWindowPercentage"),
        "panic-window-percentage",
    ),
    "panic_threshold": (
        ("panic-threshold-percentage", "panicThresholdPercentage"),
        "panic-threshold-percentage",
    ),
    "min_scale": (("min-scale", "minScale"), "min-scale"),
    "max_scale": (("max-scale", "maxScale"), "max-scale"),
    "scale_down_delay": (("scale-down-delay", "scaleDownDelay"), "scale-down-delay"),
    "up_rate": ((), "max-scale-up-rate"),
    "down_rate": ((), "max-scale-down-rate"),
    "cc_default": ((), "container-concurrency-target-default"),
    "rps_default": ((), "requests-per-second-target-default"),
    "scale_to_zero": ((), "enable-scale-to-zero"),
}


@dataclass(frozen=True, slots=True)
class Setting:
    value: float
    note: str


@dataclass(frozen=True, slots=True)
class Kpa:
    name: str
    title: str
    metric: str
    metric_note: str
    total: float  # per pod, before utilization
    target: Setting  # per pod, after utilization
    container_concurrency: Setting | None
    stable_window: Setting
    panic_window: Setting
    panic_threshold: Setting
    up_rate: Setting
    down_rate: Setting
    min_scale: Setting
    max_scale: Setting
    scale_down_delay: Setting


class _Lookup:
    """Annotation, then ConfigMap, then default; each with its origin."""

    def __init__(self, annotations: Node | None, config: Node | None) -> None:
        self.annotations = annotations
        self.config = config

    def node(self, key: str) -> Node | None:
        names, cm_key = KEYS[key]
        if self.annotations is not None:
            for n in names:
                found = self.annotations.get(PREFIX + n)
                if found is not None:
                    return found
        if cm_key and self.config is not None:
            return self.config.get(cm_key)
        return None


def parse_knative(docs: list[Node]) -> Kpa:
    doc = find_kind(docs, ("Service", "Configuration", "Revision"), ("serving.knative.dev/",))
    kind = doc.require("kind").text()
    meta = doc.get("metadata")
    name_node = meta.get("name") if meta is not None else None
    name = name_node.text() if name_node is not None else "service"
    spec = doc.require("spec")
    if kind == "Revision":
        annotations = meta.get("annotations") if meta is not None else None
        pod_spec: Node | None = spec
    else:
        template = spec.require("template", "the autoscaling annotations live on spec.template")
        tmeta = template.get("metadata")
        annotations = tmeta.get("annotations") if tmeta is not None else None
        pod_spec = template.get("spec")
    config = _config_map(docs)
    look = _Lookup(annotations, config)

    klass = look.node("class")
    if klass is not None and klass.text() != "kpa.autoscaling.knative.dev":
        raise klass.fail(
            f"autoscaler class `{klass.text()}` is not the KPA",
            "the hpa class is run by a Kubernetes HPA: import that HPA with `coherence import hpa`",
        )
    metric_node = look.node("metric")
    metric = metric_node.text() if metric_node is not None else "concurrency"
    if metric not in ("concurrency", "rps"):
        assert metric_node is not None
        raise metric_node.fail(
            f"the KPA cannot scale on `{metric}`",
            "the KPA supports concurrency and rps; cpu, memory "
            "and custom metrics need the hpa class",
        )
    metric_note = origin(metric_node) if metric_node is not None else default("concurrency", CONFIG)

    cc: Setting | None = None
    cc_node = pod_spec.get("containerConcurrency") if pod_spec is not None else None
    if cc_node is not None and cc_node.integer(lo=0) > 0:
        cc = Setting(cc_node.integer(lo=0), origin(cc_node))

    # ResolveMetricTarget (pkg/reconciler/autoscaling/resources): the total target per pod,
    # then x target utilization.
    if metric == "rps":
        total = _number(look, "rps_default", 200, "requests-per-second-target-default 200")
    elif cc is not None:
        total = Setting(cc.value, f"containerConcurrency, {cc.note}")
    else:
        total = _number(look, "cc_default", 100, "container-concurrency-target-default 100")
    t_node = look.node("target")
    if t_node is not None:
        v = t_node.number()
        if v <= 0:
            raise t_node.fail("`autoscaling.knative.dev/target` must be positive")
        if metric == "concurrency" and cc is not None and cc.value < v:
            total = Setting(
                cc.value, f"{origin(t_node)} capped by containerConcurrency {num(cc.value)}"
            )
        else:
            total = Setting(v, origin(t_node))
    util = _fraction(look, "utilization", 0.7, "container-concurrency-target-percentage 70")
    target = Setting(
        max(0.01, total.value * util.value),
        f"{num(total.value)} x {num(util.value)}: {total.note}; {util.note}",
    )

    window = _duration(look, "window", 60, "stable-window 60s")
    if not 6 <= window.value <= 3600:
        node = look.node("window")
        assert node is not None
        raise node.fail(f"the stable window must be between 6s and 1h, not {seconds(window.value)}")
    panic_pct = _number(look, "panic_window", 10, "panic-window-percentage 10")
    if not 1 <= panic_pct.value <= 100:
        node = look.node("panic_window")
        assert node is not None
        raise node.fail("the panic window percentage must be between 1 and 100")
    panic_window = Setting(
        window.value * panic_pct.value / 100,
        f"{num(panic_pct.value)}% of the stable window: {panic_pct.note}",
    )
    threshold = _number(look, "panic_threshold", 200, "panic-threshold-percentage 200")
    up_rate = _number(look, "up_rate", 1000, "max-scale-up-rate 1000")
    down_rate = _number(look, "down_rate", 2, "max-scale-down-rate 2")
    zero = look.node("scale_to_zero")
    allow_zero = zero.boolean() if zero is not None else True
    min_scale = _number(look, "min_scale", 0, "min-scale 0")
    if min_scale.value == 0 and not allow_zero:
        assert zero is not None
        min_scale = Setting(1, f"enable-scale-to-zero false, {origin(zero)}")
    max_scale = _number(look, "max_scale", 0, "max-scale 0 (unbounded)")
    if max_scale.value == 0:
        max_scale = Setting(
            max(100, min_scale.value),
            f"{PLACEHOLDER}: max-scale 0 means unbounded; a bound for the analyses",
        )
    if max_scale.value < min_scale.value:
        node = look.node("max_scale")
        assert node is not None
        raise node.fail(
            f"max-scale ({num(max_scale.value)}) is below min-scale ({num(min_scale.value)})"
        )
    delay = _duration(look, "scale_down_delay", 0, "scale-down-delay 0s")
    title = f"Knative {kind} {name} under the KPA ({metric})"
    return Kpa(
        ident(name, "service"), title, metric, metric_note, total.value, target, cc, window,
        panic_window,
        threshold, up_rate, down_rate, min_scale, max_scale, delay,
    )  # fmt: skip


def _config_map(docs: list[Node]) -> Node | None:
    for doc in docs:
        if doc.kind != "mapping":
            continue
        kind, meta = doc.get("kind"), doc.get("metadata")
        name = meta.get("name") if meta is not None else None
        if (
            kind is not None
            and kind.text() == "ConfigMap"
            and name is not None
            and name.text() == "config-autoscaler"
        ):
            return doc.get("data")
    return None


def _number(look: _Lookup, key: str, fallback: float, what: str) -> Setting:
    node = look.node(key)
    if node is None:
        return Setting(fallback, default(what, CONFIG))
    return Setting(node.number(), origin(node))


def _fraction(look: _Lookup, key: str, fallback: float, what: str) -> Setting:
    s = _number(look, key, fallback, what)
    # values above 1 are percentages (config.go: "values > 1 are read as percentages")
    return Setting(s.value / 100, s.note) if s.value > 1 else s


def _duration(look: _Lookup, key: str, fallback: float, what: str) -> Setting:
    node = look.node(key)
    if node is None:
        return Setting(fallback, default(what, CONFIG))
    return Setting(node.duration(), origin(node))


def _ticks(value: float) -> tuple[int, str]:
    n = max(1, math.ceil(value / TICK - 1e-9))
    note = "" if abs(n * TICK - value) < 1e-9 else f"; rounded up to {n} ticks of 2s"
    return n, note


def write_knative_spec(k: Kpa, source: str) -> str:
    w = SpecWriter()
    conc = k.metric == "concurrency"
    service = 8.0
    if k.container_concurrency is not None:
        slots = k.container_concurrency.value
    else:  # enough for the target: what a pod holds at 100% of it
        slots = float(math.ceil(k.total * (1 if conc else service)))
    ref = max(int(k.min_scale.value), min(int(k.max_scale.value), 10))
    demand = k.target.value * ref / (service if conc else 1)
    stable_n, stable_note = _ticks(k.stable_window.value)
    panic_n, panic_note = _ticks(k.panic_window.value)
    w.comment(f"Generated by `coherence import knative {source}` from the {k.title}.")
    w.comment("Each line says where its value came from: `from FILE:LINE FIELD` (the YAML: an")
    w.comment("annotation, the config-autoscaler ConfigMap, containerConcurrency), `default: ...`")
    w.comment(f"(knative/serving's default and where it is defined), or `{PLACEHOLDER}` (a model")
    w.comment("of your service for you to replace). Scale-to-zero grace and the activator's burst")
    w.comment("capacity are not modelled.")
    w.blank()
    w.open(f"system {k.name} {quote(k.title)}")
    w.line(
        f"tick {seconds(TICK)}",
        default("2s, the KPA tick interval", "pkg/autoscaler/scaling/multiscaler.go tickInterval"),
    )
    w.blank()
    w.comment(f"---- {PLACEHOLDER} plant: replace with how your service responds --------------")
    w.line(
        f"input demand : req/s in [0, {num(3 * demand)}] nominal {num(demand)}",
        f"{PLACEHOLDER}: requests per second",
    )
    w.line(f"param service = {seconds(service)}", f"{PLACEHOLDER}: how long one request takes")
    if k.container_concurrency is not None:
        w.line(
            f"param slots = {num(slots)} req/replica",
            f"containerConcurrency, {k.container_concurrency.note}",
        )
    else:
        w.line(
            f"param slots = {num(slots)} req/replica",
            f"{PLACEHOLDER}: requests one pod serves at once",
        )
    w.line("param startup = 60s", f"{PLACEHOLDER}: how long a new pod takes to become ready")
    w.blank()
    w.line(
        f"param target = {num(k.target.value)} req/replica"
        if conc
        else f"param target = {num(k.target.value)} req/s/replica",
        k.target.note,
    )
    w.line(f"param panic_threshold = {num(k.panic_threshold.value / 100)}", k.panic_threshold.note)
    w.line(f"param up_rate = {num(k.up_rate.value)}", k.up_rate.note)
    w.line(f"param down_rate = {num(k.down_rate.value)}", k.down_rate.note)
    w.line(
        f"param panic_ticks = {stable_n}",
        f"panic lasts a stable window after the last trigger: {k.stable_window.note}{stable_note}",
    )
    w.blank()
    w.line(
        f"state pods : replica integer in [{num(k.min_scale.value)}, {num(k.max_scale.value)}] init {ref}",
        f"{k.min_scale.note}; {k.max_scale.note}; init {PLACEHOLDER}",
    )
    w.line(
        f"state ready : replica in [0, {num(k.max_scale.value)}] init {ref}",
        "model: pods that serve",
    )
    w.line(
        "state queue : req in [0, 1000000] init 0",
        "model: requests waiting in the activator / queue-proxy",
    )
    w.line(
        f"state panic_left in [0, {stable_n}] init 0",
        "model: ticks of panic mode left after this one (the KPA's panicTime, counted down)",
    )
    w.blank()
    w.line("let capacity = ready * slots / service")
    w.line("let in_service = min(ready * slots, demand * service + queue)")
    if conc:
        w.line("let observed = in_service + queue", f"the metric: concurrency ({k.metric_note})")
    else:
        w.line("let observed = demand", f"the metric: requests per second ({k.metric_note})")
    w.line("let wait = queue / max(1 req/s, capacity)")
    w.line("next queue = max(0, queue + (demand - capacity) * tick)")
    w.line(
        "next ready = if pods < ready then pods else ready + (pods - ready) * tick / startup",
        "model: new pods become ready over `startup`; removed pods stop at once",
    )
    w.blank()
    _write_panic_mode(w, k, panic_n, panic_note)
    w.blank()
    w.open('loop kpa "Knative Pod Autoscaler: stable and panic modes"')
    w.line(
        f"every {seconds(TICK)}",
        default("2s, the KPA tick interval", "multiscaler.go tickInterval"),
    )
    w.line(
        f"senses observed as stable_c window {seconds(stable_n * TICK)}",
        f"{k.stable_window.note}{stable_note}",
    )
    w.line(
        "senses panic_c",
        f"derived: the panic window's average, {seconds(panic_n * TICK)} (above)",
    )
    w.line(
        "actuates pods to if panicking then max(pods, min(ceil(max(panic_c, stable_c) / target), "
        "up_rate * max(1 replica, ready))) else min(max(ceil(stable_c / target), floor(ready / down_rate)), "
        "up_rate * max(1 replica, ready))",
        f"formula: no scale-down in panic, the rates cap each decision ({SCALE}); {k.up_rate.note}; {k.down_rate.note}",
    )
    if k.scale_down_delay.value > 0:
        n, note = _ticks(k.scale_down_delay.value)
        w.line(
            f"stabilize down {seconds(n * TICK)}",
            f"scale-down-delay: the max of the desired pod counts over the window (the panic "
            f"timer is a plant state: the delay never holds it), {k.scale_down_delay.note}{note}",
        )
    else:
        w.comment(f"no scale-down delay: {k.scale_down_delay.note}")
    w.line("objective keep wait <= 10s", f"{PLACEHOLDER}: your latency objective")
    w.close()
    w.blank()
    w.line("require stable", f"{PLACEHOLDER}: what you require of this loop")
    w.line("require always wait <= 30s for 300 ticks inputs held", PLACEHOLDER)
    w.close()
    return w.render()


def _write_panic_mode(w: SpecWriter, k: Kpa, panic_n: int, panic_note: str) -> None:
    """The KPA's panic mode as plant lets and a plant state, outside the loop.

    A loop's shaping (``stabilize down`` for scale-down-delay) applies to every state it
    actuates; the delay is a window over the desired pod count only (pkg/autoscaler/scaling/
    autoscaler.go, ``delayWindow``), so the panic timer must not be one of the loop's actions.
    The panic window's average is written out as a chain of one-tick delays (exact: the same
    registers a ``senses ... window`` adds) so that the timer can read it outside the loop.
    Panic begins when the panic window asks for ``panic_threshold`` x the ready pods and ends
    once no tick has been over the threshold for a stable window ("The Autoscaler will leave
    panic mode if there has been no reason to react quickly during the stable window
    timeframe", https://knative.dev/docs/serving/autoscaling/kpa-specific/; in autoscaler.go:
    ``panicTime.Add(spec.StableWindow).Before(now)``).
    """
    w.comment(f"---- the KPA's panic mode ({SCALE}) ----")
    terms = ["observed"]
    for i in range(1, panic_n):
        w.line(
            f"let panic_obs_{i} = delay({terms[-1]}, {seconds(TICK)})",
            f"derived: concurrency {seconds(i * TICK)} ago, for the panic window",
        )
        terms.append(f"panic_obs_{i}")
    total = balanced("+", terms)
    w.line(
        f"let panic_c = ({total}) / {panic_n}" if panic_n > 1 else "let panic_c = observed",
        f"the panic window's average, {seconds(panic_n * TICK)}: {k.panic_window.note}{panic_note}",
    )
    w.line(
        "let over_threshold = ceil(panic_c / target) >= panic_threshold * max(1 replica, ready)",
        f"formula: isOverPanicThreshold ({SCALE}); {k.panic_threshold.note}",
    )
    w.line(
        "let panicking = over_threshold or panic_left > 0",
        "formula: in panic mode from the first tick over the threshold until a stable window "
        "after the last",
    )
    w.line(
        "next panic_left = if over_threshold then panic_ticks else max(0, panic_left - 1)",
        f"formula: un-panic once panicTime + stable window is past ({SCALE}); "
        f"{k.stable_window.note}",
    )
