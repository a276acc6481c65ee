"""The intermediate representation: one transition system per spec system.

See :mod:`coherence.ir.nodes` for the meaning, :mod:`coherence.ir.lower` for how a spec gets
there and :mod:`coherence.ir.dump` for the canonical text.
"""

from coherence.ir.nodes import (
    Action,
    Binary,
    Call,
    Const,
    Expr,
    InputVar,
    Ite,
    Let,
    LoopIR,
    ObjectiveIR,
    ParamVar,
    Phase,
    Requirement,
    Sensor,
    StateVar,
    TransitionSystem,
    Unary,
    Var,
)

__all__ = [
    "Action",
    "Binary",
    "Call",
    "Const",
    "Expr",
    "InputVar",
    "Ite",
    "Let",
    "LoopIR",
    "ObjectiveIR",
    "ParamVar",
    "Phase",
    "Requirement",
    "Sensor",
    "StateVar",
    "TransitionSystem",
    "Unary",
    "Var",
]
