"""The system's tick, compiled by template and evaluated vectorised.

Fleet specs repeat the same shapes: a thousand autoscalers have a thousand ``rec`` lets that
differ only in names and constants. Each let and update is reduced to a *template*: the
expression with its variables, constants and phase conditions replaced by positional
placeholders. Items that share a template are evaluated together, with NumPy arrays over the
instances, by the simulator's own expression compiler (:func:`coherence.simulate.engine.
compile_expr`), so the values are those of the reference semantics. The same templates carry
the symbolic derivatives (:mod:`coherence.linear.symbolic`).

Values live in one vector per scenario: ``[states | inputs | params | lets]`` (the *slots*).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from coherence.ir.nodes import (
    Binary,
    Call,
    Const,
    Expr,
    Ite,
    Phase,
    StateVar,
    TransitionSystem,
    Unary,
    Var,
    names_in,
)
from coherence.ir.topology import Structure
from coherence.simulate.engine import Env, Fn, fold_walk, stacked_blocks

Array = NDArray[np.float64]

KIND_CODE = {"state": "s", "input": "i", "param": "q", "let": "l"}


@dataclass(frozen=True, slots=True)
class Template:
    """A canonical expression: placeholders ``v<k><kind>``, ``c<k>`` (constants), ``p<k>``."""

    expr: Expr
    n_vars: int
    var_kinds: tuple[str, ...]  # one of s, i, q, l per variable placeholder
    n_consts: int
    n_phases: int

    @property
    def var_names(self) -> tuple[str, ...]:
        return tuple(f"v{k}{c}" for k, c in enumerate(self.var_kinds))

    @property
    def placeholders(self) -> tuple[str, ...]:
        return (
            self.var_names
            + tuple(f"c{k}" for k in range(self.n_consts))
            + tuple(f"p{k}" for k in range(self.n_phases))
        )


@dataclass(slots=True)
class _Canon:
    kind_of: Callable[[str], str]
    vars: dict[str, str] = field(default_factory=dict)
    var_list: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    consts: list[float] = field(default_factory=list)
    phases: list[tuple[int, int]] = field(default_factory=list)

    def run(self, e: Expr) -> Expr:
        match e:
            case Const(v):
                self.consts.append(float(v))
                return Var(f"c{len(self.consts) - 1}")
            case Var(name):
                ph = self.vars.get(name)
                if ph is None:
                    code = self.kind_of(name)
                    ph = f"v{len(self.var_list)}{code}"
                    self.vars[name] = ph
                    self.var_list.append(name)
                    self.kinds.append(code)
                return Var(ph)
            case Phase(period, offset):
                self.phases.append((period, offset))
                return Var(f"p{len(self.phases) - 1}")
            case Unary(op, a):
                return Unary(op, self.run(a))
            case Binary(op, left, right):
                return Binary(op, self.run(left), self.run(right))
            case Call(fn, args):
                return Call(fn, tuple(self.run(a) for a in args))
            case Ite(c, a, b):
                return Ite(self.run(c), self.run(a), self.run(b))
        raise TypeError(f"not an expression: {e!r}")


def canonicalize(
    e: Expr, kind_of: Callable[[str], str]
) -> tuple[Template, tuple[str, ...], tuple[float, ...], tuple[tuple[int, int], ...]]:
    """The template of ``e`` and its instance data: variable names, constants, phases."""
    c = _Canon(kind_of)
    expr = c.run(e)
    t = Template(expr, len(c.var_list), tuple(c.kinds), len(c.consts), len(c.phases))
    return t, tuple(c.var_list), tuple(c.consts), tuple(c.phases)


_VALUE_FNS: dict[Expr, Fn] = {}


def value_fn(t: Template) -> Fn:
    """The reference-semantics evaluator of a template (cached per template)."""
    fn = _VALUE_FNS.get(t.expr)
    if fn is None:
        from coherence.simulate.engine import compile_expr

        fn = compile_expr(t.expr)
        _VALUE_FNS[t.expr] = fn
    return fn


@dataclass(slots=True)
class Group:
    """Items of one template: their output slots and the slots/constants/phases they read."""

    template: Template
    outputs: list[int]  # slot (lets) or state index (updates) per instance
    var_slots: list[tuple[int, ...]]
    consts: list[tuple[float, ...]]
    phases: list[tuple[tuple[int, int], ...]]
    items: list[int]  # item index (lets 0..m-1, updates m..m+n-1)
    fn: Fn | None = None  # the template's evaluator, set by freeze()
    names: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())
    # frozen arrays, filled by freeze()
    out_arr: NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    var_arr: NDArray[np.intp] = field(default_factory=lambda: np.zeros((0, 0), dtype=np.intp))
    const_arr: Array = field(default_factory=lambda: np.zeros((0, 0)))
    period_arr: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    offset_arr: NDArray[np.int64] = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    # the placeholders that do not depend on the states: constants, and the phase flags of
    # each tick modulo the least common multiple of the group's periods (filled on use)
    const_env: Env = field(default_factory=dict)
    cycle: int = 1
    phase_envs: dict[int, Env] = field(default_factory=dict)
    # folds over consecutive variable placeholders: (fold key, first, end), stacked per call
    blocks: tuple[tuple[str, int, int], ...] = ()
    # the variable placeholders the value reads outside those folds, with their positions
    loose: tuple[tuple[str, int], ...] = ()
    # one instance: each variable is a column of the slots (no gather); its slot per variable
    columns: tuple[int, ...] | None = None
    # the outputs as a range of slots, where they are one
    out_slice: slice | None = None

    def freeze(self) -> None:
        k = len(self.outputs)
        t = self.template
        self.fn = value_fn(t)
        self.names = (
            t.var_names,
            tuple(f"c{k}" for k in range(t.n_consts)),
            tuple(f"p{k}" for k in range(t.n_phases)),
        )
        self.out_arr = np.asarray(self.outputs, dtype=np.intp)
        self.var_arr = np.asarray(self.var_slots, dtype=np.intp).reshape(k, t.n_vars)
        self.const_arr = np.asarray(self.consts, dtype=float).reshape(k, t.n_consts)
        ph = np.asarray(self.phases, dtype=np.int64).reshape(k, t.n_phases, 2)
        self.period_arr = ph[:, :, 0]
        self.offset_arr = ph[:, :, 1]
        # constants and phase flags are rows [1, instances], as the variables are [S, instances]
        self.const_env = {name: self.const_arr[None, :, j] for j, name in enumerate(self.names[1])}
        self.cycle = math.lcm(1, *(int(p) for p in np.unique(self.period_arr)))
        self.phase_envs = {}
        position = {name: j for j, name in enumerate(t.var_names)}
        blocks: dict[str, tuple[str, int, int]] = {}
        for key, first, end in stacked_blocks(t.expr, position):
            blocks[key] = (key, first, end)
        self.blocks = tuple(blocks.values())
        outside = _names_outside(t.expr, {key for key, _, _ in self.blocks})
        self.loose = tuple((n, j) for j, n in enumerate(t.var_names) if n in outside)
        self.columns = tuple(int(x) for x in self.var_arr[0]) if k == 1 else None
        self.out_slice = None
        if k and np.array_equal(self.out_arr, np.arange(self.out_arr[0], self.out_arr[0] + k)):
            self.out_slice = slice(int(self.out_arr[0]), int(self.out_arr[0]) + k)

    def evaluate(self, vals: Array, tick: int) -> object:
        assert self.fn is not None
        return self.fn(self.env(vals, tick, full=False))

    def env(self, vals: Array, tick: int, full: bool = True) -> Env:
        """Placeholder values for every instance; ``vals`` is [S, slots].

        ``full=False``: only what the template's value reads (a fold over a window's
        registers reads them stacked, not one by one)."""
        var_names, _, phase_names = self.names
        env: Env = dict(self.const_env)
        if phase_names:
            env.update(self._phase_env(tick))
        cols = self.columns
        if cols is not None and not self.blocks:
            for name, c in zip(var_names, cols, strict=True):
                env[name] = vals[:, c : c + 1]  # [S, 1], as the gather below gives it
            return env
        gathered = vals[:, self.var_arr]  # [S, instances, variables]: one gather
        per_var = gathered.transpose(2, 0, 1)
        if full or not self.blocks:
            env.update(zip(var_names, per_var, strict=True))
        else:
            for name, j in self.loose:
                env[name] = per_var[j]
        for key, first, end in self.blocks:
            env[key] = per_var[first:end]
        return env

    def _phase_env(self, tick: int) -> Env:
        # tick % period depends only on tick modulo a multiple of the period
        key = tick % self.cycle
        hit = self.phase_envs.get(key)
        if hit is None:
            hit = {
                name: ((tick % self.period_arr[:, j]) == self.offset_arr[:, j])[None, :]
                for j, name in enumerate(self.names[2])
            }
            self.phase_envs[key] = hit
        return hit


class Program:
    """The lets and updates of a system as template groups, in evaluation order.

    ``overrides`` replaces the expression of some lets (by name): the linearization view uses
    it to treat a loop whose target equals its actuator as acting (see :mod:`.linearize`).
    """

    def __init__(
        self,
        ts: TransitionSystem,
        st: Structure,
        overrides: Mapping[str, Expr] | None = None,
        share: Program | None = None,
    ) -> None:
        self.ts = ts
        # canonical forms of expressions another program of the same system already has
        self._canon: dict[
            int, tuple[Template, tuple[str, ...], tuple[float, ...], tuple[tuple[int, int], ...]]
        ] = share._canon if share is not None else {}
        self.st = st
        overrides = overrides or {}
        self.n = len(ts.states)
        self.n_inputs = len(ts.inputs)
        self.n_params = len(ts.params)
        self.m = len(ts.lets)
        names = (
            list(ts.state_names)
            + [u.name for u in ts.inputs]
            + [p.name for p in ts.params]
            + list(st.let_names)
        )
        self.slot_names = tuple(names)
        self.slot = {n: i for i, n in enumerate(names)}
        self.let0 = self.n + self.n_inputs + self.n_params
        self.param0 = self.n + self.n_inputs
        kinds: dict[str, str] = {}
        for s in ts.states:
            kinds[s.name] = "s"
        for u in ts.inputs:
            kinds[u.name] = "i"
        for p in ts.params:
            kinds[p.name] = "q"
        for d in ts.lets:
            kinds[d.name] = "l"
        self.kind_code = kinds
        self.let_exprs: tuple[Expr, ...] = tuple(overrides.get(d.name, d.expr) for d in ts.lets)
        self.update_exprs: tuple[Expr, ...] = tuple(s.update for s in ts.states)
        self.lo = np.array([s.lo for s in ts.states], dtype=float)
        self.hi = np.array([s.hi for s in ts.states], dtype=float)

        # let levels: evaluation waves (a let reads only lets of earlier waves)
        level: dict[str, int] = {}
        for d, e in zip(ts.lets, self.let_exprs, strict=True):
            deps = [level[x] for x in names_in(e) if x in level]
            level[d.name] = 1 + max(deps, default=-1)
        self.let_level = level
        self.depth = 1 + max(level.values(), default=-1)

        self.item_template: list[Template] = []
        self.item_vars: list[tuple[str, ...]] = []
        self.item_consts: list[tuple[float, ...]] = []
        self.item_phases: list[tuple[tuple[int, int], ...]] = []
        waves: dict[tuple[int, Expr], Group] = {}
        for k, e in enumerate(self.let_exprs):
            self._add(e, k, self.let0 + k, level[ts.lets[k].name], waves)
        self.let_waves: list[list[Group]] = [[] for _ in range(self.depth)]
        for (lev, _), g in waves.items():
            g.freeze()
            self.let_waves[lev].append(g)
        updates: dict[tuple[int, Expr], Group] = {}
        for i, e in enumerate(self.update_exprs):
            self._add(e, self.m + i, i, 0, updates)
        self.update_groups = list(updates.values())
        for g in self.update_groups:
            g.freeze()
        self.cooldown = np.array([s.kind == "cooldown" for s in ts.states], dtype=bool)
        self._init_fns: list[tuple[int, Fn]] | None = None

    def _add(
        self, e: Expr, item: int, out: int, wave: int, groups: dict[tuple[int, Expr], Group]
    ) -> Group:
        hit = self._canon.get(id(e))
        if hit is None:
            hit = canonicalize(e, self.kind_code.__getitem__)
            self._canon[id(e)] = hit
        t, names, consts, phases = hit
        self.item_template.append(t)
        self.item_vars.append(names)
        self.item_consts.append(consts)
        self.item_phases.append(phases)
        key = (wave, t.expr)
        g = groups.get(key)
        if g is None:
            g = Group(t, [], [], [], [], [])
            groups[key] = g
        g.outputs.append(out)
        g.var_slots.append(tuple(self.slot[x] for x in names))
        g.consts.append(consts)
        g.phases.append(phases)
        g.items.append(item)
        return g

    # ---- values -----------------------------------------------------------------------------

    def base_values(self, scenarios: int = 1, params: Mapping[str, float] | None = None) -> Array:
        """A [S, slots] array with inputs at nominal and parameters set (states, lets zero)."""
        vals = np.zeros((scenarios, len(self.slot_names)))
        for j, u in enumerate(self.ts.inputs):
            vals[:, self.n + j] = u.nominal
        for j, p in enumerate(self.ts.params):
            v = p.value if params is None or p.name not in params else params[p.name]
            vals[:, self.param0 + j] = v
        return vals

    def eval_lets(self, vals: Array, tick: int) -> None:
        """Fill the let slots of ``vals`` (states, inputs, params already set)."""
        with np.errstate(all="ignore"):
            for wave in self.let_waves:
                for g in wave:
                    # the assignment broadcasts to [S, instances] and converts to float
                    out = g.out_arr if g.out_slice is None else g.out_slice
                    vals[:, out] = g.evaluate(vals, tick)  # type: ignore[call-overload]

    def eval_updates(self, vals: Array, tick: int) -> Array:
        """The raw (unclamped) next states, [S, n]."""
        raw = np.empty((vals.shape[0], self.n))
        with np.errstate(all="ignore"):
            for g in self.update_groups:
                out = g.out_arr if g.out_slice is None else g.out_slice
                raw[:, out] = g.evaluate(vals, tick)  # type: ignore[call-overload]
        return raw

    def step(self, vals: Array, x: Array, tick: int) -> Array:
        """One tick from states ``x`` [S, n]: fills ``vals`` for the tick, returns next states."""
        vals[:, : self.n] = x
        self.eval_lets(vals, tick)
        return np.clip(self.eval_updates(vals, tick), self.lo, self.hi)

    def run(
        self, vals: Array, x: Array, start: int, ticks: int, idle_cooldowns: bool = False
    ) -> Array:
        """The states after ``ticks`` ticks from ``x`` at tick ``start``."""
        for k in range(ticks):
            x = self.step(vals, x, start + k)
            if idle_cooldowns:
                x[:, self.cooldown] = 0.0
        return x

    # ---- initial state ----------------------------------------------------------------------

    def initial_states(self, starts: Array | None = None, scenarios: int = 1) -> Array:
        """The declared initial states, [S, n]; ``starts`` overrides the declared values of
        the non-register states (NaN entries keep the declared value). Registers and other
        states whose init is an expression start from it, as in the simulator."""
        ts = self.ts
        S = scenarios if starts is None else starts.shape[0]
        vals = self.base_values(S)
        x = np.full((S, self.n), np.nan)
        pending: list[int] = []
        for i, s in enumerate(ts.states):
            if isinstance(s.init, Const):
                x[:, i] = s.init.value
            else:
                pending.append(i)
        if starts is not None:
            keep = ~np.isnan(starts)
            x[keep] = starts[keep]
        if pending:
            vals[:, : self.n] = np.nan_to_num(x)
            env = _env(self, vals)
            with np.errstate(all="ignore"):
                for name, fn in self._user_let_fns():  # user lets only, as the simulator does
                    env[name] = fn(env)
                for i, fn in self._inits():
                    x[:, i] = np.broadcast_to(np.asarray(fn(env), dtype=float), (S,))
        return x

    def _inits(self) -> list[tuple[int, Fn]]:
        if self._init_fns is None:
            from coherence.simulate.engine import compile_expr

            self._init_fns = [
                (i, compile_expr(s.init))
                for i, s in enumerate(self.ts.states)
                if not isinstance(s.init, Const)
            ]
        return self._init_fns

    def _user_let_fns(self) -> list[tuple[str, Fn]]:
        from coherence.simulate.engine import compile_expr

        return [(d.name, compile_expr(d.expr)) for d in self.ts.lets if d.owner is None]


def _env(p: Program, vals: Array) -> Env:
    env: Env = {"__t": 0}
    for i, name in enumerate(p.slot_names):
        env[name] = vals[:, i]
    return env


def _names_outside(e: Expr, blocked: set[str]) -> set[str]:
    """The names ``e`` reads other than as operands of the folds keyed in ``blocked``."""
    return {x.name for x, _ in fold_walk(e, blocked) if isinstance(x, Var)}


def state_scale(states: Sequence[StateVar], x: Array) -> Array:
    """A per-state scale for residuals and distances: the largest magnitude the state takes
    in ``x`` ([..., n]), at least min(its range, 1) (at least 1 if unbounded)."""
    out = np.empty(len(states))
    for i, s in enumerate(states):
        rng = s.hi - s.lo
        floor = min(rng, 1.0) if np.isfinite(rng) and rng > 0 else 1.0
        vals = np.abs(x[..., i]) if x.size else np.zeros(1)
        big = float(np.max(vals[np.isfinite(vals)], initial=0.0))
        out[i] = max(big, floor)
    return out
