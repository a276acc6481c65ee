"""Importers: autoscaler configuration (YAML) to the loop declarations of a spec.

``coherence import hpa|keda|knative FILE.yaml [--out FILE]`` turns a Kubernetes
HorizontalPodAutoscaler, a KEDA ScaledObject or a Knative Service's autoscaling annotations
into a complete, compilable spec: the controller's loop exactly as it runs, its built-in
defaults filled in where the YAML leaves a field out, every generated line commented with the
YAML line it came from (or the default and where it is defined), and a placeholder plant
for the user to replace. Malformed or unsupported YAML is a located error
(``FILE:LINE:COL: error: ...`` and a hint), exit code 2.

>>> import tempfile, os
>>> path = os.path.join(tempfile.mkdtemp(), "hpa.yaml")
>>> _ = open(path, "w").write('''apiVersion: autoscaling/v2
... kind: HorizontalPodAutoscaler
... metadata: {name: web}
... spec:
...   scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
...   maxReplicas: 10
... ''')
>>> text = import_file("hpa", path)
>>> "stabilize down 300s" in text
True

PyYAML is imported lazily (``pip install coherence[yaml]``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from coherence.importers.emit import one_line
from coherence.importers.yamlsrc import ImportFailure, Loc, MissingYaml, Node, load_documents

KINDS = ("hpa", "keda", "knative")
EXIT_OK, EXIT_ERROR = 0, 2


def _hpa(docs: list[Node], source: str) -> str:
    from coherence.importers.hpa import parse_hpa, write_hpa_spec

    return write_hpa_spec(parse_hpa(docs), source)


def _keda(docs: list[Node], source: str) -> str:
    from coherence.importers.keda import parse_keda, write_keda_spec

    return write_keda_spec(parse_keda(docs), source)


def _knative(docs: list[Node], source: str) -> str:
    from coherence.importers.knative import parse_knative, write_knative_spec

    return write_knative_spec(parse_knative(docs), source)


_WRITERS: dict[str, Callable[[list[Node], str], str]] = {
    "hpa": _hpa,
    "keda": _keda,
    "knative": _knative,
}


_OBJECTS = {
    "hpa": ("HorizontalPodAutoscaler",),
    "keda": ("ScaledObject",),
    "knative": ("Service", "Configuration", "Revision"),
}


def _describe(doc: Node) -> str:
    if doc.kind != "mapping":
        return f"a {doc.kind}"
    kind, meta = doc.get("kind"), doc.get("metadata")
    name = meta.get("name") if meta is not None and meta.kind == "mapping" else None
    what = kind.text() if kind is not None and kind.kind == "scalar" else "an object with no kind"
    return what + (f" `{name.text()}`" if name is not None and name.kind == "scalar" else "")


def ignored_documents(kind: str, docs: list[Node]) -> list[ImportFailure]:
    """One located warning for every document of a multi-document file that is not imported:
    a spec models one autoscaler object (the first of the importer's kinds)."""
    wanted = _OBJECTS[kind]
    chosen = next(
        (d for d in docs if d.kind == "mapping" and (k := d.get("kind")) is not None
         and k.kind == "scalar" and k.text() in wanted),
        None,
    )  # fmt: skip
    if chosen is None:
        return []
    return [
        ImportFailure(
            d.loc,
            f"document {i + 1} ({_describe(d)}) is not imported: this spec models "
            f"{_describe(chosen)} (document {docs.index(chosen) + 1})",
            f"import each object from a file of its own: one spec per {wanted[0]}",
        )
        for i, d in enumerate(docs)
        if d is not chosen
    ]


def import_file(kind: str, path: str, warnings: list[ImportFailure] | None = None) -> str:
    """The spec text for one YAML file. Raises :class:`ImportFailure` or :class:`MissingYaml`.

    Documents of a multi-document file that are not imported are listed in a comment at the
    top of the spec, and appended to ``warnings`` (located) when it is given.
    """
    if kind not in _WRITERS:
        raise ValueError(f"unknown importer `{kind}`; one of {', '.join(KINDS)}")
    docs = load_documents(path)
    text = _WRITERS[kind](docs, Path(path).name)
    ignored = ignored_documents(kind, docs)
    if warnings is not None:
        warnings += ignored
    if ignored:
        head = "".join(
            f"# NOT IMPORTED: {Path(w.loc.path).name}:{w.loc.line}: {one_line(w.message)}\n"
            for w in ignored
        )
        text = head + text
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", choices=KINDS, help="what the YAML holds")
    p.add_argument("file", metavar="FILE.yaml", help="the YAML file to import")
    p.add_argument("--out", metavar="FILE", help="write the spec here instead of stdout")


def run(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    """The `coherence import` command: the spec on stdout (or --out), errors located."""
    warnings: list[ImportFailure] = []
    try:
        text = import_file(args.kind, args.file, warnings)
    except MissingYaml:
        stderr.write("error: `coherence import` reads YAML with PyYAML, which is not installed\n")
        stderr.write("hint: pip install coherence[yaml]\n")
        return EXIT_ERROR
    except ImportFailure as e:
        stderr.write(e.render())
        return EXIT_ERROR
    for w in warnings:
        stderr.write(w.render().replace(": error: ", ": warning: ", 1))
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as e:
            stderr.write(ImportFailure(Loc(args.out, 1, 1), f"cannot write: {e.strerror}").render())
            return EXIT_ERROR
    else:
        stdout.write(text)
    return EXIT_OK


__all__ = ["KINDS", "ImportFailure", "MissingYaml", "add_arguments", "import_file", "run"]
