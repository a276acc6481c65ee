"""The linear analysis: one pure function from a transition system to an AnalysisResult.

The pipeline, each stage in its own module:

1. :mod:`.structure`  what each loop reads and actuates; the control-loop topology;
2. :mod:`.oppoint`    the operating point at nominal input (COH305, COH306);
3. :mod:`.linearize`  per-tick Jacobians at the operating orbit, loop structure kept, and
                      the switching surfaces the operating point sits on (COH307);
4. :mod:`.spectrum`   the lifted monodromy matrix, its spectral radius and dominant modes,
                      participation factors and the eigenvalue sensitivity of each coupling
                      (COH301, COH303);
5. attribution        each loop alone, pairs, all together (COH302, COH304);
6. :mod:`.margins`    gain and delay margins per loop (COH308, COH309);
7. :mod:`.interaction` steady-state gains, RGA, Niederlinski index (COH310, COH311) and
                      timescale separation of loops that share a state (COH312);
8. :mod:`.settling`   whether the nominal run comes to rest at all (COH313): a sustained
                      oscillation there is what a local verdict cannot see.

A linear certificate is local: `require stable` is at best HOLDS ("holds locally"), never
PROVED; the reconciliation with the other analyses (:mod:`coherence.reconcile`) turns it into
FALSIFIED where a replayed run oscillates or flaps.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from coherence.diagnostics import Severity
from coherence.ir.nodes import TransitionSystem
from coherence.linear.interaction import (
    Interaction,
    held_matrices,
    niederlinski,
    rga,
    steady_state_gains,
)
from coherence.linear.linearize import (
    Corner,
    Engine,
    LinearizationError,
    LoopModel,
    build_model,
    orbit,
)
from coherence.linear.margins import Margin, Variants, loop_margins
from coherence.linear.oppoint import OperatingPoint, find_operating_point
from coherence.linear.options import LinearOptions
from coherence.linear.settling import nominal_oscillation
from coherence.linear.spectrum import Mode, Spectrum, continuous
from coherence.linear.structure import Structure, Topology
from coherence.results import AnalysisResult, Cell, Finding, Status, Table, TraceView, Verdict
from coherence.source import Span


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


def _f(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}g}"


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

    # ---- helpers ---------------------------------------------------------------------------

    def span(self, loop: str | None) -> Span:
        return self.loop_ir[loop].span if loop is not None else self.ts.span

    def add(
        self,
        code: str,
        message: str,
        loops: Sequence[str] = (),
        key: str = "",
        notes: Sequence[str] = (),
        help: str = "",
        data: dict[str, Any] | None = None,
        severity: Severity | None = None,
        trace: TraceView | None = None,
    ) -> None:
        loops = list(loops)
        span = self.span(loops[0]) if loops else self.ts.span
        related = tuple(self.span(x) for x in loops[1:])
        self.findings.append(
            Finding(
                code,
                message,
                span,
                severity,
                tuple(notes),
                help,
                related,
                trace,
                tuple(sorted((k, _frozen(v)) for k, v in (data or {}).items())),
                key or ",".join(loops) or self.ts.name,
            )
        )

    # ---- run -------------------------------------------------------------------------------

    def run(self) -> AnalysisResult:
        self.data["topology"] = self.topo.to_data()
        try:
            self._linear()
        except LinearizationError as exc:
            self.verdict = "unknown"
            self.reason = f"the system cannot be linearized at its operating point: {exc}"
            self.add("COH305", f"no operating point to linearize at: {exc}")
        if self.verdict != "unstable":
            self._settling()
        self._timescales()
        self._topology_tables()
        self.data["verdict"] = self.verdict
        verdicts = self._verdicts()
        findings = tuple(sorted(self.findings, key=Finding.sort_key))
        data = tuple(sorted(self.data.items()))
        return AnalysisResult("linear", findings, verdicts, tuple(self.tables), data)

    def _linear(self) -> None:
        ts, o = self.ts, self.o
        engine = Engine(ts, self.st)
        op = find_operating_point(engine, o)
        self.op = op
        self._op_data(op)
        if not op.found:
            self.verdict = "unknown"
            self.reason = f"no operating point at nominal input ({op.message})"
            self.add(
                "COH305",
                f"no equilibrium found at nominal input: {op.message}",
                help="check that the nominal inputs admit a steady state within the "
                "declared bounds",
            )
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
        out: dict[int, tuple[str, ...]] = {}
        for a, acts in model.actuator_actions.items():
            unit = True
            for t in range(model.H):
                row = model.A(t)[a].tocoo()
                keep = row.data != 0
                cols, vals = row.col[keep], row.data[keep]
                if len(cols) != 1 or cols[0] != a or abs(vals[0] - 1.0) > 1e-12:
                    unit = False
                    break
            if unit:
                out[a] = tuple(dict.fromkeys(model.action_loop[k] for k in acts))
        return out

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
        if self.neutral:
            distinct = []
            for cand in op.others:
                model, _ = build_model(engine, orbit(engine, np.array(cand)))
                if not set(self._neutral(model)) & set(self.neutral):
                    distinct.append(cand)
            self.data["operating_point"]["other_equilibria"] = len(distinct)
            if not distinct:
                return
            op = OperatingPoint(
                op.found,
                op.state,
                op.residual,
                op.method,
                op.message,
                tuple(distinct),
                op.replay_residual,
            )
        x = op.x
        states = [s for s in self.ts.states if s.kind in ("plant", "actuator")]
        idx = {s.name: i for i, s in enumerate(self.ts.states)}
        other = np.array(op.others[0])
        diffs = sorted(
            states,
            key=lambda s: (
                -abs(other[idx[s.name]] - x[idx[s.name]])
                / max(abs(x[idx[s.name]]), abs(other[idx[s.name]]), 1e-12)
            ),
        )[:3]
        shown = ", ".join(
            f"`{s.name}` = {x[idx[s.name]] / s.scale:.4g} here, "
            f"{other[idx[s.name]] / s.scale:.4g} there"
            for s in diffs
        )
        self.add(
            "COH306",
            f"{len(op.others) + 1} different equilibria at nominal input; the linear verdict "
            f"is local to the one analysed ({shown})",
            key=f"{self.ts.name}:equilibria",
            help="`require no bad equilibrium` checks whether the other one violates an objective",
        )

    def _settling(self) -> None:
        """COH313 where the nominal run never comes to rest (:mod:`.settling`): the local
        verdict does not describe what the system does from its own start."""
        from coherence.simulate.view import show, trace_view

        ts = self.ts
        cycle = self.op is not None and self.op.found and self.op.cycle > 0
        osc = nominal_oscillation(ts, skip_periods_of=ts.hyperperiod if cycle else 0)
        if osc is None:
            return
        self.data["nominal_oscillation"] = osc.to_data()
        name, lo, hi = osc.states[0]
        st = ts.state(name)
        swing = f"`{name}` swings between {show(lo, st.scale)} and {show(hi, st.scale)}"
        if osc.period is not None:
            what = (
                f"from t={osc.onset * ts.tick:g}s {swing} and repeats every {osc.period} "
                f"tick{'s' if osc.period != 1 else ''} ({osc.period * ts.tick:g} s)"
            )
        else:
            what = (
                f"{swing} to the end of its {osc.ticks} ticks, reversing {osc.reversals} times "
                "in the last part without dying out"
            )
        local = {
            "stable": "the linear verdict (stable at the operating point) is local and does "
            "not show it",
            "marginal": "the linear verdict (marginal at the operating point) cannot decide it",
        }.get(self.verdict, "no operating point describes it")
        owners = [x for x in self.st.owners[self.st.state_index[name]] if x != "plant"]
        others = [
            f"`{n}` between {show(a, ts.state(n).scale)} and {show(b, ts.state(n).scale)}"
            for n, a, b in osc.states[1:4]
        ]
        last = osc.onset + 2 * (osc.period or 4)
        self.add(
            "COH313",
            f"the nominal run does not settle: {what}, a sustained oscillation; {local}",
            owners[:1],
            key=f"{ts.name}:nominal-oscillation",
            notes=(
                "the reference simulator from the initial state at nominal input"
                + (f"; also swinging: {', '.join(others)}" if others else ""),
            ),
            help="the loops in the cycle overshoot each correction: add damping (a lower gain, "
            "a stabilization window, a cooldown) or shorten the measurement lag",
            data=osc.to_data(),
            trace=trace_view(
                ts, osc.trace, title="nominal scenario", last_tick=min(last, osc.ticks - 1)
            ),
        )

    def _corners(self, corners: Sequence[Corner]) -> None:
        """One COH307 per loop (or the plant) naming the switching surfaces it sits on."""
        by_loop: dict[str | None, list[str]] = {}
        notes: dict[str | None, list[str]] = {}
        for c in corners:
            items = by_loop.setdefault(c.loop, [])
            if c.construct not in items:
                items.append(c.construct)
        for a, holding in sorted(self.neutral.items()):
            state = self.ts.states[a].name
            for name in holding:
                by_loop.setdefault(name, []).append(f"a hold of `{state}`")
                notes.setdefault(name, []).append(
                    f"it holds `{state}` at the operating point (inside its deadband or "
                    "tolerance band, a false guard, or a hold branch of its law): small "
                    f"deviations are not corrected; the multiplier 1 of `{state}` is a neutral "
                    "hold and is left out of the verdict"
                )
        for lp in self.ts.loops:
            if lp.cooldown > lp.period:
                by_loop.setdefault(lp.name, []).append("its cooldown")
                notes.setdefault(lp.name, []).append(
                    f"its cooldown ({lp.cooldown} ticks) is longer than its period "
                    f"({lp.period}): after a correction it waits; the linear model lets it "
                    "act every period"
                )
        rows: list[tuple[Cell, ...]] = []
        for loop, items in sorted(by_loop.items(), key=lambda kv: (kv[0] is None, kv[0] or "")):
            who = f"loop `{loop}`" if loop else "the plant"
            self.add(
                "COH307",
                f"the operating point of {who} sits on {_join(items)}: the linear verdict is "
                "local only",
                [loop] if loop else [],
                key=f"{loop or 'plant'}:corner",
                notes=tuple(notes.get(loop, [])),
                help="a switching surface at the operating point: check the nonlinear "
                "behaviour with `require` properties (bounded model checking, simulation)",
            )
            rows += [(loop or "plant", x) for x in items]
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
                    _shares(m.loops),
                    _shares(m.states, 3),
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
            self.add(
                "COH304",
                f"loop `{lp}` is unstable on its own: spectral radius {alone[lp]:.4g} with "
                "every other loop holding its actuator",
                [lp],
                key=lp,
                help="lower its gain, add damping, or shorten its measurement delay",
                data={"radius": alone[lp]},
            )
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
            who = [x for x, _ in modes[0].loops if x != "plant"] if modes else []
            self.add(
                "COH303",
                f"the coupled system is marginally stable: spectral radius "
                f"{rho:.9g} (within {tol:g} of 1)"
                + (f"; the marginal mode involves {_names(who)}" if who else ""),
                who[:1] + who[1:],
                key=f"{self.ts.name}:marginal",
                notes=tuple(_mode_note(m) for m in modes[:1]),
                help="an integrator without feedback (two loops integrating one signal, a "
                "deadband at rest) or an undamped oscillation looks like this",
                data={"radius": rho},
            )

    def _participants(self, sp: Spectrum, modes: list[Mode]) -> set[str]:
        tol = self.o.marginal_tol
        out: set[str] = set()
        for m in modes:
            if m.magnitude >= 1 - tol:
                out.update(x for x, share in m.loops if x != "plant" and share > 0.01)
        return out

    def _coupled_unstable(self, coupled: Spectrum, modes: list[Mode]) -> None:
        top = modes[0] if modes else None
        who = [x for x, _ in top.loops if x != "plant"] if top else []
        share = ", ".join(f"`{x}` ({v:.0%})" for x, v in (top.loops if top else ())[:4])
        self.add(
            "COH301",
            f"the coupled system is unstable: spectral radius {self.rho or 0.0:.4g} per "
            f"hyperperiod ({self.ts.hyperperiod * self.ts.tick:g} s)"
            + (f"; the unstable mode involves {share}" if share else ""),
            who,
            key=f"{self.ts.name}:unstable",
            notes=tuple(_mode_note(m) for m in modes[:1]),
            help="see the loops unstable alone (COH304) and the margins of the loops in the "
            "unstable mode",
            data={"radius": self.rho},
        )

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
        coupling = self._top_coupling_note()
        for combo, r in failing[:10]:
            shared = self._coupling_text(combo)
            alone_txt = ", ".join(f"`{x}` {alone.get(x, 0.0):.3g}" for x in combo)
            self.add(
                "COH302",
                f"loops {_names(combo)} are each stable alone but unstable together "
                f"(spectral radius {r:.4g}; alone: {alone_txt})"
                + (f": they are coupled through {shared}" if shared else ""),
                list(combo),
                key=",".join(combo),
                notes=tuple(x for x in (coupling, *(_mode_note(m) for m in modes[:1])) if x),
                help="separate their time scales, lower one loop's gain, or let one loop "
                "own the shared state",
                data={"radius": r, "loops": list(combo)},
            )

    def _coupling_text(self, combo: Sequence[str]) -> str:
        parts: list[str] = []
        for a in combo:
            for b in combo:
                if a == b:
                    continue
                via = sorted(set(self.st.writes[a]) & self.st.sees[b])
                for s in via:
                    path = self.st.signal_path(s, b)
                    chain = " -> ".join(f"`{x}`" for x in path)
                    parts.append(
                        f"`{a}` actuates `{s}`, which `{b}` reads ({chain})"
                        if len(path) > 1
                        else f"`{a}` actuates `{s}`, which `{b}` reads"
                    )
        both = set.intersection(*(set(self.st.writes[x]) for x in combo))
        for s in sorted(both):
            parts.append(f"both actuate `{s}`")
        return "; ".join(parts)

    # ---- couplings -------------------------------------------------------------------------

    def _couplings(self, sp: Spectrum) -> None:
        dom = sp.dominant(1, set(self.neutral))
        self._coupling_rows: list[tuple[str, str, float]] = []
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

    def _top_coupling_note(self) -> str:
        rows = getattr(self, "_coupling_rows", [])
        if not rows:
            return ""
        src, dst, v = rows[0]
        return (
            f"the coupling that decides stability: `{src}` -> `{dst}` (1% more of it "
            f"changes the dominant multiplier's magnitude by {v:.2g}%)"
        )

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
        # a loop that holds its actuators at the operating point has no margin to speak of
        holding = {lp for lps in self.neutral.values() for lp in lps}
        loops = [
            x
            for x in loops
            if x not in holding
            or any(int(model.action_state[k]) not in self.neutral for k in model.loop_actions[x])
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
        threshold = 1 + o.marginal_tol
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
                )
            )
        rows: list[tuple[Cell, ...]] = []
        for mg in margins:
            rows.append((mg.loop, mg.gain_text, mg.delay_text))
            warn = o.gain_margin_warn
            small = [
                x
                for x in (mg.gain_high, None if mg.gain_low is None else 1 / mg.gain_low)
                if x is not None and x < warn
            ]
            if small:
                which = (
                    "raising it to"
                    if mg.gain_high is not None and mg.gain_high < warn
                    else "lowering it to"
                )
                factor = mg.gain_high if which.startswith("raising") else mg.gain_low
                self.add(
                    "COH308",
                    f"loop `{mg.loop}` has a small gain margin ({mg.gain_text}): {which} "
                    f"x{factor:.3g} of its gain makes the coupled system unstable",
                    [mg.loop],
                    key=mg.loop,
                    data=mg.to_data(),
                    help="lower the gain or add a deadband/rate limit; the margin is for the "
                    f"coupled system (warning below x{warn:g})",
                )
            if mg.delay is not None and mg.delay < o.delay_margin_warn:
                self.add(
                    "COH309",
                    f"loop `{mg.loop}` has a small delay margin: {mg.delay + 1} extra tick"
                    f"{'s' if mg.delay + 1 != 1 else ''} ({(mg.delay + 1) * self.ts.tick:g} s) "
                    "of measurement delay make the coupled system unstable",
                    [mg.loop],
                    key=mg.loop,
                    data=mg.to_data(),
                    help="slow the loop down (longer period, lower gain) or measure faster",
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
                self.add(
                    "COH310",
                    f"loops {_names(integral)} integrate the same signal `{sig}`: at steady "
                    "state only one of them can set it, the others drift (a marginal mode)",
                    integral,
                    key=",".join(integral) + ":same-signal",
                    help="let one loop own the signal, or give the others a different one",
                )
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
            self.add(
                "COH310",
                f"the steady-state gain matrix of loops {_names(group)} is singular: their "
                f"actuators ({', '.join(f'`{a}`' for a in acts)}) cannot set their sensed "
                "values independently",
                list(group),
                key=",".join(group) + ":singular",
                help="two loops integrating the same signal fight over it; pair each actuator "
                "with a signal it alone controls",
            )
            return Interaction(group, acts, sensed, gain, None, ni, "G is singular")
        for i, lp in enumerate(group):
            lam = float(R[i, i])
            if lam < 0 or lam > o.rga_max:
                why = (
                    "at steady state its actuator works against the other loops"
                    if lam < 0
                    else "the other loops dominate its sensed value"
                )
                self.add(
                    "COH310",
                    f"the relative gain of loop `{lp}` (`{acts[i]}` -> `{sensed[i]}`) is "
                    f"{lam:.3g}: {why}",
                    [lp, *[x for x in group if x != lp]],
                    key=f"{lp}:rga",
                    help="pair the actuator with another sensed signal, or decouple the loops",
                    data={"relative_gain": lam},
                )
        if ni is not None and ni < 0:
            self.add(
                "COH311",
                f"the Niederlinski index of loops {_names(group)} is {ni:.3g} < 0: the pairing "
                "is unstable under integral control for any tuning",
                list(group),
                key=",".join(group) + ":ni",
                help="change the pairing of actuators and sensed signals",
                data={"niederlinski": ni},
            )
        return Interaction(
            group, acts, sensed, gain, tuple(tuple(float(v) for v in r) for r in R), ni
        )

    # ---- timescales and topology -----------------------------------------------------------

    def _timescales(self) -> None:
        ts, st, o = self.ts, self.st, self.o
        order = {x: i for i, x in enumerate(st.loop_names)}
        writers: dict[str, set[str]] = {}
        seers: dict[str, set[str]] = {}
        for lp in st.loop_names:
            for s in st.writes[lp]:
                writers.setdefault(s, set()).add(lp)
            for s in st.sees[lp]:
                seers.setdefault(s, set()).add(lp)
        cand: set[tuple[str, str]] = set()
        for state, ws in writers.items():
            for w in ws:
                for other in ws | seers.get(state, set()):
                    if w != other:
                        cand.add((w, other) if order[w] < order[other] else (other, w))
        rows: list[dict[str, Any]] = []
        flagged: list[tuple[str, str, str, float, list[str]]] = []
        for an, bn in sorted(cand, key=lambda p: (order[p[0]], order[p[1]])):
            la, lb = self.loop_ir[an], self.loop_ir[bn]
            shared = st.shares_state(an, bn)
            ratio = max(la.period, lb.period) / min(la.period, lb.period)
            both = set(st.writes[an]) & set(st.writes[bn])
            two_way = bool(set(st.writes[an]) & st.sees[bn]) and bool(
                set(st.writes[bn]) & st.sees[an]
            )
            one_way = not both and not two_way
            rows.append(
                {"loops": [an, bn], "shared": list(shared), "ratio": ratio, "one_way": one_way}
            )
            # loops chase each other when both act on a state or each moves what the other
            # sees; a one-way pair (one loop's moves are the other's disturbance) only warns
            # when asked to (LinearOptions.timescale_one_way)
            if ratio < o.timescale_ratio and (not one_way or o.timescale_one_way):
                how = (
                    "both actuate"
                    if both
                    else ("share" if two_way else "are coupled one way through")
                )
                flagged.append(
                    (
                        an,
                        bn,
                        f"loops `{an}` (every {la.period * ts.tick:g} s) and `{bn}` (every "
                        f"{lb.period * ts.tick:g} s) {how} {_names(sorted(both) or shared)} and "
                        f"run at comparable speeds (period ratio {ratio:.3g} < "
                        f"{o.timescale_ratio:g})",
                        ratio,
                        list(shared),
                    )
                )
        self._timescale_findings(flagged, order)
        self.data["timescales"] = rows

    def _timescale_findings(
        self,
        flagged: list[tuple[str, str, str, float, list[str]]],
        order: dict[str, int],
    ) -> None:
        """One COH312 per group of loops that chase each other (the flagged pairs' connected
        components): one cause, one finding; each pair in its notes."""
        ts = self.ts
        group: dict[str, str] = {}

        def root(x: str) -> str:
            while group.get(x, x) != x:
                x = group[x]
            return x

        for an, bn, *_ in flagged:
            group.setdefault(an, an)
            group.setdefault(bn, bn)
            ra, rb = root(an), root(bn)
            if ra != rb:
                group[max(ra, rb, key=order.__getitem__)] = min(ra, rb, key=order.__getitem__)
        components: dict[str, list[tuple[str, str, str, float, list[str]]]] = {}
        for pair in flagged:
            components.setdefault(root(pair[0]), []).append(pair)
        for pairs in components.values():
            if len(pairs) == 1:
                an, bn, text, ratio, shared = pairs[0]
                self.add(
                    "COH312",
                    text,
                    [an, bn],
                    key=f"{an},{bn}:timescale",
                    help="separate their periods by 5-10x, or let one loop own the shared state",
                    data={"ratio": ratio, "shared": shared},
                )
                continue
            loops = sorted({x for p in pairs for x in p[:2]}, key=order.__getitem__)
            speeds = ", ".join(
                f"`{x}` (every {self.loop_ir[x].period * ts.tick:g} s)" for x in loops
            )
            self.add(
                "COH312",
                f"{len(loops)} loops that act on each other's states run at comparable speeds: "
                f"{speeds}",
                loops,
                key=",".join(loops) + ":timescale",
                notes=[p[2] for p in pairs],
                help="separate their periods by 5-10x (the slower loop acting on what the "
                "faster one has settled), or let one loop own each shared state",
                data={
                    "ratio": min(p[3] for p in pairs),
                    "shared": sorted({s for p in pairs for s in p[4]}),
                    "pairs": [list(p[:2]) for p in pairs],
                },
            )

    def _topology_tables(self) -> None:
        topo, ts = self.topo, self.ts
        infl: dict[str, list[str]] = {x: [] for x in topo.loops}
        for e in topo.edges:
            infl[e.source].append(f"{e.target} via {', '.join(e.via)}")
        reads = dict(topo.reads)
        acts = dict(topo.actuates)
        rows: list[tuple[Cell, ...]] = []
        for lp in ts.loops:
            rows.append(
                (
                    lp.name,
                    lp.period * ts.tick,
                    ", ".join(reads[lp.name]),
                    ", ".join(acts[lp.name]),
                    "; ".join(infl[lp.name]),
                )
            )
        groups = "; ".join("{" + ", ".join(g) + "}" for g in topo.groups) or "none"
        self.tables.append(
            Table(
                "Topology",
                ("loop", "every [s]", "reads", "actuates", "influences"),
                tuple(rows),
                f"coupling groups (loops that influence each other): {groups}",
            )
        )
        crow: list[tuple[Cell, ...]] = [(" -> ".join((*c, c[0])),) for c in topo.cycles]
        self.tables.append(
            Table(
                "Cycles of influence",
                ("cycle",),
                tuple(crow),
                "truncated: more cycles than listed" if topo.cycles_truncated else "",
            )
        )

    # ---- verdicts --------------------------------------------------------------------------

    def _verdicts(self) -> tuple[Verdict, ...]:
        out: list[Verdict] = []
        codes = tuple(
            sorted(
                {
                    f.code
                    for f in self.findings
                    if f.code
                    in ("COH301", "COH302", "COH303", "COH304", "COH305", "COH307", "COH313")
                }
            )
        )
        corner = any(f.code == "COH307" for f in self.findings)
        for r in self.ts.requirements:
            if r.kind != "stable":
                continue
            rho = self.rho
            if self.verdict == "stable" and rho is not None:
                # a linear certificate is local: small deviations from this operating point
                # decay; it says nothing of runs that leave its neighbourhood
                reason = (
                    f"holds locally: spectral radius {rho:.4g} < 1 at the operating point "
                    "(a linear certificate for small deviations from it)"
                )
                if corner:
                    reason += (
                        "; the operating point sits on a switching surface (deadband, "
                        "saturation, cooldown: COH307), where the linearization is one side's"
                    )
                if self.op is not None and self.op.cycle:
                    reason += f"; the operating point is a cycle of {self.op.cycle} ticks"
                status = Status.HOLDS
            elif self.verdict == "unstable" and rho is not None:
                reason = (
                    f"local, linear: spectral radius {rho:.4g} > 1 at the operating "
                    "point: small deviations grow"
                )
                status = Status.FALSIFIED
            elif self.verdict == "marginal" and rho is not None:
                reason = (
                    f"local, linear: spectral radius {rho:.9g} is within "
                    f"{self.o.marginal_tol:g} of 1; a linear test cannot decide"
                )
                status = Status.UNKNOWN
            else:
                reason = self.reason or "no operating point"
                status = Status.UNKNOWN
            out.append(
                Verdict(
                    r.text or "require stable",
                    "stable",
                    status,
                    r.span,
                    "linear",
                    None,
                    reason,
                    codes,
                )
            )
        return tuple(out)


def _frozen(v: Any) -> Any:
    """A hashable copy of finding data (findings are frozen): lists and dicts to tuples."""
    if isinstance(v, dict):
        return tuple((k, _frozen(x)) for k, x in v.items())
    if isinstance(v, list | tuple):
        return tuple(_frozen(x) for x in v)
    return v


def _join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _names(xs: Sequence[str] | set[str] | tuple[str, ...]) -> str:
    return _join([f"`{x}`" for x in xs])


def _shares(items: Sequence[tuple[str, float]], limit: int = 4) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in list(items)[:limit] if v >= 0.005)


def _mode_note(m: Mode) -> str:
    kind = (
        f"oscillates with period {m.period:.4g} s" if m.period is not None else "does not oscillate"
    )
    return (
        f"dominant mode: |multiplier| {m.magnitude:.4g} per hyperperiod, damping "
        f"{m.damping:.3g}, {kind}; participation {_shares(m.loops)}"
    )
