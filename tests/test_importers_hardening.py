"""Hostile YAML for the importers (issue 30): located errors, never a traceback, and never
spec text injected from a name."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from coherence.compile import compile_text
from coherence.importers import import_file
from coherence.importers.yamlsrc import MAX_YAML_DEPTH, ImportFailure

pytest.importorskip("yaml")

HEAD = """apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
"""


def _write(tmp_path: Path, text: str, name: str = "in.yaml") -> str:
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def _compiles(text: str) -> list[str]:
    result = compile_text("gen.coh", text)
    assert result.ok, [d.message for d in result.diagnostics]
    return [ts.name for ts in result.systems]


def test_deep_yaml_is_a_located_error(tmp_path: Path) -> None:
    # import_deep_nesting.yaml: RecursionError in the YAML composer
    path = _write(tmp_path, HEAD + "  maxReplicas: 10\n  metrics: " + "[" * 700 + "]" * 700 + "\n")
    with pytest.raises(ImportFailure) as err:
        import_file("hpa", path)
    assert (err.value.loc.line, err.value.loc.column) == (7, 12 + MAX_YAML_DEPTH)
    assert "nested" in err.value.message


def test_brackets_in_quotes_and_comments_do_not_count(tmp_path: Path) -> None:
    deep = "[" * 100
    text = HEAD + f'  maxReplicas: 10   # {deep}\n  minReplicas: 1\n# "{deep}"\n'
    assert "system web" in import_file("hpa", _write(tmp_path, text))


@pytest.mark.parametrize("value", ["1e308", "1e400", "2147483648"])
def test_astronomical_replica_counts_are_located(tmp_path: Path, value: str) -> None:
    # import_max_1e308.yaml: OverflowError
    with pytest.raises(ImportFailure) as err:
        import_file("hpa", _write(tmp_path, HEAD + f"  maxReplicas: {value}\n"))
    assert (err.value.loc.line, err.value.loc.column) == (6, 16)


def test_a_metric_name_cannot_inject_spec_text(tmp_path: Path) -> None:
    # import_metric_name_injection.yaml
    text = HEAD + (
        "  maxReplicas: 10\n  metrics:\n  - type: Pods\n"
        '    pods: {metric: {name: "q\\n  objective keep injected = replicas <= 1\\n#"}, '
        "target: {type: AverageValue, averageValue: 5}}\n"
    )
    spec = import_file("hpa", _write(tmp_path, text))
    result = compile_text("gen.coh", spec)
    assert result.ok
    (ts,) = result.systems
    assert not any(o.name.split(".")[-1] == "injected" for o in ts.objectives)
    assert not any(line.lstrip().startswith("objective keep") for line in spec.splitlines())
    assert "q\\n  objective keep injected" in spec  # shown, escaped, in a comment


def test_an_object_name_cannot_inject_a_system(tmp_path: Path) -> None:
    # import_name_injection.yaml
    text = HEAD.replace("{name: web}", '{name: "web }\\nsystem evil { tick 1s }\\n# "}')
    spec = import_file("hpa", _write(tmp_path, text + "  maxReplicas: 10\n"))
    assert len(_compiles(spec)) == 1


def _keda(n: int) -> str:
    triggers = "".join(
        f"  - type: prometheus\n    metadata: {{serverAddress: x, query: q{i}, threshold: '5'}}\n"
        for i in range(n)
    )
    return (
        "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata: {name: w}\nspec:\n"
        "  scaleTargetRef: {name: w}\n  minReplicaCount: 0\n  triggers:\n" + triggers
    )


def test_keda_with_65_triggers_compiles(tmp_path: Path) -> None:
    # import_keda_65_triggers.yaml: a 65-argument max / a 65-deep `or` did not compile
    assert _compiles(import_file("keda", _write(tmp_path, _keda(65)))) == ["w"]


def test_hpa_with_65_metrics_compiles(tmp_path: Path) -> None:
    metrics = "".join(
        f"  - type: Pods\n    pods: {{metric: {{name: m{i}}}, "
        "target: {type: AverageValue, averageValue: 5}}\n"
        for i in range(65)
    )
    text = HEAD + "  maxReplicas: 10\n  metrics:\n" + metrics
    assert _compiles(import_file("hpa", _write(tmp_path, text))) == ["web"]


def test_a_multi_document_file_says_what_it_does_not_import(tmp_path: Path) -> None:
    other = HEAD.replace("name: web}", "name: api}", 1) + "  maxReplicas: 4\n"
    path = _write(tmp_path, HEAD + "  maxReplicas: 10\n---\n" + other)
    warnings: list[ImportFailure] = []
    spec = import_file("hpa", path, warnings)
    (w,) = warnings
    assert w.loc.line == 8 and "`api`" in w.message and "not imported" in w.message
    assert spec.startswith("# NOT IMPORTED: in.yaml:8:")
    assert _compiles(spec) == ["web"]


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "hpa.yaml"
    os.mkfifo(fifo)
    start = time.monotonic()
    with pytest.raises(ImportFailure, match="FIFO"):
        import_file("hpa", str(fifo))
    assert time.monotonic() - start < 5
