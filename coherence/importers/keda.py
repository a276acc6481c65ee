"""KEDA ScaledObject (keda.sh/v1alpha1) to spec loop declarations.

KEDA runs two loops. For 1..N it creates an HPA (minReplicas = max(minReplicaCount, 1),
maxReplicas = maxReplicaCount, one External metric per trigger, the behavior of
``advanced.horizontalPodAutoscalerConfig``), which the HPA controller runs every 15 s: that
loop is written by :func:`coherence.importers.hpa.write_hpa_loop`. For 0 <-> 1 KEDA itself
polls the triggers every ``pollingInterval`` and scales to zero once no trigger has been
active for ``cooldownPeriod``. Defaults: docs/defaults.md section 3.
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
from coherence.importers.hpa import (
    SYNC,
    Hpa,
    Metric,
    Val,
    parse_behavior,
    reference_replicas,
    write_hpa_loop,
    write_metric_plant,
)
from coherence.importers.yamlsrc import Node, find_kind

TYPES = "kedacore/keda apis/keda/v1alpha1"
EXECUTOR = "kedacore/keda pkg/scaling/executor/scale_executor.go"

# trigger type -> (metadata key of the target, its default if KEDA has one, activation key)
TRIGGERS: dict[str, tuple[str, float | None, str]] = {
    "prometheus": ("threshold", None, "activationThreshold"),
    "kafka": ("lagThreshold", 10, "activationLagThreshold"),
    "rabbitmq": ("value", None, "activationValue"),
    "aws-sqs-queue": ("queueLength", 5, "activationQueueLength"),
    "azure-servicebus": ("messageCount", 5, "activationMessageCount"),
    "azure-queue": ("queueLength", 5, "activationQueueLength"),
    "redis": ("listLength", 5, "activationListLength"),
    "redis-streams": ("pendingEntriesCount", 5, "activationLagCount"),
    "gcp-pubsub": ("value", 10, "activationValue"),
    "nats-jetstream": ("lagThreshold", None, "activationLagThreshold"),
    "postgresql": ("targetQueryValue", None, "activationTargetQueryValue"),
    "mysql": ("queryValue", None, "activationQueryValue"),
    "metrics-api": ("targetValue", None, "activationTargetValue"),
    "datadog": ("queryValue", None, "activationQueryValue"),
    "new-relic": ("threshold", None, "activationThreshold"),
    "influxdb": ("thresholdValue", None, "activationThresholdValue"),
    "cpu": ("value", None, ""),
    "memory": ("value", None, ""),
}


@dataclass(frozen=True, slots=True)
class Keda:
    hpa: Hpa
    min_count: Val
    polling: Val
    cooldown: Val
    notes: tuple[str, ...]


def parse_keda(docs: list[Node]) -> Keda:
    doc = find_kind(docs, ("ScaledObject",), ("keda.sh/v1alpha1",))
    meta = doc.get("metadata")
    name_node = meta.get("name") if meta is not None else None
    name = name_node.text() if name_node is not None else "scaledobject"
    spec = doc.require("spec", "a ScaledObject needs `spec:` with scaleTargetRef and triggers")
    ref = spec.require("scaleTargetRef", "name the Deployment it scales")
    target = ref.require("name").text()

    polling = _seconds_field(
        spec, "pollingInterval", 30, f"{TYPES}/withtriggers_types.go defaultPollingInterval"
    )
    cooldown = _seconds_field(spec, "cooldownPeriod", 300, f"{EXECUTOR} defaultCooldownPeriod")
    min_node = spec.get("minReplicaCount")
    if min_node is not None:
        min_count = Val(min_node.integer(lo=0), origin(min_node))
    else:
        min_count = Val(0, default("minReplicaCount 0", "keda docs, scaledobject-spec"))
    max_node = spec.get("maxReplicaCount")
    if max_node is not None:
        max_count = Val(max_node.integer(lo=1), origin(max_node))
    else:
        max_count = Val(
            100,
            default("maxReplicaCount 100", f"{TYPES}/scaledobject_types.go defaultHPAMaxReplicas"),
        )
    if max_count.value < max(min_count.value, 1):
        where = max_node if max_node is not None else spec
        raise where.fail(
            f"maxReplicaCount ({num(max_count.value)}) is below minReplicaCount ({num(min_count.value)})"
        )
    hpa_min = Val(
        max(min_count.value, 1),
        f"HPA minReplicas = max(minReplicaCount, 1) ({TYPES}/scaledobject_types.go GetHPAMinReplicas); "
        + min_count.note,
    )

    triggers = spec.require("triggers", "list at least one trigger, e.g. `- type: prometheus`")
    items = triggers.items()
    if not items:
        raise triggers.fail("`spec.triggers` is empty", "list at least one trigger")
    metrics: list[Metric] = []
    seen: set[str] = set()
    for item in items:
        m = _trigger(item)
        base, k = m.name, 2
        while m.name in seen:
            m = Metric(f"{base}_{k}", m.label, m.mode, m.target, m.unit, m.note, m.activation)
            k += 1
        seen.add(m.name)
        metrics.append(m)

    advanced = spec.get("advanced")
    hpa_config = advanced.get("horizontalPodAutoscalerConfig") if advanced is not None else None
    behavior = hpa_config.get("behavior") if hpa_config is not None else None
    up, down = parse_behavior(behavior)
    notes: list[str] = []
    if spec.get("fallback") is not None:
        notes.append(
            f"fallback ({origin(spec.require('fallback'))}) is not modelled: it acts on scaler errors"
        )
    if spec.get("idleReplicaCount") is not None:
        notes.append(
            f"idleReplicaCount ({origin(spec.require('idleReplicaCount'))}) replaces 0 as the idle count"
        )
        idle = spec.require("idleReplicaCount").integer(lo=0)
        min_count = Val(idle, origin(spec.require("idleReplicaCount")))
    title = f"KEDA ScaledObject {name} scaling Deployment {target}"
    hpa = Hpa(
        ident(name, "scaledobject"),
        title,
        hpa_min,
        max_count,
        tuple(metrics),
        origin(triggers),
        up,
        down,
    )
    return Keda(hpa, min_count, polling, cooldown, tuple(notes))


def _seconds_field(spec: Node, key: str, fallback: int, source: str) -> Val:
    node = spec.get(key)
    if node is None:
        return Val(fallback, default(f"{key} {fallback}s", source))
    return Val(node.integer(lo=1), origin(node))


def _trigger(item: Node) -> Metric:
    type_node = item.require("type", "for example `type: prometheus`")
    kind = type_node.text()
    if kind not in TRIGGERS:
        raise type_node.fail(
            f"unsupported trigger type `{kind}`", f"supported: {', '.join(sorted(TRIGGERS))}"
        )
    key, fallback, activation_key = TRIGGERS[kind]
    metadata = item.require("metadata", f"a {kind} trigger needs `metadata:`")
    name_node = item.get("name")
    metric_type_node = item.get("metricType")
    metric_type = metric_type_node.text() if metric_type_node is not None else "AverageValue"
    allowed = (
        ("Utilization", "AverageValue") if kind in ("cpu", "memory") else ("AverageValue", "Value")
    )
    if metric_type not in allowed:
        where = metric_type_node if metric_type_node is not None else item
        raise where.fail(
            f"a {kind} trigger cannot have metricType `{metric_type}`",
            f"use {' or '.join(allowed)}",
        )
    value_node = metadata.get(key)
    if value_node is not None:
        target = Val(value_node.number(), origin(value_node))
    elif fallback is not None:
        target = Val(fallback, default(f"{key} {num(fallback)}", f"keda {kind} scaler"))
    else:
        raise metadata.fail(
            f"the {kind} trigger has no `metadata.{key}`", f"set `{key}:`, the target value"
        )
    if target.value <= 0:
        raise metadata.fail(f"`metadata.{key}` must be positive")
    activation: Val | None = None
    if activation_key:
        act = metadata.get(activation_key)
        activation = (
            Val(act.number(), origin(act))
            if act is not None
            else Val(0, default(f"{activation_key} 0", f"keda {kind} scaler"))
        )
    base = name_node.text() if name_node is not None else kind
    if kind in ("cpu", "memory"):
        mode, unit = "per_pod", "% of request" if metric_type == "Utilization" else ""
    else:
        mode, unit = ("total" if metric_type == "AverageValue" else "value"), ""
    label = f"{kind} trigger, {metric_type} {key}"
    return Metric(ident(base), label, mode, target, unit, origin(item), activation)


def write_keda_spec(k: Keda, source: str) -> str:
    h = k.hpa
    w = SpecWriter()
    ref = reference_replicas(h)
    tick = float(math.gcd(int(SYNC), int(k.polling.value)))
    scale_to_zero = k.min_count.value < h.min_replicas.value
    w.comment(f"Generated by `coherence import keda {source}` from the {h.title}.")
    w.comment("Each line says where its value came from: `from FILE:LINE FIELD` (the YAML),")
    w.comment("`default: ...` (KEDA's or the HPA controller's default and where it is defined), or")
    w.comment(f"`{PLACEHOLDER}` (a model of your service for you to replace).")
    w.comment("KEDA hands 1..N scaling to the HPA it creates (loop `hpa`, every 15 s) and scales")
    w.comment(
        "0 <-> 1 itself (loop `keda`, every pollingInterval); cooldownPeriod applies to N -> 0 only."
    )
    for note in k.notes:
        w.comment(note)
    w.blank()
    w.open(f"system {h.name} {quote(h.title)}")
    w.line(
        f"tick {seconds(tick)}",
        f"derived: gcd of the HPA sync period (15s) and pollingInterval ({k.polling.note})",
    )
    w.blank()
    w.comment(f"---- {PLACEHOLDER} plant: replace with how your service responds --------------")
    w.line(
        "input load : 1 in [0, 3] nominal 1",
        f"{PLACEHOLDER}: offered load; 1 = what {ref} replicas serve at the targets; 0 = idle",
    )
    write_metric_plant(w, h, ref, "max(1, replicas)")
    w.blank()
    cap = 10 * int(h.max_replicas.value)
    w.line(
        f"state replicas integer in [0, {cap}] init {ref}",
        f"model: what anyone may scale the target to ({PLACEHOLDER}: your capacity, here 10 x "
        f"maxReplicaCount); KEDA's and the HPA's counts are bounded in their own laws "
        f"({(k.min_count if scale_to_zero else h.min_replicas).note}; {h.max_replicas.note}); "
        f"init {PLACEHOLDER}",
    )
    if scale_to_zero:
        w.line(
            f"state idle_for : s in [0, {num(k.cooldown.value + k.polling.value)}] init 0",
            "model: time since a trigger was last active (KEDA's lastActiveTime)",
        )
        triggers = [
            f"{m.name} > {m.name}_activation" for m in h.metrics if m.activation is not None
        ]
        active = balanced("or", triggers) if triggers else "load > 0"
        for m in h.metrics:
            if m.activation is not None:
                w.line(f"param {m.name}_activation = {num(m.activation.value)}", m.activation.note)
        w.line(f"let active = {active}", "model: a trigger is active above its activation value")
        w.line(
            f"next idle_for = if active then 0 else min(idle_for + tick, {num(k.cooldown.value + k.polling.value)}s)",
            "formula: LastActiveTime (keda pkg/scaling/scale_scaledobjects.go)",
        )
        w.line(f"param cooldown = {seconds(k.cooldown.value)}", k.cooldown.note)
    write_hpa_loop(
        w,
        h,
        ref,
        guard=(
            "replicas >= 1",
            f"the HPA acts on a scaled-up target; KEDA owns 0 <-> 1; {h.min_replicas.note}",
        )
        if scale_to_zero
        else None,
    )
    if scale_to_zero:
        w.blank()
        w.open(
            'loop keda "KEDA operator: activation (0 -> 1) and scale to zero after cooldownPeriod"'
        )
        w.line(f"every {seconds(k.polling.value)}", k.polling.note)
        w.line(
            f"actuates replicas to if active then max(replicas, {num(h.min_replicas.value)}) "
            f"else (if idle_for >= cooldown then {num(k.min_count.value)} else replicas)",
            f"formula: scaleFromZero / scaleToZero ({EXECUTOR}); {k.min_count.note}",
        )
        w.close()
    w.blank()
    w.line("require stable", f"{PLACEHOLDER}: what you require of these loops")
    w.line("require no flapping of replicas max 2 within 10min", PLACEHOLDER)
    w.close()
    return w.render()
