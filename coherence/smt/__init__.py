"""The Z3 engines: the only code of coherence that imports z3.

The solver gate (:mod:`~coherence.smt.solver`), terms (:mod:`~coherence.smt.terms`), the
encoder (:mod:`~coherence.smt.encode`), unrolled runs (:mod:`~coherence.smt.unroll`),
the one unrolling and BMC (:mod:`~coherence.smt.bmc`), proofs for all time
(:mod:`~coherence.smt.induction`, :mod:`~coherence.smt.localize`,
:mod:`~coherence.smt.invariants`), alignment proofs for pairs of loops
(:mod:`~coherence.smt.alignment`), bad equilibria (:mod:`~coherence.smt.equilibria`) and the
replay of models (:mod:`~coherence.smt.replay`). Which engine runs when is decided in
:mod:`coherence.formal` (``coherence.formal.analyze(ts, options)``). See docs/formal.md.
"""

from coherence.smt.options import SmtOptions

__all__ = ["SmtOptions"]
