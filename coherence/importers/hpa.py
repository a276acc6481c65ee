"""Kubernetes HorizontalPodAutoscaler (autoscaling/v2, v2beta2, v1) to spec loop declarations.

:func:`parse_hpa` reads the object into an :class:`Hpa` (every value with its origin);
:func:`write_hpa_loop` emits the loop, shared with the KEDA importer (KEDA creates an HPA).
The replica law is the HPA's own (pkg/controller/podautoscaler/replica_calculator.go): per
metric a usage ratio r, ``desired = ceil(r * currentReplicas)`` unless ``|r - 1| <=
tolerance``, the largest proposal over the metrics, then the stabilization windows
(``stabilize``) and the scaling policies (``rate``). Defaults are the controller's
(docs/defaults.md section 1).
"""

from __future__ import annotations

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

SYNC = 15.0
TOLERANCE = 0.1
DOWN_WINDOW = 300.0
KCM = "kube-controller-manager, pkg/controller/podautoscaler/config/v1alpha1/defaults.go"
API = "pkg/apis/autoscaling/v2/defaults.go"
API_VERSIONS = ("autoscaling/v2", "autoscaling/v2beta2", "autoscaling/v1")


@dataclass(frozen=True, slots=True)
class Val:
    """A value and the comment that says where it came from."""

    value: float
    note: str


@dataclass(frozen=True, slots=True)
class Policy:
    type: str  # Pods | Percent
    value: float
    period: float
    note: str


@dataclass(frozen=True, slots=True)
class Rules:
    """One direction of ``spec.behavior``: window, policies, select policy, tolerance."""

    window: Val
    policies: tuple[Policy, ...]
    select: str
    select_note: str
    tolerance: Val


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric source. ``mode`` says how the HPA forms its usage ratio from the value m:
    ``per_pod`` and ``value``: m / target; ``total``: m / (target x replicas)."""

    name: str
    label: str
    mode: str
    target: Val
    unit: str
    note: str
    activation: Val | None = None


@dataclass(frozen=True, slots=True)
class Hpa:
    name: str
    title: str
    min_replicas: Val
    max_replicas: Val
    metrics: tuple[Metric, ...]
    metrics_note: str
    up: Rules
    down: Rules


# ---- reading ------------------------------------------------------------------------------


def parse_hpa(docs: list[Node]) -> Hpa:
    doc = find_kind(docs, ("HorizontalPodAutoscaler",), API_VERSIONS)
    version = doc.require("apiVersion").text()
    meta = doc.get("metadata")
    name_node = meta.get("name") if meta is not None else None
    name = name_node.text() if name_node is not None else "hpa"
    spec = doc.require("spec", "an HPA needs `spec:` with maxReplicas and scaleTargetRef")
    ref = spec.require("scaleTargetRef", "name the Deployment or StatefulSet it scales")
    ref_kind = ref.get("kind")
    ref_name = ref.require("name").text()
    target = f"{ref_kind.text() if ref_kind is not None else 'Deployment'} {ref_name}"
    lo, hi = replica_bounds(spec, "minReplicas", "maxReplicas")
    metrics: tuple[Metric, ...]
    if version == "autoscaling/v1":
        metrics = (_v1_metric(spec),)
        up, down = parse_behavior(None)
        note = metrics[0].note
    else:
        metrics = _metrics(spec)
        up, down = parse_behavior(spec.get("behavior"))
        node = spec.get("metrics")
        note = origin(node) if node is not None else metrics[0].note
    title = f"HorizontalPodAutoscaler {name} ({version}) scaling {target}"
    return Hpa(ident(name, "hpa"), title, lo, hi, metrics, note, up, down)


def replica_bounds(spec: Node, lo_key: str, hi_key: str, lo_default: int = 1) -> tuple[Val, Val]:
    lo_node = spec.get(lo_key)
    if lo_node is not None:
        lo = Val(lo_node.integer(lo=1), origin(lo_node))
    else:
        lo = Val(lo_default, default(f"{lo_key} {lo_default}", API))
    hi_node = spec.require(hi_key, f"set `{hi_key}:`, the most replicas the autoscaler may run")
    hi = Val(hi_node.integer(lo=1), origin(hi_node))
    if hi.value < lo.value:
        raise hi_node.fail(
            f"`{hi_key}` ({num(hi.value)}) is below `{lo_key}` ({num(lo.value)})",
            f"{hi_key} must be at least {lo_key}",
        )
    return lo, hi


def _v1_metric(spec: Node) -> Metric:
    node = spec.get("targetCPUUtilizationPercentage")
    if node is not None:
        target = Val(node.integer(lo=1), origin(node))
    else:
        target = Val(80, default("targetCPUUtilizationPercentage 80", "autoscaling/v1 defaults"))
    return Metric(
        "cpu", "Resource cpu, averageUtilization", "per_pod", target, "% of request", target.note
    )


def _metrics(spec: Node) -> tuple[Metric, ...]:
    node = spec.get("metrics")
    if node is None:
        note = default("cpu averageUtilization 80", f"{API} SetDefaults_HorizontalPodAutoscaler")
        return (
            Metric(
                "cpu",
                "Resource cpu, averageUtilization",
                "per_pod",
                Val(80, note),
                "% of request",
                note,
            ),
        )
    items = node.items()
    if not items:
        raise node.fail(
            "`spec.metrics` is empty", "list at least one metric, or leave it out for cpu 80%"
        )
    out: list[Metric] = []
    seen: set[str] = set()
    for item in items:
        m = parse_metric(item)
        name = m.name
        k = 2
        while name in seen:
            name, k = f"{m.name}_{k}", k + 1
        seen.add(name)
        out.append(Metric(name, m.label, m.mode, m.target, m.unit, m.note))
    return tuple(out)


_SOURCES = {
    "Resource": ("resource", ("Utilization", "AverageValue")),
    "ContainerResource": ("containerResource", ("Utilization", "AverageValue")),
    "Pods": ("pods", ("AverageValue",)),
    "Object": ("object", ("Value", "AverageValue")),
    "External": ("external", ("Value", "AverageValue")),
}


def parse_metric(item: Node) -> Metric:
    type_node = item.require("type", "one of Resource, ContainerResource, Pods, Object, External")
    kind = type_node.text()
    if kind not in _SOURCES:
        raise type_node.fail(
            f"unsupported metric type `{kind}`",
            "supported: Resource, ContainerResource, Pods, Object, External",
        )
    key, targets = _SOURCES[kind]
    source = item.require(key, f"a {kind} metric needs `{key}:`")
    if kind in ("Resource", "ContainerResource"):
        metric = source.require("name", "cpu or memory").text()
        if kind == "ContainerResource":
            metric = f"{source.require('container').text()}_{metric}"
    else:
        metric = (
            source.require("metric", "name the metric: `metric: {name: ...}`")
            .require("name")
            .text()
        )
    target = source.require(
        "target", "for example `target: {type: AverageValue, averageValue: 10}`"
    )
    ttype_node = target.require("type", f"one of {', '.join(targets)}")
    ttype = ttype_node.text()
    if ttype not in targets:
        raise ttype_node.fail(
            f"a {kind} metric cannot have a target of type `{ttype}`", f"use {' or '.join(targets)}"
        )
    field_name = {
        "Utilization": "averageUtilization",
        "AverageValue": "averageValue",
        "Value": "value",
    }[ttype]
    value_node = target.require(field_name, f"a {ttype} target sets `{field_name}`")
    value = value_node.number()
    if value <= 0:
        raise value_node.fail(f"`{value_node.path}` must be positive")
    mode = (
        "total"
        if kind in ("Object", "External") and ttype == "AverageValue"
        else ("value" if ttype == "Value" else "per_pod")
    )
    unit = "% of request" if ttype == "Utilization" else ""
    label = f"{kind} {metric}, {field_name}"
    return Metric(ident(metric), label, mode, Val(value, origin(value_node)), unit, origin(item))


def parse_behavior(node: Node | None) -> tuple[Rules, Rules]:
    """``spec.behavior`` with the API's and the controller's defaults filled in."""
    up_node = node.get("scaleUp") if node is not None else None
    down_node = node.get("scaleDown") if node is not None else None
    up = _rules(
        up_node,
        "scaleUp",
        Val(0, default("stabilizationWindowSeconds 0", f"{API} scaleUpStabilizationSeconds")),
        (
            Policy("Pods", 4, 15, default("Pods 4 per 15s", f"{API} defaultHPAScaleUpRules")),
            Policy(
                "Percent", 100, 15, default("Percent 100 per 15s", f"{API} defaultHPAScaleUpRules")
            ),
        ),
    )
    down = _rules(
        down_node,
        "scaleDown",
        Val(DOWN_WINDOW, default("300s, --horizontal-pod-autoscaler-downscale-stabilization", KCM)),
        (
            Policy(
                "Percent",
                100,
                15,
                default("Percent 100 per 15s", f"{API} defaultHPAScaleDownRules"),
            ),
        ),
    )
    return up, down


def _rules(node: Node | None, which: str, window: Val, policies: tuple[Policy, ...]) -> Rules:
    select, select_note = "Max", default("selectPolicy Max", API)
    tolerance = Val(TOLERANCE, default("0.1, --horizontal-pod-autoscaler-tolerance", KCM))
    if node is None:
        return Rules(window, policies, select, select_note, tolerance)
    w = node.get("stabilizationWindowSeconds")
    if w is not None:
        seconds_ = w.integer(lo=0)
        if seconds_ > 3600:
            raise w.fail(f"`{w.path}` must be at most 3600 (one hour), not {seconds_}")
        window = Val(seconds_, origin(w))
    s = node.get("selectPolicy")
    if s is not None:
        select = s.text()
        if select not in ("Max", "Min", "Disabled"):
            raise s.fail(f"unknown selectPolicy `{select}`", "one of Max, Min, Disabled")
        select_note = origin(s)
    p = node.get("policies")
    if p is not None:
        parsed: list[Policy] = []
        for item in p.items():
            t = item.require("type", "Pods or Percent")
            if t.text() not in ("Pods", "Percent"):
                raise t.fail(f"unknown policy type `{t.text()}`", "one of Pods, Percent")
            v = item.require("value").integer(lo=1)
            period = item.require("periodSeconds", "for example `periodSeconds: 15`")
            seconds_ = period.integer(lo=1)
            if seconds_ > 1800:
                raise period.fail(f"`{period.path}` must be at most 1800, not {seconds_}")
            parsed.append(Policy(t.text(), v, seconds_, origin(item)))
        if not parsed and select != "Disabled":
            raise p.fail(f"`{p.path}` is empty", "list a policy or set selectPolicy: Disabled")
        policies = tuple(parsed)
    tol = node.get("tolerance")
    if tol is not None:
        tolerance = Val(tol.number(), origin(tol))
    return Rules(window, policies, select, select_note, tolerance)


# ---- writing ------------------------------------------------------------------------------


def reference_replicas(h: Hpa) -> int:
    """The replica count the placeholder plant is sized for: the middle of the range."""
    return max(
        int(h.min_replicas.value), int((h.min_replicas.value + h.max_replicas.value) / 2 + 0.5)
    )


def write_metric_plant(w: SpecWriter, h: Hpa, ref: int, replicas_expr: str = "replicas") -> None:
    """Placeholder lets: how each metric responds to the offered load and the replica count."""
    for m in h.metrics:
        total = m.target.value * ref
        unit = f" ({m.unit})" if m.unit else ""
        if m.mode == "total":
            w.line(
                f"param {m.name}_at_load_1 = {num(total)}",
                f"{PLACEHOLDER}: fleet-wide {m.label.split(',')[0]}{unit} at load 1",
            )
            w.line(
                f"let {m.name} = load * {m.name}_at_load_1",
                f"{PLACEHOLDER}: a total, independent of replicas",
            )
        else:
            w.line(
                f"param {m.name}_at_load_1 = {num(total)}",
                f"{PLACEHOLDER}: {m.label.split(',')[0]}{unit} summed over the pods at load 1",
            )
            w.line(
                f"let {m.name} = load * {m.name}_at_load_1 / {replicas_expr}",
                f"{PLACEHOLDER}: what each pod reports, on average",
            )


def _ratio(m: Metric) -> str:
    target = f"{m.name}_target"
    return f"{m.name} / ({target} * replicas)" if m.mode == "total" else f"{m.name} / {target}"


def _proposal(m: Metric, up: Rules, down: Rules) -> str:
    r = _ratio(m)
    if up.tolerance.value == down.tolerance.value:
        moves = f"abs({r} - 1) > tol"
    else:
        moves = f"{r} > 1 + tol_up or {r} < 1 - tol_down"
    return f"if {moves} then ceil(replicas * {r}) else replicas"


def _rate(rules: Rules, ref: int, lo: float, hi: float) -> tuple[str, str]:
    """The `rate` side for one direction, and the comment saying where it came from."""
    if rules.select == "Disabled":
        return "0", f"selectPolicy Disabled, {rules.select_note}"

    def chosen_at(r: float) -> Policy:
        """The policy the HPA applies at r replicas (the larger or smaller allowed change)."""
        limits = [
            (p.value if p.type == "Pods" else p.value / 100 * r, i)
            for i, p in enumerate(rules.policies)
        ]
        best = max(limits) if rules.select == "Max" else min(limits)
        return rules.policies[best[1]]

    chosen = chosen_at(ref)
    text = f"{num(chosen.value)}%" if chosen.type == "Percent" else num(chosen.value)
    notes = [chosen.note]
    if len(rules.policies) > 1 and any(chosen_at(r) is not chosen for r in (lo, hi)):
        notes.append(
            f"approximation: selectPolicy {rules.select} over {len(rules.policies)} policies "
            f"is exact only near {ref} replicas"
        )
    return text, "; ".join(notes)


def _exact_policies(h: Hpa) -> bool:
    """Whether the `stabilize` and `rate` clauses say exactly what the HPA's policies do: every
    policy of a direction that may scale has a period of one sync. A longer period limits the
    change since the period began (the HPA keeps its scale events for ``periodSeconds``), which
    a per-action `rate` cannot say; the law then carries the whole normalization."""
    return all(
        p.period <= SYNC for r in (h.up, h.down) if r.select != "Disabled" for p in r.policies
    )


def _then(p: Policy) -> str:
    """The replica count at the start of the policy's period, as the HPA sees it at a sync.

    horizontal.go counts the scale events recorded after ``now - periodSeconds``; the event of
    the sync ``ceil(periodSeconds / sync)`` syncs back is recorded a little after that sync
    began and the syncs are ``sync`` apart after each one ends, so it has left the period:
    the period began with the count ``ceil(P / sync) - 1`` syncs back. For ``P = sync`` that is
    the current count (a per-action rate).
    """
    back = -(-p.period // SYNC) - 1
    return f"delay(replicas, {seconds(back * SYNC)})" if back > 0 else "replicas"


def _limit(rules: Rules, up: bool) -> tuple[str, str]:
    """The HPA's scale-up (or scale-down) limit from the policies: ``(expr, note)``."""
    if rules.select == "Disabled":
        return "replicas", f"selectPolicy Disabled, {rules.select_note}"
    proposals = []
    for p in rules.policies:
        then = _then(p)
        if p.type == "Pods":
            proposals.append(f"{then} {'+' if up else '-'} {num(p.value)}")
        elif up:
            proposals.append(f"ceil({then} * {num(1 + p.value / 100)})")
        else:
            proposals.append(f"floor({then} * {num(1 - p.value / 100)})")
    # selectPolicy Max takes the largest change: the highest limit up, the lowest down
    op = ("max" if up else "min") if rules.select == "Max" else ("min" if up else "max")
    limit = balanced(op, proposals)
    # the HPA never reverses direction to honour a policy (scaleUpLimit < current -> current)
    expr = f"max(replicas, {limit})" if up else f"min(replicas, {limit})"
    notes = "; ".join(p.note for p in rules.policies)
    return expr, f"selectPolicy {rules.select} ({rules.select_note}) over {notes}"


def _window(w: SpecWriter, prefix: str, op: str, base: str, n: int, note: str) -> str:
    """``op`` (max or min) of ``base`` over its last ``n`` sync periods, as lets of delays.

    Blocks double (``B2 = op(B1, delay(B1, 1 sync))``, ``B4`` from ``B2``...) and the window is
    the blocks of the binary digits of n, each delayed past the more recent ones: n - 1 delay
    registers, the same count as a `stabilize` history, in about 2 log2(n) lines.
    """
    if n <= 1:
        return base
    blocks = {1: base}
    size = 1
    while size * 2 <= n:
        name = f"{prefix}_{size * 2}"
        w.line(
            f"let {name} = {op}({blocks[size]}, delay({blocks[size]}, {seconds(size * SYNC)}))",
            f"derived: {op} over the last {size * 2} syncs ({note})",
        )
        size *= 2
        blocks[size] = name
    parts = [b for b in sorted(blocks, reverse=True) if n & b]
    expr = blocks[parts[0]]
    covered = parts[0]
    for b in parts[1:]:  # the older blocks are delayed past the newer ones
        expr = f"{op}({blocks[b]}, delay({expr}, {seconds(b * SYNC)}))"
        covered += b
    assert covered == n
    if len(parts) > 1:
        w.line(f"let {prefix} = {expr}", f"derived: {op} over the last {n} syncs ({note})")
        return prefix
    return expr


def write_hpa_loop(
    w: SpecWriter,
    h: Hpa,
    ref: int,
    loop_name: str = "hpa",
    sync_note: str = default("15s, --horizontal-pod-autoscaler-sync-period", KCM),
    guard: tuple[str, str] | None = None,
) -> None:
    up, down = h.up, h.down
    if up.tolerance.value == down.tolerance.value:
        w.line(f"param tol = {num(up.tolerance.value)}", up.tolerance.note)
    else:
        w.line(f"param tol_up = {num(up.tolerance.value)}", up.tolerance.note)
        w.line(f"param tol_down = {num(down.tolerance.value)}", down.tolerance.note)
    for m in h.metrics:
        w.line(f"param {m.name}_target = {num(m.target.value)}", m.target.note)
    w.line(f"param min_replicas = {num(h.min_replicas.value)}", h.min_replicas.note)
    w.line(f"param max_replicas = {num(h.max_replicas.value)}", h.max_replicas.note)
    proposals = [_proposal(m, up, down) for m in h.metrics]
    desired = balanced("max", proposals)
    desired_note = (
        f"{h.metrics_note}; formula: ceil(ratio x replicas) outside the tolerance"
        + (", the largest proposal over the metrics" if len(proposals) > 1 else "")
        + " (pkg/controller/podautoscaler/replica_calculator.go, horizontal.go)"
    )
    # horizontal.go reconcileAutoscaler: a count outside [minReplicas, maxReplicas] (set by
    # someone else) is brought to the nearest bound at once, without stabilization or policies
    outside = (
        "if replicas > max_replicas then max_replicas "
        "else if replicas < min_replicas then min_replicas else "
    )
    outside_note = (
        "formula: minReplicas/maxReplicas bound the HPA's own desired count, and a count "
        "outside them goes to the nearest bound at the next sync (horizontal.go)"
    )
    exact = _exact_policies(h)
    if not exact:
        w.blank()
        w.comment(
            "the HPA's normalization (horizontal.go): stabilization windows over the desired "
            "counts, then the policies' limits measured from the start of each policy's period"
        )
        d = f"{loop_name}_desired"
        w.line(
            f"let {d} = min(max({desired}, min_replicas), max_replicas)",
            desired_note + "; clamped to minReplicas/maxReplicas",
        )
        windows = {}
        for direction, rules, op in (("up", up, "min"), ("down", down, "max")):
            periods = int(-(-rules.window.value // SYNC))
            note = rules.window.note
            if periods * SYNC != rules.window.value:
                note += f"; rounded up to {periods} sync periods"
            if periods <= 0:
                w.comment(f"no {direction} stabilization: {rules.window.note}")
            windows[direction] = _window(
                w, f"{loop_name}_{direction}", op, d, max(periods, 1), note
            )
        up_limit, up_note = _limit(up, True)
        down_limit, down_note = _limit(down, False)
    w.blank()
    w.open(f"loop {loop_name} {quote(h.title)}")
    w.line(f"every {seconds(SYNC)}", sync_note)
    if guard is not None:
        w.line(f"when {guard[0]}", guard[1])
    for m in h.metrics:
        w.line(f"senses {m.name}", f"{m.note} ({m.label})")
    if exact:
        law = f"min(max({desired}, min_replicas), max_replicas)"
        w.line(f"actuates replicas to {outside}{law}", f"{desired_note}; {outside_note}")
        lo, hi = h.min_replicas.value, h.max_replicas.value
        up_rate, up_note = _rate(up, ref, lo, hi)
        down_rate, down_note = _rate(down, ref, lo, hi)
        w.line(f"rate up {up_rate} down {down_rate}", f"up: {up_note}; down: {down_note}")
        for direction, rules in (("up", up), ("down", down)):
            seconds_ = rules.window.value
            if seconds_ <= 0:
                w.comment(f"no {direction} stabilization: {rules.window.note}")
                continue
            syncs = -(-seconds_ // SYNC)
            note = rules.window.note
            if syncs * SYNC != seconds_:
                note += f"; rounded up to {num(syncs)} sync periods"
            w.line(f"stabilize {direction} {seconds(syncs * SYNC)}", note)
    else:
        stab = f"min(max(replicas, {windows['up']}), {windows['down']})"
        law = f"min(max({stab}, max(min_replicas, {down_limit})), min(max_replicas, {up_limit}))"
        w.line(
            f"actuates replicas to {outside}{law}",
            f"formula: the stabilized recommendation within the policies' limits "
            f"(horizontal.go stabilizeRecommendationWithBehaviors, "
            f"convertDesiredReplicasWithBehaviorRate); up: {up_note}; down: {down_note}; "
            f"{outside_note}",
        )
    w.close()


def write_hpa_spec(h: Hpa, source: str) -> str:
    w = SpecWriter()
    ref = reference_replicas(h)
    w.comment(f"Generated by `coherence import hpa {source}` from the {h.title}.")
    w.comment("Each line says where its value came from: `from FILE:LINE FIELD` (the YAML),")
    w.comment("`default: ...` (the controller's default and where it is defined), or")
    w.comment(f"`{PLACEHOLDER}` (a model of your service for you to replace: the offered load and")
    w.comment("how each metric responds to it and to the replica count).")
    w.blank()
    w.open(f"system {h.name} {quote(h.title)}")
    w.line(f"tick {seconds(SYNC)}", default("15s, one HPA sync period", KCM))
    w.blank()
    w.comment(f"---- {PLACEHOLDER} plant: replace with how your service responds --------------")
    w.line(
        "input load : 1 in [0, 3] nominal 1",
        f"{PLACEHOLDER}: offered load; 1 = what {ref} replicas serve at the targets",
    )
    write_metric_plant(w, h, ref, "max(1, replicas)")
    w.blank()
    cap = 10 * int(h.max_replicas.value)
    w.line(
        f"state replicas integer in [0, {cap}] init {ref}",
        f"model: what anyone may scale the target to ({PLACEHOLDER}: your capacity, here 10 x "
        f"maxReplicas); minReplicas/maxReplicas bound the HPA's own count (below); "
        f"init {PLACEHOLDER}",
    )
    write_hpa_loop(
        w,
        h,
        ref,
        guard=(
            "replicas >= 1",
            "the HPA leaves a target scaled to zero alone (horizontal.go: ScalingDisabled)",
        ),
    )
    w.blank()
    w.line("require stable", f"{PLACEHOLDER}: what you require of this loop")
    w.line("require no flapping of replicas max 2 within 10min", PLACEHOLDER)
    w.close()
    return w.render()
