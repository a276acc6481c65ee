"""Options of the formal analysis."""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("exact", "overapprox", "auto")


@dataclass(frozen=True, slots=True)
class SmtOptions:
    """How hard and how the formal analysis looks.

    - ``horizon``: the deepest tick BMC unrolls to; ``None`` checks each requirement over its
      own horizon (``for N ticks``). A smaller cap gives ``holds`` to that depth only.
    - ``mode``: ``exact`` (nonlinear real arithmetic), ``overapprox`` (linear envelopes:
      an ``unsat`` is a proof, a ``sat`` a candidate for replay) or ``auto`` (over-approximation
      first, exact on its candidates and unknowns).
    - ``rlimit``: Z3's deterministic resource limit for each solver call.
    - ``budget``: the rlimit one requirement's BMC may spend over all its calls.
    - ``conflict_budget``: the rlimit the conflict-witness search may spend over all its
      pairs (a fair share each, at most three ``rlimit``).
    - ``refinements``: how many times a spurious over-approximate candidate is refined
      (its relaxations split where the candidate cheats) before exact arithmetic is asked.
    - ``conflict_depth``: ticks ``k`` a conflict witness may take; ``None``: the longer of the
      two loops' periods + 1, at most 16.
    - ``induction_depth``: the largest ``k`` tried by k-induction; ``None``: the hyperperiod
      + 1, at least 2, at most 12 (and the whole attempt spends at most twice ``rlimit``).
    - ``margin``: room (canonical units) a counterexample's violated comparison must have,
      so that it survives float rounding in replay; tried before the exact boundary.
    - ``patterns``: before the solver, simulate structured input patterns (corners, steps,
      bursts, square waves, seeded random): a deep counterexample the solver would need many
      ticks of nonlinear arithmetic to reach is often one of them. Their traces are simulator
      traces like any other.
    - ``intervals``: before k-induction and BMC, enclose every run in intervals from the
      initial state (:mod:`coherence.intervals.reach`): a sound proof over the horizon, or for all
      time when the enclosure returns into itself; it never falsifies.
    - ``invariants``: for an ``always`` requirement still undecided after BMC, mine candidate
      auxiliary invariants from simulation, keep their inductive subset (Houdini) and try
      k-induction with them (:mod:`coherence.smt.invariants`). Off by default: it costs a few
      solver calls per requirement and pays off on small systems whose bound needs a relation
      between states.
    - ``warm_start``: conflict witnesses start one tick after a state of the reachable
      enclosure (a warm-up tick) or at the initial state, rather than anywhere in the box:
      the start is then consistent with the system's own update (a lagged copy agrees with
      what it copies), and proofs still cover every reachable state
      (:class:`coherence.smt.alignment.Encoding`). Off by default: every query then carries
      the warm-up tick of the start values it reads; the cold search is the cheaper first
      pass, and ``warm_recheck`` takes the warm start where the cold one found a witness.
    - ``warm_recheck``: the pairs the cold search found a witness for (conflicting, or
      conflicting in a region) are searched again from the warm start, without samples, on
      a budget of their own (``warm_budget``): a proof there makes the pair aligned, and
      otherwise the cold result stays. A query reads the warm-up tick only for the start
      values its goal reads.
    - ``seed``: the seed of the random patterns.
    - ``settle``: ticks simulated at nominal input to reach the operating point.
    - ``analyses``: which of ``requirements``, ``conflicts``, ``equilibria`` run.
    - ``cycles``: report the influence cycles between loops as COH403 notes (they are
      always listed in the result's data).
    """

    horizon: int | None = None
    mode: str = "auto"
    rlimit: int = 1_000_000
    budget: int = 6_000_000
    conflict_budget: int = 3_000_000
    refinements: int = 8
    conflict_depth: int | None = None
    induction_depth: int | None = None
    margin: float = 1e-6
    patterns: bool = True
    intervals: bool = True
    invariants: bool = False
    warm_start: bool = False
    warm_recheck: bool = True
    warm_budget: int = 600_000
    seed: int = 0
    settle: int | None = None
    analyses: tuple[str, ...] = ("requirements", "conflicts", "equilibria")
    cycles: bool = False

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.rlimit <= 0:
            raise ValueError("rlimit must be positive")
        if self.horizon is not None and self.horizon < 1:
            raise ValueError("horizon must be at least 1")
