"""Keep-objectives judged on simulator traces: their slack and when they are violated.

NumPy only; the same meanings as Z3 formulas are :mod:`coherence.smt.objectives` (see there for
the definitions).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import ObjectiveIR
from coherence.simulate.engine import Trace
from coherence.simulate.requirements import objective_slack


def trace_slack(obj: ObjectiveIR, trace: Trace) -> NDArray[np.float64]:
    """The simulator's own definition (the reference semantics of keep objectives)."""
    return np.asarray(objective_slack(obj, trace), dtype=float)


def trace_violated(obj: ObjectiveIR, trace: Trace) -> NDArray[np.bool_]:
    s = trace_slack(obj, trace)
    return np.asarray(s <= 0 if obj.cmp in ("<", ">") else s < 0)
