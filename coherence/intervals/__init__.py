"""Interval arithmetic over NumPy: sound enclosures of runs, without a solver.

- :mod:`~coherence.intervals.arith`: the one outward-rounded arithmetic (one interval, and
  intervals per box);
- :mod:`~coherence.intervals.compile`: IR expressions to interval functions;
- :mod:`~coherence.intervals.reach`: the reachable enclosure and interval reachability proofs;
- :mod:`~coherence.intervals.pairs`: paired enclosures of a run and its counterfactual;
- :mod:`~coherence.intervals.alignment`: the interval alignment test of a pair of loops;
- :mod:`~coherence.intervals.fixedpoint`: contraction around the fixed points of a hyperperiod.

Nothing here imports z3 (``tests/test_layout.py``): the formal analysis (:mod:`coherence.smt`)
asks the solver only what these bounds leave open.
"""
