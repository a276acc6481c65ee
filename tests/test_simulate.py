"""The simulator against traces computed by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from coherence.ir.nodes import TransitionSystem
from coherence.simulate.engine import simulate
from tests.helpers import run, system

U = "input u : 1 in [0, 100] nominal 0"


def test_measurement_delay_is_an_exact_shift() -> None:
    # a(t+1) = u(t-2); the registers start full of u(0) = 1
    tr = run(
        f"{U}\n state a in [-1000, 1000] init 0\n loop l {{ every 1s senses u delay 2s actuates a to u }}",
        {"u": [1, 2, 3, 4, 5, 6]},
    )
    assert tr.state("a")[0].tolist() == [0, 1, 1, 1, 2, 3, 4]


def test_averaging_window_is_an_exact_mean() -> None:
    tr = run(
        f"{U}\n state a in [-1000, 1000] init 0\n loop l {{ senses u window 3s actuates a to u }}",
        {"u": [3, 6, 9, 12]},
    )
    assert tr.state("a")[0].tolist() == [0, 3, 4, 6, 9]


def test_delay_and_window_together() -> None:
    # sensed(t) = mean(u(t-1), u(t-2))
    tr = run(
        f"{U}\n state a in [-1000, 1000] init 0\n loop l {{ senses u delay 1s window 2s actuates a to u }}",
        {"u": [2, 4, 8, 16, 32]},
    )
    assert tr.state("a")[0].tolist() == [0, 2, 2, 3, 6, 12]


def test_period_and_phase_select_the_ticks_a_loop_acts_on() -> None:
    tr = run("state a in [0, 100] init 0\n loop l { every 3s phase 1s actuates a by 1 }", ticks=8)
    assert tr.state("a")[0].tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 3]
    assert tr.let("l.fires")[0].tolist() == [0, 1, 0, 0, 1, 0, 0, 1]


def test_saturation_at_state_bounds() -> None:
    tr = run("state a in [0, 2.5] init 0\n loop l { actuates a by 1 }", ticks=5)
    assert tr.state("a")[0].tolist() == [0, 1, 2, 2.5, 2.5, 2.5]


def test_loop_limit_saturates_before_the_state_bound() -> None:
    tr = run("state a in [0, 10] init 0\n loop l { actuates a by 1 limit [0, 2] }", ticks=4)
    assert tr.state("a")[0].tolist() == [0, 1, 2, 2, 2]


def test_integer_states_round_half_up() -> None:
    tr = run(
        "state r : replica integer in [1, 10] init 1\n loop l { actuates r to r * 1.6 }", ticks=5
    )
    # 1 -> round(1.6)=2 -> round(3.2)=3 -> round(4.8)=5 -> 8 -> min(12.8, 10) = 10
    assert tr.state("r")[0].tolist() == [1, 2, 3, 5, 8, 10]


def test_plant_integer_state_is_rounded() -> None:
    tr = run("state n integer in [0, 100] init 0\n next n = n + 0.5", ticks=3)
    assert tr.state("n")[0].tolist() == [0, 1, 2, 3]


def test_cooldown_blocks_actions_after_a_change() -> None:
    tr = run(
        "state a in [0, 100] init 0\n loop l { every 1s cooldown 3s actuates a by 1 }", ticks=7
    )
    assert tr.state("a")[0].tolist() == [0, 1, 1, 1, 2, 2, 2, 3]


def test_hpa_scale_down_stabilization_window() -> None:
    # recommendations d; scale down only to the highest recommendation of the last 3 ticks
    body = (
        "input d : replica in [0, 20] nominal 10\n"
        "state r : replica integer in [1, 20] init 10\n"
        "loop hpa { every 1s stabilize down 3s actuates r to d }"
    )
    tr = run(body, {"d": [10, 4, 6, 2, 2, 2, 2]})
    assert tr.state("r")[0].tolist() == [10, 10, 10, 10, 6, 6, 2, 2]


def test_scale_up_is_not_delayed_by_a_down_window() -> None:
    body = (
        "input d : replica in [0, 20] nominal 10\n"
        "state r : replica integer in [1, 20] init 10\n"
        "loop hpa { stabilize down 3s actuates r to d }"
    )
    tr = run(body, {"d": [15, 15, 3]})
    assert tr.state("r")[0].tolist() == [10, 15, 15, 15]


def test_rate_limits_per_action() -> None:
    body = f"{U}\n state a in [0, 100] init 0\n loop l {{ rate up 2 down 1 actuates a to u }}"
    tr = run(body, {"u": [10, 10, 10, 0, 0]})
    assert tr.state("a")[0].tolist() == [0, 2, 4, 6, 5, 4]


def test_relative_rate_limit() -> None:
    body = f"{U}\n state a in [0, 100] init 10\n loop l {{ rate up 50% actuates a to u }}"
    tr = run(body, {"u": [100, 100, 100]})
    assert tr.state("a")[0].tolist() == [10, 15, 22.5, 33.75]


def test_deadband_holds_small_changes() -> None:
    body = f"{U}\n state a in [0, 100] init 0\n loop l {{ deadband 0.5 actuates a to u }}"
    tr = run(body, {"u": [0.3, 0.6, 0.8, 0.2]})
    assert tr.state("a")[0].tolist() == pytest.approx([0, 0, 0.6, 0.6, 0.6])


def test_relative_tolerance_holds_small_changes() -> None:
    body = f"{U}\n state a in [0, 100] init 10\n loop l {{ tolerance 10% actuates a to u }}"
    tr = run(body, {"u": [10.5, 12, 12.5]})
    assert tr.state("a")[0].tolist() == [10, 10, 12, 12]


def test_guard_gates_the_loop() -> None:
    body = f"{U}\n state a in [0, 100] init 0\n loop l {{ when u > 5 actuates a by 1 }}"
    tr = run(body, {"u": [1, 6, 7, 2]})
    assert tr.state("a")[0].tolist() == [0, 0, 1, 2, 2]


def test_shared_actuator_changes_add_up() -> None:
    body = "state a in [0, 100] init 0\n loop p { actuates a by 1 }\n loop q { actuates a by 2 }"
    tr = run(body, ticks=3)
    assert tr.state("a")[0].tolist() == [0, 3, 6, 9]


def test_plant_update_uses_lets_and_tick() -> None:
    body = (
        "input arrivals : req/s in [0, 100] nominal 10\n param cap = 4 req/s\n"
        "state q : req in [0, 1000] init 0\n let net = arrivals - cap\n"
        "next q = max(0, q + net * tick)"
    )
    tr = run(body, ticks=3)
    assert tr.state("q")[0].tolist() == [0, 6, 12, 18]


def test_units_convert_exactly() -> None:
    body = (
        "param budget = 900 $/h\n state spend : $/h in [0, 10000] init 0\n"
        "loop l { every 1min actuates spend to budget * 2 }"
    )
    ts = system(body)
    tr = simulate(ts, 2)
    assert tr.state("spend")[0, 1] == pytest.approx(0.5)  # $/s inside, 1800 $/h shown
    assert ts.state("spend").scale == pytest.approx(1 / 3600)


def test_scenarios_are_vectorised_and_independent() -> None:
    ts = system(
        f"{U}\n state a in [-1000, 1000] init 0\n loop l {{ senses u delay 1s actuates a to u }}"
    )
    inputs = np.array([[[1.0], [2.0], [3.0]], [[5.0], [6.0], [7.0]]])
    both = simulate(ts, 3, inputs=inputs)
    for s in range(2):
        one = simulate(ts, 3, inputs=inputs[s : s + 1])
        assert both.states[s].tolist() == one.states[0].tolist()


def test_parameter_samples_are_vectorised() -> None:
    ts = system("param k = 1\n state a in [0, 100] init 0\n loop l { actuates a by k }")
    tr = simulate(
        ts, 2, params={"k": np.array([1.0, 2.0, 3.0])}, scenarios=3, inputs=np.zeros((3, 2, 0))
    )
    assert tr.state("a")[:, -1].tolist() == [2, 4, 6]


def test_initial_state_override_including_registers() -> None:
    ts = system(
        f"{U}\n state a in [-1000, 1000] init 0\n loop l {{ senses u delay 2s actuates a to u }}"
    )
    tr = simulate(ts, 2, init={"a": 5, "l.u.r2": 9})
    # r2 holds u(t-2): overridden to 9; r1 starts from u(0) = 0
    assert tr.state("a")[0].tolist() == [5, 9, 0]


def test_non_finite_values_are_kept_not_raised() -> None:
    ts = system(
        "state a in [-inf, inf] init 1\n next a = a / 0".replace("-inf, inf", "-1000, 1000")
    )
    tr = simulate(ts, 2)
    assert np.isclose(tr.state("a")[0, 1], 1000)  # +inf clamps to the bound


def test_zero_ticks_gives_the_initial_state() -> None:
    ts = system(f"{U}\n state a in [0, 10] init 3\n loop l {{ senses u delay 1s actuates a to u }}")
    tr = simulate(ts, 0)
    assert tr.states.shape == (1, 1, len(ts.states))
    assert tr.state("a")[0].tolist() == [3]


# ---- evaluating expressions over a trace --------------------------------------------------

WINDOWED = f"""{U}
 input v : 1 in [0, 100] nominal 3
 param k = 0.5
 state a in [-1000, 1000] init 0
 state b in [0, 50] init 7
 let spread = max(a, b, u, v, a + 1, b - 1, u * v, k, 2) - min(a, b, u, v, a - 1, b + 1, k, 2, 3)
 next b = b + 0.25 * (u - b)
 loop l {{ every 2s phase 1s senses u delay 2s window 9s actuates a to u + k * b }}
 loop m {{ every 3s senses b window 10s actuates a by 0.1 * (v - a) }}
 require always a <= 900 + spread for 40 ticks"""


def _bits(x: np.ndarray) -> bytes:
    return np.ascontiguousarray(x, dtype=float).tobytes()


def test_vectorised_evaluate_matches_tick_by_tick_with_delays_windows_and_periods() -> None:
    from coherence.ir.nodes import Phase
    from coherence.simulate.engine import evaluate, evaluate_ticks

    ts = system(WINDOWED)
    rng = np.random.default_rng(3)
    inputs = rng.uniform(0, 100, size=(3, 40, 2))
    inputs[1, 5:9, 0] = np.nan  # non-finite values flow through both forms alike
    tr = simulate(ts, 40, inputs=inputs, params={"k": np.array([0.5, -0.0, 2.0])})
    exprs = [d.expr for d in ts.lets] + [s.update for s in ts.states]
    exprs += [r.cond for r in ts.requirements if r.cond is not None]
    exprs += [Phase(2, 1), Phase(3, 0)]
    assert any(len(lp.sensors[0].registers) >= 8 for lp in ts.loops)  # folds take the stack
    for e in exprs:
        assert _bits(evaluate(e, tr)) == _bits(evaluate_ticks(e, tr)), e


def test_evaluating_the_lets_over_a_trace_reproduces_the_simulated_lets() -> None:
    from coherence.simulate.engine import evaluate

    ts = system(WINDOWED)
    tr = simulate(ts, 30, inputs=np.random.default_rng(5).uniform(0, 100, size=(2, 30, 2)))
    for k, d in enumerate(ts.lets):
        assert _bits(evaluate(d.expr, tr)) == _bits(tr.lets[:, :, k]), d.name
    for i, s in enumerate(ts.states):
        nxt = np.clip(evaluate(s.update, tr), s.lo, s.hi)
        assert _bits(nxt) == _bits(tr.states[:, 1:, i]), s.name


def test_vectorised_evaluate_matches_tick_by_tick_on_the_shipped_specs() -> None:
    from coherence.compile import compile_text
    from coherence.pipeline import find_specs
    from coherence.simulate.engine import compile_expr, evaluate

    for path in find_specs(["specs"]):
        for ts in compile_text(str(path), path.read_text(encoding="utf-8")).systems:
            tr = simulate(ts, min(120, 4 * ts.hyperperiod + 20))
            exprs = [o.expr for o in ts.objectives] + [o.bound for o in ts.objectives if o.bound]
            exprs += [r.cond for r in ts.requirements if r.cond is not None]
            exprs += [r.trigger for r in ts.requirements if r.trigger is not None]
            exprs += [d.expr for d in ts.lets]
            fns = [compile_expr(e) for e in exprs]
            ref = np.empty((len(exprs), tr.ticks))
            for t in range(tr.ticks):
                env = tr.env_at(t)
                for j, f in enumerate(fns):
                    ref[j, t] = np.asarray(f(env), dtype=float).reshape(-1)[0]
            for j, e in enumerate(exprs):
                assert _bits(evaluate(e, tr)[0]) == _bits(ref[j]), (path, e)


def test_a_long_fold_equals_the_left_fold_it_replaces() -> None:
    from coherence.ir.nodes import Binary, Call, Var
    from coherence.simulate.engine import _reduce, compile_expr, fold_key

    names = [f"x{i}" for i in range(12)]
    rng = np.random.default_rng(11)
    vals = rng.normal(size=(12, 4, 5)) * 10.0 ** rng.integers(-8, 9, size=(12, 4, 5))
    vals[3, 0, 0], vals[5, 1, 1], vals[7, 2, 2], vals[0, 3, 3] = np.nan, np.inf, -np.inf, -0.0
    env = {n: vals[i] for i, n in enumerate(names)}
    chain = Binary("+", Var(names[0]), Var(names[1]))
    for n in names[2:]:
        chain = Binary("+", chain, Var(n))
    cases = [
        (chain, np.add),
        (Call("min", tuple(Var(n) for n in names)), np.minimum),
        (Call("max", tuple(Var(n) for n in names)), np.maximum),
    ]
    for e, ufunc in cases:
        expect = _bits(np.asarray(_reduce(ufunc, [env[n] for n in names])))
        f = compile_expr(e)
        assert _bits(np.asarray(f(env))) == expect
        # passed in stacked by the evaluator, as the simulator does for consecutive registers
        assert _bits(np.asarray(f({fold_key(names): vals}))) == expect
        # the signal first, its registers stacked (a window's sum: `x + r1 + ... + rn`)
        for h in (1, 2):
            tail = {fold_key(names[h:]): vals[h:]} | {n: env[n] for n in names[:h]}
            assert _bits(np.asarray(f(tail))) == expect, (e, h)
    # booleans at the start of a sum keep their meaning (True + True is True, not 2)
    benv = {n: np.array([True]) for n in names[:2]} | {n: np.array([0.5]) for n in names[2:]}
    assert float(np.asarray(compile_expr(chain)(benv))[0]) == 1.0 + 0.5 * 10
    # a boolean head does not take the stacked path: the plain fold keeps True + True = True
    btail = benv | {fold_key(names[2:]): np.full((10, 1), 0.5)}
    assert float(np.asarray(compile_expr(chain)(btail))[0]) == 1.0 + 0.5 * 10


def test_window_sums_of_a_signal_and_its_registers_read_the_registers_stacked() -> None:
    from coherence.compile import compile_text
    from coherence.simulate.engine import compile_system, stacked_blocks

    path = "specs/llm_serving.coh"
    with open(path, encoding="utf-8") as fh:
        ts = compile_text(path, fh.read()).systems[0]
    index = {s.name: i for i, s in enumerate(ts.states)}
    cost = next(d for d in ts.lets if d.name == "cost_controller.cost")
    blocks = sorted((first, end) for _, first, end in stacked_blocks(cost.expr, index))
    # `cost` (a let) first, then its 299 registers, summed in chains of at most 128 terms
    # (coherence.ir.lower): each chain's registers are read as one consecutive block
    assert sum(end - first for first, end in blocks) == 299
    assert all(a[1] == b[0] for a, b in itertools.pairwise(blocks))
    comp = compile_system(ts)
    assert {first for first, _ in blocks} <= {b[1] for b in comp.blocks}


def test_state_names_are_derived_once_and_follow_replace() -> None:
    from dataclasses import replace

    ts = system(WINDOWED)
    assert ts.state_names == tuple(s.name for s in ts.states)
    assert ts.state_names is ts.state_names
    fewer = replace(ts, states=ts.states[:2])
    assert fewer.state_names == tuple(s.name for s in ts.states[:2])
    assert replace(ts) == ts and hash(replace(ts)) == hash(ts)
    assert "_state_names" not in repr(ts)


def test_trace_lookups_by_name() -> None:
    ts = system(WINDOWED)
    tr = simulate(ts, 5)
    assert _bits(tr.state("b")) == _bits(tr.states[:, :, ts.state_names.index("b")])
    k = [d.name for d in ts.lets].index("spread")
    assert _bits(tr.let("spread")) == _bits(tr.lets[:, :, k])
    with pytest.raises(ValueError):
        tr.state("spread")
    with pytest.raises(ValueError):
        tr.let("b")


def test_until_stops_at_the_first_prefix_it_accepts_and_changes_nothing_before() -> None:
    from coherence.simulate.engine import UNTIL_FIRST

    ts = system(WINDOWED)
    rng = np.random.default_rng(3)
    inputs = rng.uniform(0, 100, size=(4, 300, 2))
    full = simulate(ts, 300, inputs=inputs)
    seen: list[int] = []

    def past_100(head: object) -> bool:
        seen.append(head.ticks)  # type: ignore[attr-defined]
        return head.ticks > 100  # type: ignore[attr-defined]

    part = simulate(ts, 300, inputs=inputs, until=past_100)
    assert seen == [UNTIL_FIRST, 2 * UNTIL_FIRST, 4 * UNTIL_FIRST]
    assert part.ticks == 4 * UNTIL_FIRST
    ref = full.prefix(part.ticks)
    for a, b in [(part.states, ref.states), (part.lets, ref.lets), (part.inputs, ref.inputs)]:
        assert _bits(a) == _bits(b)
    assert part.clipped.tolist() == ref.clipped.tolist()
    never = simulate(ts, 300, inputs=inputs, until=lambda head: False)
    assert never.ticks == 300 and _bits(never.states) == _bits(full.states)


def _clamp_every_tick(ts: TransitionSystem, ticks: int, inputs: np.ndarray, init: dict) -> tuple:
    """The plain semantics: every state, registers included, clamped at every tick."""
    from coherence.simulate.engine import compile_system

    comp = compile_system(ts)
    tr0 = simulate(ts, 1, inputs=inputs[:, :1], init=init)  # the starts, registers filled
    S, n = inputs.shape[0], len(ts.states)
    lo = np.array([s.lo for s in ts.states])
    hi = np.array([s.hi for s in ts.states])
    states = np.empty((S, ticks + 1, n))
    states[:, 0] = tr0.states[:, 0]
    clipped = np.zeros((S, ticks, n), dtype=bool)
    for t in range(ticks):
        env = {"__t": t, **{p.name: np.full(S, p.value) for p in ts.params}}
        env.update({u.name: inputs[:, t, j] for j, u in enumerate(ts.inputs)})
        env.update(zip(ts.state_names, states[:, t].T, strict=True))
        with np.errstate(all="ignore"):
            for name, f in comp.lets:
                env[name] = f(env)
            raw = np.empty((S, n))
            raw[:, comp.shift_dst] = states[:, t][:, comp.shift_src]
            for i, f in comp.updates:
                raw[:, i] = f(env)
            states[:, t + 1] = np.clip(raw, lo, hi)
            clipped[:, t] = (raw < lo) | (raw > hi)
    return states, clipped


@pytest.mark.parametrize("change", ["same", "wider", "narrower", "signed zero", "none"])
def test_register_copies_after_the_first_tick_are_the_clamped_semantics(change: str) -> None:
    """After the first tick a register copy whose range is its source's (or holds it with
    room) is taken without a clamp; whatever the registers' ranges and starts (outside the
    range, NaN, -0.0), the values and clamp flags are those of clamping every state at every
    tick, bit for bit."""
    import dataclasses

    ts = system(
        "  input u : 1 in [-5, 5] nominal 0\n"
        "  state x : 1 in [0, 4] init 1\n"
        "  state y : 1 in [0, 4] init 0\n"
        "  next x = x + u\n"
        "  loop l { every 2s senses x delay 3s window 2s actuates y to x }"
    )
    regs = [s for s in ts.states if s.kind == "sensor"]
    assert len(regs) >= 3
    # the ranges of the first two registers (they come without one: the whole line)
    ranges = {
        "same": ((0.0, 4.0), (0.0, 4.0)),
        "wider": ((0.0, 4.0), (-1.0, 5.0)),
        "narrower": ((0.0, 4.0), (0.5, 3.0)),
        "signed zero": ((0.0, 4.0), (-0.0, 4.0)),
        "none": ((-np.inf, np.inf), (-np.inf, np.inf)),
    }[change]
    ranged = {regs[0].name: ranges[0], regs[1].name: ranges[1]}
    ts = dataclasses.replace(
        ts,
        states=tuple(
            dataclasses.replace(s, lo=ranged[s.name][0], hi=ranged[s.name][1])
            if s.name in ranged
            else s
            for s in ts.states
        ),
    )
    rng = np.random.default_rng(7)
    S, T = 12, 25
    inputs = rng.uniform(-5, 5, (S, T, 1))
    inputs[:, ::4] = 0.0
    init = {s.name: rng.uniform(-2, 6, S) for s in ts.states}
    init[regs[0].name][:4] = [-0.0, 0.0, np.nan, 4.0]
    init["x"][:3] = [-0.0, 0.0, -1.0]
    with np.errstate(all="ignore"):
        tr = simulate(ts, T, inputs=inputs, init=init)
    states, clipped = _clamp_every_tick(ts, T, inputs, init)
    assert tr.states.tobytes() == states.tobytes()
    assert tr.clipped.tolist() == clipped.tolist()


def test_states_with_equal_inits_start_as_each_computed_alone() -> None:
    """A window's registers all start at their signal's value, computed once for all of
    them; each state's start is still the value of its own init expression, bit for bit,
    also where two inits are equal expressions whose values differ in the sign of a zero."""
    import dataclasses

    from coherence.ir.nodes import Binary, Const, Var
    from coherence.simulate.engine import compile_expr

    ts = system(
        "  input u : 1 in [-5, 5] nominal 0\n"
        "  state x : 1 in [-4, 4] init 1\n"
        "  state y : 1 in [-4, 4] init 0\n"
        "  next x = x + u\n"
        "  loop l { every 1s senses x window 6s actuates y to x }"
    )
    regs = [s.name for s in ts.states if s.kind == "sensor"]
    assert len(regs) >= 5
    plus = {regs[0]: Const(0.0), regs[1]: Const(-0.0)}  # x + 0.0 == x + -0.0 as expressions
    ts = dataclasses.replace(
        ts,
        states=tuple(
            dataclasses.replace(s, init=Binary("+", Var("x"), plus[s.name]))
            if s.name in plus
            else s
            for s in ts.states
        ),
    )
    assert ts.states[[s.name for s in ts.states].index(regs[0])].init == Binary(
        "+", Var("x"), Const(-0.0)
    )
    x0 = np.array([-0.0, 0.0, 1.5, np.nan])
    tr = simulate(ts, 2, init={"x": x0}, scenarios=4)
    env = {"x": x0, "y": np.zeros(4), "u": np.zeros(4)}
    for i, s in enumerate(ts.states):
        value = x0 if s.name == "x" else compile_expr(s.init)(env)
        want = np.broadcast_to(np.asarray(value, dtype=float), (4,))
        assert tr.states[:, 0, i].tobytes() == want.tobytes(), s.name
    assert np.signbit(tr.states[0, 0, tr.ts.state_names.index(regs[1])])
    assert not np.signbit(tr.states[0, 0, tr.ts.state_names.index(regs[0])])


def test_registers_read_only_as_a_stacked_window_stay_out_of_the_environment() -> None:
    """A window's registers that only its stacked sum reads are not put in the environment
    one by one each tick; the run is bit for bit the plain semantics'."""
    from coherence.simulate.engine import compile_system

    ts = system(
        "  input u : 1 in [0, 5] nominal 1\n"
        "  state y : 1 in [0, 100] init 0\n"
        "  loop l { every 3s senses u window 12s actuates y to u }"
    )
    comp = compile_system(ts)
    regs = {s.name for s in ts.states if s.kind == "sensor"}
    assert len(regs) >= 11 and comp.read is not None
    read = {name for name, _ in comp.read}
    assert "y" in read and len(regs - read) >= len(regs) - 2
    rng = np.random.default_rng(3)
    inputs = rng.uniform(0, 5, (6, 40, 1))
    init = {"y": rng.uniform(-10, 110, 6)}
    tr = simulate(ts, 40, inputs=inputs, init=init)
    states, clipped = _clamp_every_tick(ts, 40, inputs, init)
    assert tr.states.tobytes() == states.tobytes()
    assert tr.clipped.tolist() == clipped.tolist()


def test_large_stacked_folds_run_row_by_row_with_the_same_bits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A window's sum (and a stabilization window's max) over many scenarios is folded row by
    row in place rather than accumulated over a stack: the same operations in the same order,
    so the same bits as the accumulate, with NaN and signed zeros among the values."""
    import coherence.simulate.engine as engine

    ts = system(
        "  input u : 1 in [-5, 5] nominal 0\n"
        "  state x : 1 in [-40, 40] init 1\n"
        "  state r : replica integer in [1, 64] init 4\n"
        "  next x = x + u\n"
        "  loop l { every 1s senses x delay 3s window 30s actuates r to ceil(r * (1 + x / 100)) "
        "stabilize down 20s }"
    )
    folds = engine.stacked_folds
    comp = engine.compile_system(ts)
    direct = {k for k, _, _ in comp.blocks}
    stacked = [n for d in ts.lets for n in folds(d.expr) if len(n) >= 20]
    assert any(engine.fold_key(n) in direct for n in stacked)  # a block folded as it is
    assert any(engine.fold_key(n) not in direct for n in stacked)  # one after a head
    rng = np.random.default_rng(11)
    S, T = 400, 40
    inputs = rng.uniform(-5, 5, (S, T, 1)) * 10.0 ** rng.integers(-8, 3, (S, T, 1))
    inputs[:3, 5, 0] = [np.nan, -0.0, 0.0]
    init = {"x": rng.uniform(-40, 40, S)}
    init["x"][:2] = [-0.0, np.nan]
    monkeypatch.setattr(engine, "_ROWS_OVER", 10**12)  # every fold accumulated over a stack
    engine._COMPILED.clear()
    want = simulate(ts, T, inputs=inputs, init=init)
    monkeypatch.setattr(engine, "_ROWS_OVER", 16)  # every fold of the window run row by row
    engine._COMPILED.clear()
    got = simulate(ts, T, inputs=inputs, init=init)
    assert got.states.tobytes() == want.states.tobytes()
    assert got.lets.tobytes() == want.lets.tobytes()
    assert got.clipped.tolist() == want.clipped.tolist()


def test_the_operating_point_says_whether_the_nominal_run_settled() -> None:
    from coherence.compile import compile_text
    from coherence.simulate.settle import operating_point, settle_ticks

    # x' = 0.5 x + 1 rests at 2 (the closed form of the fixed point: 1 / (1 - 0.5))
    rest = compile_text(
        "a.coh", "system s { tick 1s state x in [0, 10] init 8 next x = 0.5 * x + 1 }"
    ).systems[0]
    p = operating_point(rest, settle_ticks(rest))
    assert p.settled and abs(p.state["x"] - 2.0) < 1e-9 and p.reason == ""
    # x' = 3 - x alternates 1, 2, 1, ... every tick: one hyperperiod (1 tick) moves it by 1/10
    flip = compile_text(
        "b.coh", "system s { tick 1s state x in [0, 10] init 1 next x = 3 - x }"
    ).systems[0]
    p = operating_point(flip, settle_ticks(flip))
    assert not p.settled and "`x` still moves by 10%" in p.reason
    # a drift to a bound is at rest once it is there
    drift = compile_text(
        "c.coh", "system s { tick 1s state x in [0, 10] init 0 next x = x + 1 }"
    ).systems[0]
    p = operating_point(drift, 5)
    assert not p.settled and p.state["x"] == 5.0
    assert operating_point(drift, 300).settled
