"""Options of the linear analysis: tolerances, warning thresholds and the scope of the costly parts.

Every field has a default that suits specs of a few to a few hundred loops. The scope fields
(``pair_limit``, ``margin_limit``, ``alone_limit``) bound the work on very large specs; what
the defaults do there is stated in each field's comment and in ``docs/linear.md``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LinearOptions:
    """How the linear analysis runs.

    >>> LinearOptions(marginal_tol=1e-4).marginal_tol
    0.0001
    """

    # --- stability ---------------------------------------------------------------------------
    marginal_tol: float = 1e-6
    """Relative band around 1: |rho - 1| <= marginal_tol is marginal (COH303)."""
    corner_tol: float = 1e-6
    """Relative distance to a switching surface under which the operating point is on it."""
    modes: int = 6
    """How many dominant modes (largest |lambda|, conjugate pairs once) the report lists."""

    # --- operating point ---------------------------------------------------------------------
    settle_hyperperiods: int = 8
    settle_min_ticks: int = 200
    settle_max_ticks: int = 4000
    residual_tol: float = 1e-8
    """Relative residual |F_H(x) - x| under which x is an equilibrium."""
    starts: int = 4
    """Perturbed starting points (seeded) used to look for other equilibria (COH306)."""
    seed: int = 0
    perturbation: float = 0.25
    """Size of the starting-point perturbations, as a fraction of each state's range."""
    root_dense_limit: int = 600
    """Up to this many unknowns the root solve is scipy.optimize.root (hybr, dense Jacobian)."""
    replay: bool = True
    """Replay the operating point through the reference simulator for one hyperperiod."""

    # --- margins -----------------------------------------------------------------------------
    gain_margin_warn: float = 2.0
    """COH308 when the gain can change by less than this factor either way."""
    delay_margin_warn: int = 2
    """COH309 when fewer than this many extra ticks of delay keep the system stable."""
    gain_range: tuple[float, float] = (0.01, 100.0)
    """Smallest and largest gain factor tried; margins beyond are reported as open-ended."""
    gain_rtol: float = 1e-2
    """Relative precision of the gain-margin bisection."""
    max_extra_delay: int = 64
    """Largest extra delay (ticks) tried for delay margins by bisection (the frequency-domain
    margins of ``frequency_margins`` have no such limit)."""
    wide_gain: float = 1e4
    """Where a loop's law has an effect at the operating point, its gain margin is searched up
    to this factor (above ``gain_range``'s top) before it is called open-ended."""
    frequency_margins: bool = True
    """Read the gain and delay margins of a single-rate loop with one actuator row and one
    sensor from its frequency response (``coherence.linear.nyquist``; each answer checked by
    eigen-solves), instead of bisecting on spectral radii."""
    margin_check_limit: int = 2000
    """Largest matrix (states) of the eigen-solves that check a frequency-domain delay margin;
    above it the margin stands on the frequency response alone."""
    margin_limit: int = 40
    """Margins for every loop up to this many loops; above, for this many loops: those with
    the largest participation in the dominant modes of the coupled system."""
    simultaneous_limit: int = 6
    """The simultaneous gain margin searches the 2^k sign patterns of at most this many loops
    (the margin scope's; above, the k most involved in the dominant modes)."""
    simultaneous_warn: float = 0.5
    """COH314 when every loop's own gain margin is comfortable (``gain_margin_warn``) but a
    simultaneous relative change of all their gains smaller than this destabilises them."""
    simultaneous_tol: float = 1e-3
    """Absolute precision of the simultaneous margin's bisection in delta."""
    simultaneous_size_limit: int = 400
    """Largest set of states (the blocks the loops' rows reach) whose dense per-tick
    matrices the simultaneous margin multiplies; above, it is skipped with a note."""

    # --- attribution -------------------------------------------------------------------------
    alone_limit: int = 5000
    """Each loop alone up to this many loops (above: only loops in unstable coupling groups)."""
    pair_limit: int = 100
    """Every pair of mutually influencing loops up to this many loops; above, only the pairs
    needed to explain an instability (within the unstable coupling groups)."""
    couplings: int = 8
    """How many coupling terms (by eigenvalue sensitivity) the report lists."""

    # --- interaction -------------------------------------------------------------------------
    timescale_ratio: float = 5.0
    """COH312 when loops that share a state run at periods closer than this ratio."""
    timescale_one_way: bool = False
    """COH312 also for one-way pairs (one loop actuates what the other senses, not back)."""
    rga_max: float = 10.0
    """COH310 when a paired relative gain is negative or above this value."""
    interaction_limit: int = 200
    """Largest coupling group (loops) for which the steady-state gain matrix is computed."""

    # --- topology ----------------------------------------------------------------------------
    max_cycles: int = 50
    max_cycle_length: int = 8

    # --- eigen-solve -------------------------------------------------------------------------
    dense_block_limit: int = 2000
    """Coupled blocks larger than this use ARPACK (largest-magnitude eigenvalues) instead of
    a dense eigen-solve."""
