"""Properties of ``advance`` over arbitrary loss sequences (hypothesis) and its determinism."""

from __future__ import annotations

import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot_service.engine import advance, dump_state
from lrpilot_service.engine.state import State

any_loss = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=0.0, max_value=10.0),
    st.just(float("nan")),
)


def drive_with(
    config: TunerConfig, losses: list[float], grads: list[float] | None = None
) -> tuple[list[Decision], int]:
    """Feed the losses cyclically (a fresh job per call); returns every decision and steps consumed."""
    state, decision = advance(config, None, None)
    decisions = [decision]
    i = 0
    while decision.action != "done":
        window, norms = [], []
        for _ in range(decision.steps):
            window.append(losses[i % len(losses)])
            norms.append(grads[i % len(grads)] if grads else 1.0)
            i += 1
            if decision.should_stop(window[-1], norms[-1]):
                break
        report = WindowReport(start_step=decision.start_step, losses=window, grad_norms=norms)
        state, decision = advance(config, state, report)
        decisions.append(decision)
    return decisions, i


def lr_is_allowed(config: TunerConfig, d: Decision, warmup_lr: float) -> bool:
    for lr in (d.lr, d.lr_end):
        if d.phase == "warmup":  # up to the warmup target (a range-test bracket's centre, or warmup_lr)
            target = max(warmup_lr, config.lr_max)
            if not 0 < lr <= target * (1 + 1 / max(1, config.warmup_steps or 1)) + 1e-15:
                return False
        elif not config.lr_min * (1 - 1e-12) <= lr <= config.lr_max * (1 + 1e-12):
            return False
    return True


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    losses=st.lists(any_loss, min_size=1, max_size=40),
    grads=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=10),
    total=st.integers(min_value=10, max_value=700),
    warmup=st.integers(min_value=0, max_value=60),
    candidates=st.integers(min_value=2, max_value=4),
)
def test_advance_never_raises_and_stays_in_range_and_budget(
    losses: list[float], grads: list[float], total: int, warmup: int, candidates: int
) -> None:
    warmup = min(warmup, total - 1)
    config = TunerConfig(
        total_steps=total, warmup_steps=warmup, candidates=candidates, lr_min=1e-4, lr_max=0.5
    )
    decisions, consumed = drive_with(config, losses, grads)
    warmup_lr = config.lr_min**0.75 * config.lr_max**0.25
    assert decisions[-1].action == "done"
    assert consumed <= total
    assert decisions[-1].start_step == consumed
    assert all(d.start_step + d.steps <= total for d in decisions)
    assert all(lr_is_allowed(config, d, warmup_lr) for d in decisions)
    assert all(math.isfinite(d.lr) and math.isfinite(d.lr_end) for d in decisions)


def run_states(config: TunerConfig, losses: list[float]) -> tuple[list[str], list[str]]:
    state, decision = advance(config, None, None)
    states, decisions = [dump_state(state)], [decision.model_dump_json()]
    i = 0
    while decision.action != "done":
        window = [losses[(i + j) % len(losses)] * (1 + 0.01 * j) for j in range(decision.steps)]
        i += decision.steps
        state, decision = advance(config, state, WindowReport(start_step=decision.start_step, losses=window))
        states.append(dump_state(state))
        decisions.append(decision.model_dump_json())
    return states, decisions


DETERMINISM_CONFIG = TunerConfig(total_steps=1500, candidates=4, seed=7, lr_min=1e-4, lr_max=1.0)
DETERMINISM_LOSSES = [2.0 / (1 + 0.01 * i) + 0.05 * math.sin(i) for i in range(97)]


def test_same_seed_and_reports_give_byte_identical_states_and_decisions() -> None:
    first = run_states(DETERMINISM_CONFIG, DETERMINISM_LOSSES)
    second = run_states(DETERMINISM_CONFIG, DETERMINISM_LOSSES)
    assert first == second


def test_state_reloaded_from_json_continues_identically() -> None:
    config, losses = DETERMINISM_CONFIG, DETERMINISM_LOSSES
    reference_states, reference_decisions = run_states(config, losses)
    # Interrupt after every window: serialise, reload, continue; the run must be unchanged.
    state, decision = advance(config, None, None)
    i = 0
    replayed = [decision.model_dump_json()]
    while decision.action != "done":
        reloaded: State = json.loads(dump_state(state))
        window = [losses[(i + j) % len(losses)] * (1 + 0.01 * j) for j in range(decision.steps)]
        i += decision.steps
        state, decision = advance(
            config, reloaded, WindowReport(start_step=decision.start_step, losses=window)
        )
        replayed.append(decision.model_dump_json())
    assert replayed == reference_decisions
    assert dump_state(state) == reference_states[-1]


def test_advance_does_not_mutate_the_callers_state() -> None:
    state, decision = advance(DETERMINISM_CONFIG, None, None)
    before = dump_state(state)
    advance(DETERMINISM_CONFIG, state, WindowReport(start_step=0, losses=[1.0] * decision.steps))
    assert dump_state(state) == before
