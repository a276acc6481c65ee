"""JSON Schemas of coherence's machine-readable outputs (package data).

- ``report-1.schema.json``: ``coherence check --format json`` (schema_version "1");
- ``diff-1.schema.json``: ``coherence diff --format json`` (schema_version "1");
- ``gitlab-code-quality.schema.json``: ``coherence check --format gitlab`` (the fields of
  GitLab's Code Quality report that coherence writes).
"""
