"""The linear analysis: one pure function from a transition system to an AnalysisResult.

The pipeline, each stage in its own module:

1. :mod:`.structure`  what each loop reads and actuates; the control-loop topology;
2. :mod:`.oppoint`    the operating point at nominal input (COH305, COH306);
3. :mod:`.linearize`  per-tick Jacobians at the operating orbit and the switching surfaces
                      the operating point sits on (COH307); :mod:`.model` keeps them with
                      their loop structure;
4. :mod:`.spectrum`   the lifted monodromy matrix, its spectral radius and dominant modes,
                      participation factors and the eigenvalue sensitivity of each coupling
                      (COH301, COH303);
5. attribution        each loop alone, pairs, all together (COH302, COH304);
6. :mod:`.margins`    gain and delay margins per loop (COH308, COH309);
7. :mod:`.interaction` steady-state gains, RGA, Niederlinski index (COH310, COH311);
8. :mod:`.settling`   whether the nominal run comes to rest at all (COH313): a sustained
                      oscillation there is what a local verdict cannot see;
9. :mod:`.timescales` timescale separation of loops that share a state (COH312), and the
                      Topology and Cycles tables.

The words of every finding and of the `require stable` verdicts are :mod:`.findings`; this
module runs the stages in order and assembles their results.

A linear certificate is local: `require stable` is at best HOLDS ("holds locally"), never
PROVED; the reconciliation with the other analyses (:mod:`coherence.reconcile`) turns it into
FALSIFIED where a replayed run oscillates or flaps.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from coherence.ir.nodes import TransitionSystem
from coherence.ir.topology import Structure, Topology
from coherence.linear import findings
from coherence.linear.interaction import (
    Interaction,
    held_matrices,
    niederlinski,
    rga,
    steady_state_gains,
)
from coherence.linear.linearize import Corner, Engine, LinearizationError
from coherence.linear.margins import (
    Margin,
    Simultaneous,
    Variants,
    loop_margins,
    simultaneous_margin,
)
from coherence.linear.model import LoopModel, build_model, orbit
from coherence.linear.oppoint import OperatingPoint, find_operating_point
from coherence.linear.options import LinearOptions
from coherence.linear.settling import nominal_oscillation
from coherence.linear.spectrum import Mode, Spectrum, continuous
from coherence.linear.timescales import timescales, topology_tables
from coherence.results import AnalysisResult, Cell, Finding, Table


@dataclass(frozen=True, slots=True)
class Linearization:
    """The linearized, lifted system at the operating point (for tests and other reports).

    ``matrices[t]`` is the sparse A_t (t = 0..H-1) over ``state_names``; :meth:`monodromy`
    their product A_{H-1} ... A_0.
    """

    operating_point: OperatingPoint
    state_names: tuple[str, ...]
    tick: float
    hyperperiod: int
    matrices: tuple[Any, ...]
    model: LoopModel
    corners: tuple[Corner, ...]

    def monodromy(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        out = np.eye(len(self.state_names))
        for a in self.matrices:
            out = a @ out
        return np.asarray(out, dtype=float)

    def spectral_radius(self) -> float:
        return Spectrum(list(self.matrices)).radius


def operating_point(ts: TransitionSystem, options: LinearOptions | None = None) -> OperatingPoint:
    """The equilibrium of ``ts`` at nominal input (see :mod:`coherence.linear.oppoint`)."""
    return find_operating_point(Engine(ts), options or LinearOptions())


def linearize(ts: TransitionSystem, options: LinearOptions | None = None) -> Linearization:
    """Linearize ``ts`` at its operating point; raises ValueError if there is none.

    >>> from coherence.compile import compile_text
    >>> ts = compile_text("a.coh", "system s { tick 1s state x in [-10, 10] init 1 "
    ...                   "next x = 0.5 * x }").systems[0]
    >>> lin = linearize(ts)
    >>> lin.monodromy().tolist(), lin.spectral_radius()
    ([[0.5]], 0.5)
    """
    options = options or LinearOptions()
    engine = Engine(ts)
    op = find_operating_point(engine, options)
    if not op.found:
        raise ValueError(f"no operating point: {op.message}")
    model, corners = build_model(engine, orbit(engine, op.x), options.corner_tol)
    return Linearization(
        op,
        ts.state_names,
        ts.tick,
        ts.hyperperiod,
        tuple(model.matrices()),
        model,
        tuple(corners),
    )


def topology(ts: TransitionSystem, options: LinearOptions | None = None) -> Topology:
    """The control-loop topology of ``ts`` (no numbers needed)."""
    options = options or LinearOptions()
    return Structure(ts).topology(options.max_cycles, options.max_cycle_length)


def analyze(ts: TransitionSystem, options: LinearOptions | None = None) -> AnalysisResult:
    """Linear analysis of one system: stability, modes, attribution, margins, interaction.

    >>> from coherence.compile import compile_text
    >>> ts = compile_text("a.coh", '''system s { tick 1s
    ...   state y in [-100, 100] init 0   state u in [-100, 100] init 0
    ...   next y = 0.5 * y + 2 * u
    ...   loop pi { actuates u by 0.1 * (1 - y) }
    ...   require stable }''').systems[0]
    >>> r = analyze(ts)
    >>> r.verdicts[0].status.value, round(dict(r.data)["spectral_radius"], 4)
    ('holds', 0.8367)
    """
    start = time.perf_counter()
    result = _Analysis(ts, options or LinearOptions()).run()
    return AnalysisResult(
        "linear",
        result.findings,
        result.verdicts,
        result.tables,
        result.data,
        time.perf_counter() - start,
    )


# ---- the analysis --------------------------------------------------------------------------


def _verdict_word(rho: float, tol: float) -> str:
    if rho > 1 + tol:
        return "unstable"
    if rho >= 1 - tol:
        return "marginal"
    return "stable"


class _Analysis:
    def __init__(self, ts: TransitionSystem, options: LinearOptions) -> None:
        self.ts = ts
        self.o = options
        self.st = Structure(ts)
        self.loop_ir = {lp.name: lp for lp in ts.loops}
        self.findings: list[Finding] = []
        self.tables: list[Table] = []
        self.data: dict[str, Any] = {
            "hyperperiod": ts.hyperperiod,
            "tick_s": ts.tick,
            "loops": list(self.st.loop_names),
        }
        self.topo = self.st.topology(options.max_cycles, options.max_cycle_length)
        self.rho: float | None = None
        self.neutral: dict[int, tuple[str, ...]] = {}
        self.verdict = "unknown"
        self.reason = ""
        self.op: OperatingPoint | None = None
        # the Couplings table's rows, the largest first: (from state, to state, sensitivity)
        self._coupling_rows: list[tuple[str, str, float]] = []

    # ---- run -------------------------------------------------------------------------------

    def run(self) -> AnalysisResult:
        self.data["topology"] = self.topo.to_data()
        try:
            self._linear()
        except LinearizationError as exc:
            self.verdict = "unknown"
            self.reason, finding = findings.no_operating_point(self.ts, str(exc), linearizing=True)
            self.findings.append(finding)
        if self.verdict != "unstable":
            self._settling()
        self.data["timescales"], found = timescales(self.ts, self.st, self.o)
        self.findings += found
        self.tables += topology_tables(self.ts, self.topo)
        self.data["verdict"] = self.verdict
        verdicts = findings.stable(
            self.ts,
            self.findings,
            self.verdict,
            self.rho,
            self.reason,
            self.op.cycle if self.op is not None else 0,
            self.o.marginal_tol,
        )
        ordered = tuple(sorted(self.findings, key=Finding.sort_key))
        data = tuple(sorted(self.data.items()))
        return AnalysisResult("linear", ordered, verdicts, tuple(self.tables), data)

    def _linear(self) -> None:
        ts, o = self.ts, self.o
        engine = Engine(ts, self.st)
        op = find_operating_point(engine, o)
        self.op = op
        self._op_data(op)
        if not op.found:
            self.verdict = "unknown"
            self.reason, finding = findings.no_operating_point(ts, op.message)
            self.findings.append(finding)
            return
        model, corners = build_model(engine, orbit(engine, op.x), o.corner_tol)
        self.neutral = self._neutral(model)
        self._corners(corners)
        coupled = Spectrum(model.matrices(), o.dense_block_limit)
        self.rho = coupled.radius_without(set(self.neutral))
        self.verdict = _verdict_word(self.rho, o.marginal_tol)
        self.data["spectral_radius"] = self.rho
        self.data["neutral_actuators"] = {
            ts.states[i].name: list(lps) for i, lps in sorted(self.neutral.items())
        }
        if op.others:
            self._multiple(op, engine)
        if not coupled.partial and coupled.n <= 20000:
            self.data["eigenvalues"] = [
                [float(z.real), float(z.imag)] for z in coupled.eigenvalues()
            ]
        held = Spectrum(held_matrices(model), o.dense_block_limit)
        self.open_loop = held.radius_without(set(model.actuator_actions))
        self.data["open_loop_radius"] = self.open_loop
        variants = Variants(model, coupled, held)
        modes = self._modes(coupled)
        self._couplings(coupled)
        self._stability(model, coupled, held, variants, modes)
        self._margins(model, coupled, variants, modes)
        self._interaction(model)

    def _neutral(self, model: LoopModel) -> dict[int, tuple[str, ...]]:
        """Actuators that hold at the operating point: their row of every A_t is the unit
        row (the loops on them sit inside a deadband or tolerance band, a guard is false, or
        the law's active branch is the actuator itself). Their multiplier 1 is a neutral
        hold by design, not a feedback mode: it is reported (COH307), not counted in the
        verdict."""
        return {
            a: tuple(dict.fromkeys(model.action_loop[k] for k in acts))
            for a, acts in model.actuator_actions.items()
            if model.holds(a)
        }

    # ---- operating point -------------------------------------------------------------------

    def _op_data(self, op: OperatingPoint) -> None:
        names = [s.name for s in self.ts.states if s.kind in ("plant", "actuator")]
        idx = {n: i for i, n in enumerate(self.ts.state_names)}
        self.data["operating_point"] = {
            "found": op.found,
            "method": op.method,
            "residual": op.residual,
            "states": {n: op.state[idx[n]] for n in names} if op.found else {},
            "other_equilibria": len(op.others),
            "message": op.message,
        }

    def _multiple(self, op: OperatingPoint, engine: Engine) -> None:
        # rest points inside the same deadbands or tolerance bands form a continuum: where
        # the loops hold at both points, the two are one family, not distinct equilibria
        others = op.others
        if self.neutral:
            distinct = []
            for cand in op.others:
                model, _ = build_model(engine, orbit(engine, np.array(cand)))
                if not set(self._neutral(model)) & set(self.neutral):
                    distinct.append(cand)
            self.data["operating_point"]["other_equilibria"] = len(distinct)
            if not distinct:
                return
            others = tuple(distinct)
        self.findings.append(findings.multiple_equilibria(self.ts, op.x, others))

    def _settling(self) -> None:
        """COH313 where the nominal run never comes to rest (:mod:`.settling`): the local
        verdict does not describe what the system does from its own start."""
        ts = self.ts
        cycle = self.op is not None and self.op.found and self.op.cycle > 0
        osc = nominal_oscillation(ts, skip_periods_of=ts.hyperperiod if cycle else 0)
        if osc is None:
            return
        self.data["nominal_oscillation"] = osc.to_data()
        self.findings.append(findings.nominal_oscillation(ts, self.st, osc, self.verdict))

    def _corners(self, corners: Sequence[Corner]) -> None:
        """One COH307 per loop (or the plant) naming the switching surfaces it sits on."""
        found, rows = findings.corners(self.ts, corners, self.neutral)
        self.findings += found
        self.data["corners"] = [{"loop": r[0], "construct": r[1]} for r in rows]

    # ---- stability and attribution ---------------------------------------------------------

    def _modes(self, sp: Spectrum) -> list[Mode]:
        H = self.ts.hyperperiod
        seconds = H * self.ts.tick
        out: list[Mode] = []
        for lam, block in sp.dominant(self.o.modes, set(self.neutral)):
            p = sp.participation(lam, block)
            idx = sp.blocks[block]
            states: dict[str, float] = {}
            loops: dict[str, float] = {}
            for share, i in zip(p, idx, strict=True):
                name = self.ts.states[int(i)].name
                states[name] = states.get(name, 0.0) + float(share)
                owners = self.st.owners[int(i)]
                for ow in owners:
                    loops[ow] = loops.get(ow, 0.0) + float(share) / len(owners)
            damping, period, tau = continuous(lam, seconds)
            top_states = sorted(states.items(), key=lambda kv: -kv[1])[:6]
            top_loops = sorted(loops.items(), key=lambda kv: -kv[1])
            out.append(
                Mode(lam, abs(lam), damping, period, tau, tuple(top_states), tuple(top_loops))
            )
        rows: list[tuple[Cell, ...]] = []
        for k, m in enumerate(out, 1):
            lam = m.eigenvalue
            ev = (
                f"{lam.real:.4g}"
                if abs(lam.imag) < 1e-12
                else (f"{lam.real:.4g} ± {abs(lam.imag):.4g}j")
            )
            rows.append(
                (
                    k,
                    ev,
                    round(m.magnitude, 6),
                    round(m.damping, 4),
                    None if m.period is None else round(m.period, 4),
                    None if m.time_constant is None else round(m.time_constant, 4),
                    findings.shares(m.loops),
                    findings.shares(m.states, 3),
                )
            )
        self.tables.append(
            Table(
                "Modes",
                (
                    "mode",
                    "multiplier",
                    "|multiplier|",
                    "damping",
                    "period [s]",
                    "time constant [s]",
                    "loops",
                    "states",
                ),
                tuple(rows),
                f"eigenvalues of the monodromy matrix (per hyperperiod of {H} ticks = "
                f"{seconds:g} s); participation factors by loop and state",
            )
        )
        self.data["modes"] = [m.to_data() for m in out]
        return out

    def _stability(
        self,
        model: LoopModel,
        coupled: Spectrum,
        held: Spectrum,
        variants: Variants,
        modes: list[Mode],
    ) -> None:
        o, st = self.o, self.st
        tol = o.marginal_tol
        loops = list(st.loop_names)
        rows: list[tuple[Cell, ...]] = [
            ("open loop (every loop holding)", self.open_loop, _verdict_word(self.open_loop, tol))
        ]
        unstable_loops = self._participants(coupled, modes)
        alone: dict[str, float] = {}
        scope_alone = (
            loops if len(loops) <= o.alone_limit else [x for x in loops if x in unstable_loops]
        )
        for lp in scope_alone:
            alone[lp] = variants.only(frozenset([lp]))
            rows.append((f"{lp} alone", alone[lp], _verdict_word(alone[lp], tol)))
        self.data["alone"] = alone
        base = 1.0 + tol
        bad_alone = [x for x in loops if alone.get(x, 0.0) > base]
        for lp in bad_alone:
            self.findings.append(findings.unstable_alone(self.ts, lp, alone[lp]))
        # pairs of loops that influence each other
        mutual = sorted(tuple(sorted(p, key=loops.index)) for p in st.mutual())
        if len(loops) > o.pair_limit:
            mutual = [p for p in mutual if set(p) <= unstable_loops]
        pairs: dict[tuple[str, ...], float] = {}
        rho = self.rho if self.rho is not None else coupled.radius
        unstable = rho > 1 + tol
        if mutual and (len(loops) <= o.pair_limit or unstable):
            for pair in mutual:
                pairs[pair] = variants.only(frozenset(pair))
        for pair, r in pairs.items():
            rows.append((f"{pair[0]} + {pair[1]}", r, _verdict_word(r, tol)))
        self.data["pairs"] = [{"loops": list(k), "radius": v} for k, v in pairs.items()]
        rows.append(("coupled (every loop acting)", rho, self.verdict))
        self.tables.append(
            Table(
                "Stability",
                ("scope", "spectral radius", "verdict"),
                tuple((a, round(float(b), 6), c) for a, b, c in rows),  # type: ignore[arg-type]
                f"spectral radius of the monodromy matrix over {self.ts.hyperperiod} ticks; "
                f"marginal within {tol:g} of 1",
            )
        )
        if unstable:
            stable_alone = not bad_alone and len(alone) == len(loops) and self.open_loop <= base
            if stable_alone and len(loops) >= 2:
                self._coupling_induced(variants, pairs, unstable_loops, alone, modes, base)
            else:
                self._coupled_unstable(coupled, modes)
        elif self.verdict == "marginal":
            self.findings.append(findings.marginal(self.ts, rho, tol, modes))

    def _participants(self, sp: Spectrum, modes: list[Mode]) -> set[str]:
        tol = self.o.marginal_tol
        out: set[str] = set()
        for m in modes:
            if m.magnitude >= 1 - tol:
                out.update(x for x, share in m.loops if x != "plant" and share > 0.01)
        return out

    def _coupled_unstable(self, coupled: Spectrum, modes: list[Mode]) -> None:
        self.findings.append(findings.unstable(self.ts, self.rho, modes))

    def _coupling_induced(
        self,
        variants: Variants,
        pairs: dict[tuple[str, ...], float],
        participants: set[str],
        alone: dict[str, float],
        modes: list[Mode],
        base: float,
    ) -> None:
        loops = list(self.st.loop_names)
        order = {x: i for i, x in enumerate(loops)}
        cands = sorted(participants, key=order.__getitem__) or loops
        failing: list[tuple[tuple[str, ...], float]] = []
        for size in range(2, len(cands) + 1):
            if size > 2 and math.comb(len(cands), size) > 200:
                break  # too many sets: report the loops of the unstable modes together
            for combo in itertools.combinations(cands, size):
                r = pairs.get(combo) if size == 2 else None
                if r is None:
                    r = variants.only(frozenset(combo))
                if r > base:
                    failing.append((combo, r))
            if failing:
                break
        if not failing:
            failing = [(tuple(cands), self.rho or 0.0)]
        coupling = findings.coupling_note(self._coupling_rows)
        for combo, r in failing[:10]:
            self.findings.append(
                findings.coupling_induced(self.ts, self.st, combo, r, alone, coupling, modes)
            )

    # ---- couplings -------------------------------------------------------------------------

    def _couplings(self, sp: Spectrum) -> None:
        dom = sp.dominant(1, set(self.neutral))
        self._coupling_rows = []
        if not dom or dom[0][0] == 0:
            self.data["couplings"] = []
            return
        lam, block = dom[0]
        entries = sp.sensitivity(lam, block)
        st, ts = self.st, self.ts
        agg: dict[tuple[str, str], float] = {}
        for r, c, v in entries:
            if st.owners[r] == st.owners[c] or abs(v) < 1e-9:
                continue
            key = (ts.states[c].name, ts.states[r].name)
            agg[key] = agg.get(key, 0.0) + v
        top = sorted(agg.items(), key=lambda kv: -abs(kv[1]))[: self.o.couplings]
        rows: list[tuple[Cell, ...]] = []
        for (src, dst), v in top:
            so = self.st.owner_label(self.st.state_index[src])
            do = self.st.owner_label(self.st.state_index[dst])
            rows.append((f"{src} ({so})", f"{dst} ({do})", round(v, 6)))
            self._coupling_rows.append((src, dst, v))
        self.tables.append(
            Table(
                "Couplings",
                ("from state (owner)", "to state (owner)", "d ln|lambda| / d ln a"),
                tuple(rows),
                "interconnect stress: the relative change of the dominant multiplier's magnitude "
                "per relative change of each coupling term between states of different owners",
            )
        )
        self.data["couplings"] = [
            {"from": s, "to": d, "sensitivity": v} for s, d, v in self._coupling_rows
        ]

    # ---- margins ---------------------------------------------------------------------------

    def _margins(
        self, model: LoopModel, coupled: Spectrum, variants: Variants, modes: list[Mode]
    ) -> None:
        o, st = self.o, self.st
        loops = list(st.loop_names)
        if not loops:
            return
        if self.verdict != "stable":
            self.tables.append(
                Table(
                    "Margins",
                    ("loop", "gain margin", "delay margin"),
                    (),
                    f"not computed: the coupled system is {self.verdict}",
                )
            )
            self.data["margins"] = {}
            return
        # a loop that holds its actuators at the operating point has no margin to speak of,
        # unless it rests in a tolerance band: then its law's, as it acts outside the band
        holding = {lp for lps in self.neutral.values() for lp in lps}
        loops = [
            x
            for x in loops
            if x not in holding
            or any(int(model.action_state[k]) not in self.neutral for k in model.loop_actions[x])
            or variants.acts_outside(x)
        ]
        scope = loops
        note = ""
        if len(loops) > o.margin_limit:
            weight: dict[str, float] = {}
            for m in modes:
                for x, share in m.loops:
                    weight[x] = weight.get(x, 0.0) + share * m.magnitude
            order = {x: i for i, x in enumerate(loops)}
            scope = sorted(loops, key=lambda x: (-weight.get(x, 0.0), order[x]))[: o.margin_limit]
            scope.sort(key=order.__getitem__)
            note = (
                f"; {len(scope)} of {len(loops)} loops (those most involved in the "
                "dominant modes; LinearOptions.margin_limit)"
            )
        has_sensors = {lp.name: bool(lp.sensors) for lp in self.ts.loops}
        # a margin ends where the verdict gets worse: where a stable system stops being stable
        # (marginal is not stable), where a marginal one becomes unstable
        stable = self.verdict == "stable"
        threshold = 1 - o.marginal_tol if stable else 1 + o.marginal_tol
        above = 1 + o.marginal_tol
        margins: list[Margin] = []
        for lp in scope:
            margins.append(
                loop_margins(
                    variants,
                    lp,
                    self.ts.tick,
                    threshold,
                    o.gain_range,
                    o.gain_rtol,
                    o.max_extra_delay,
                    has_sensors,
                    above,
                    o.wide_gain,
                    o.margin_check_limit,
                    o.frequency_margins,
                )
            )
        rows: list[tuple[Cell, ...]] = []
        comfortable: set[str] = set()
        for mg in margins:
            rows.append((mg.loop, mg.row_text, mg.delay_text))
            if mg.branch:
                continue  # outside the band: a figure for the operator, not a finding here
            warn = o.gain_margin_warn
            small = [
                x
                for x in (mg.gain_high, None if mg.gain_low is None else 1 / mg.gain_low)
                if x is not None and x < warn
            ]
            if small:
                self.findings.append(findings.small_gain_margin(self.ts, mg, warn))
            else:
                comfortable.add(mg.loop)
            if mg.delay is not None and not mg.delay_why and mg.delay < o.delay_margin_warn:
                self.findings.append(findings.small_delay_margin(self.ts, mg))
        sim = self._simultaneous(variants, scope, modes, threshold, above)
        if sim is not None:
            rows.append((f"together: {', '.join(sim.loops)}", sim.text, "-"))
            note += (
                "; together: the smallest simultaneous relative change of every gain (a "
                "factor 1 +/- delta each) that makes it unstable"
                + (f" ({sim.note})" if sim.note else "")
            )
            if (
                sim.delta is not None
                and sim.delta < o.simultaneous_warn
                and sim.factors
                and {x for x, _ in sim.factors} <= comfortable
            ):
                self.findings.append(
                    findings.fragile_together(
                        self.ts,
                        sim,
                        [m for m in margins if m.loop in dict(sim.factors)],
                        o.gain_margin_warn,
                        o.simultaneous_warn,
                    )
                )
        self.tables.append(
            Table(
                "Margins",
                ("loop", "gain margin", "delay margin"),
                tuple(rows),
                "gain factors at which the coupled system goes unstable; largest extra "
                f"measurement delay that keeps it stable (searched to {o.max_extra_delay} ticks)"
                + note,
            )
        )
        self.data["margins"] = {mg.loop: mg.to_data() for mg in margins}
        self.data["simultaneous"] = None if sim is None else sim.to_data()

    def _simultaneous(
        self,
        variants: Variants,
        scope: list[str],
        modes: list[Mode],
        stable_below: float,
        unstable_above: float,
    ) -> Simultaneous | None:
        """The simultaneous gain margin of the loops in the margin scope (None: fewer than
        two); above ``simultaneous_limit`` loops, of those most involved in the dominant
        modes (2^k sign patterns each)."""
        o = self.o
        if len(scope) < 2:
            return None
        chosen = scope
        note = ""
        if len(scope) > o.simultaneous_limit:
            weight: dict[str, float] = {}
            for m in modes:
                for x, share in m.loops:
                    weight[x] = weight.get(x, 0.0) + share * m.magnitude
            order = {x: i for i, x in enumerate(scope)}
            chosen = sorted(scope, key=lambda x: (-weight.get(x, 0.0), order[x]))
            chosen = sorted(chosen[: o.simultaneous_limit], key=order.__getitem__)
            note = (
                f"{len(chosen)} of {len(scope)} loops, those most involved in the dominant "
                "modes (LinearOptions.simultaneous_limit)"
            )
        sim = simultaneous_margin(
            variants,
            chosen,
            stable_below,
            1.0 - o.gain_range[0],
            o.simultaneous_tol,
            o.simultaneous_size_limit,
            unstable_above,
        )
        if note:
            sim = replace(sim, note=f"{note}; {sim.note}" if sim.note else note)
        return sim

    # ---- interaction -----------------------------------------------------------------------

    def _interaction(self, model: LoopModel) -> None:
        o, st, ts = self.o, self.st, self.ts
        sensed_idx = {name: i for i, name in enumerate(model.engine.sensed)}
        paired: dict[str, tuple[str, int, int]] = {}
        for lp in ts.loops:
            if lp.sensors and lp.actions:
                paired[lp.name] = (
                    lp.name,
                    st.state_index[lp.actions[0].state],
                    sensed_idx[lp.sensors[0].name],
                )
        groups: list[tuple[str, ...]] = []
        for g in self.topo.groups:
            kept = self._pairable([x for x in g if x in paired])
            if 2 <= len(kept) <= o.interaction_limit:
                groups.append(kept)
        results: list[Interaction] = []
        if groups:
            members = [x for g in groups for x in g]
            G, note = steady_state_gains(model, held_matrices(model), [paired[x] for x in members])
            at = {x: i for i, x in enumerate(members)}
            for g in groups:
                idx = [at[x] for x in g]
                sub = None if G is None else G[np.ix_(idx, idx)]
                results.append(self._group_interaction(g, paired, sub, note))
        self.data["interaction"] = [r.to_data() for r in results]
        for r in results:
            rows: list[tuple[Cell, ...]] = []
            for i, name in enumerate(r.loops):
                gii = r.gain[i][i] if r.gain is not None else None
                lii = r.rga[i][i] if r.rga is not None else None
                rows.append(
                    (
                        name,
                        r.actuators[i],
                        r.sensed[i],
                        None if gii is None else round(gii, 6),
                        None if lii is None else round(lii, 6),
                    )
                )
            ni = "-" if r.niederlinski is None else f"{r.niederlinski:.4g}"
            self.tables.append(
                Table(
                    f"Interaction (RGA): {', '.join(r.loops)}",
                    ("loop", "actuates", "senses", "steady-state gain", "relative gain"),
                    tuple(rows),
                    f"Niederlinski index {ni}" + (f"; {r.note}" if r.note else ""),
                )
            )

    def _pairable(self, loops: list[str]) -> tuple[str, ...]:
        """One loop per sensed signal: loops that sense the same signal cannot be paired
        with it together. An integral (`by`) loop takes it over a `to` loop; two integral
        loops on one signal fight over it (COH310)."""
        by_signal: dict[object, list[str]] = {}
        for x in loops:
            by_signal.setdefault(self.loop_ir[x].sensors[0].signal, []).append(x)
        kept: list[str] = []
        for members in by_signal.values():
            integral = [x for x in members if self.loop_ir[x].actions[0].mode == "by"]
            if len(integral) >= 2:
                sig = self.loop_ir[integral[0]].sensors[0].alias
                self.findings.append(findings.same_signal(self.ts, integral, sig))
            kept.append((integral or members)[0])
        order = {x: i for i, x in enumerate(loops)}
        return tuple(sorted(kept, key=order.__getitem__))

    def _group_interaction(
        self,
        group: tuple[str, ...],
        paired: dict[str, tuple[str, int, int]],
        G: np.ndarray[Any, np.dtype[np.float64]] | None,
        note: str,
    ) -> Interaction:
        ts, o = self.ts, self.o
        pairs = [paired[x] for x in group]
        acts = tuple(ts.states[u].name for _, u, _ in pairs)
        sensed = tuple(self.loop_ir[x].sensors[0].alias for x in group)
        if G is None:
            return Interaction(group, acts, sensed, None, None, None, note)
        R = rga(G)
        ni = niederlinski(G)
        gain = tuple(tuple(float(v) for v in row) for row in G)
        if R is None:
            self.findings.append(findings.singular_gains(ts, group, acts))
            return Interaction(group, acts, sensed, gain, None, ni, "G is singular")
        for i, lp in enumerate(group):
            lam = float(R[i, i])
            if lam < 0 or lam > o.rga_max:
                self.findings.append(findings.relative_gain(ts, lp, group, acts[i], sensed[i], lam))
        if ni is not None and ni < 0:
            self.findings.append(findings.niederlinski(ts, group, ni))
        return Interaction(
            group, acts, sensed, gain, tuple(tuple(float(v) for v in r) for r in R), ni
        )
