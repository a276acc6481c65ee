"""The simulator: the reference semantics (NumPy, vectorised over scenarios)."""

from coherence.simulate.engine import Compiled, Trace, compile_system, evaluate, simulate
from coherence.simulate.requirements import check_requirement, objective_violations
from coherence.simulate.view import trace_view

__all__ = [
    "Compiled",
    "Trace",
    "check_requirement",
    "compile_system",
    "evaluate",
    "objective_violations",
    "simulate",
    "trace_view",
]
