"""Benchmarks: commands that measure, kept in the repository (not timed assertions)."""
