"""The range test as the engine drives it: the locating pass, the restore, the test proper."""

from __future__ import annotations

import math
from collections.abc import Callable
from unittest import mock

import pytest

from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot_service.engine import advance, probe
from lrpilot_service.engine.state import State, copy_state

CONFIG = TunerConfig(total_steps=1000, seed=3)  # the test proper: 30 steps, 5 a decade of [1e-6, 1]
LOSS = Callable[[float], float]


def report_of(d: Decision, loss_at_lr: LOSS) -> WindowReport:
    """Losses as a function of each step's LR, stopped where the decision's guard would stop."""
    losses: list[float] = []
    for step in range(d.start_step, d.start_step + d.steps):
        losses.append(loss_at_lr(d.lr_at(step)))
        if d.should_stop(losses[-1]):
            break
    return WindowReport(start_step=d.start_step, losses=losses)


def cliff(lr: float) -> float:
    """Flat below 3e-3, falls over one decade to 3e-2, explodes above 0.3 (the digits CNN's shape)."""
    if lr > 0.3:
        return math.inf
    return 2.3 - 1.5 * min(1.0, max(0.0, math.log10(lr / 3e-3))) + 4 * max(0.0, lr - 0.05)


def open_job(loss_at_lr: LOSS, config: TunerConfig = CONFIG) -> tuple[State, list[Decision]]:
    state, d = advance(config, None, None)
    decisions = [d]
    while d.phase == "probe":
        state, d = advance(config, state, report_of(d, loss_at_lr))
        decisions.append(d)
    return state, decisions


def proper(decisions: list[Decision]) -> list[Decision]:
    """The test proper's windows: from the restore that ends the locating pass."""
    start = next(i for i, d in enumerate(decisions) if d.phase == "probe" and d.action == "restore")
    return [d for d in decisions[start:] if d.phase == "probe"]


def test_the_locating_pass_starts_at_lr_min_and_checks_every_few_steps() -> None:
    _, decisions = open_job(cliff)
    first, second = decisions[0], decisions[1]
    assert (first.phase, first.action, first.stage, first.ramp) == ("probe", "snapshot", -1, "geometric")
    assert first.steps == 4 and first.max_loss is None and first.lr == CONFIG.lr_min  # the guard's reference
    assert second.steps == probe.CHECK_STEPS and second.max_loss == pytest.approx(3 * 2.3)
    pace = math.log10(second.lr_end / second.lr) / second.steps
    assert pace == pytest.approx(1 / probe.LOCATE_PER_DECADE)  # decades a step


def test_once_the_loss_falls_the_weights_are_restored_and_the_test_proper_starts_a_decade_below() -> None:
    state, decisions = open_job(cliff)
    windows = proper(decisions)
    restart = windows[0]
    fell_at = decisions[decisions.index(restart) - 1].lr  # the locating window that saw the fall
    assert 1e-3 < fell_at < 3e-3  # the window that saw the first fall began below the cliff
    assert restart.lr == pytest.approx(fell_at / 10**probe.BACKOFF_DECADES)
    assert restart.lr_at(restart.start_step + 30) == pytest.approx(CONFIG.lr_max, rel=1e-3)  # 30 steps
    sweep = state["probe"]
    assert sweep is not None and sweep["lrs"][0] == pytest.approx(restart.lr)  # the pass is dropped
    assert sweep["losses"][0] == pytest.approx(cliff(restart.lr))


def test_the_test_proper_resolves_the_decade_where_the_loss_moves_more_finely() -> None:
    def moving(state: State) -> int:
        sweep = state["probe"]
        assert sweep is not None
        return sum(3e-3 <= lr <= 3e-2 for lr in sweep["lrs"])

    located, _ = open_job(cliff)
    with mock.patch.object(probe, "LOCATE_BELOW", 0.0):
        fixed, decisions = open_job(cliff)
    assert decisions[1].steps > probe.CHECK_STEPS  # one pace: no checks, no restore
    assert all(d.action != "restore" for d in decisions if d.phase == "probe")
    assert moving(located) >= 1.4 * moving(fixed)  # 30 steps over 3.8 decades, not 6
    assert located["bracket"] is not None and fixed["bracket"] is not None
    for state in (located, fixed):  # both find the cliff's bottom, below the explosion
        assert 1e-2 < state["bracket"][1] < 0.3


def flat(lr: float) -> float:
    return 2.0 + 0.001 * math.sin(1e6 * lr)


def only_the_bottom(lr: float) -> float:
    return 2.0 if lr < 1.2e-5 else math.inf


@pytest.mark.parametrize("curve", [flat, only_the_bottom])
def test_a_pass_that_ends_before_the_loss_falls_hands_over_to_the_whole_range_at_one_pace(
    curve: LOSS,
) -> None:
    state, decisions = open_job(curve)
    with mock.patch.object(probe, "LOCATE_BELOW", 0.0):
        fixed, fixed_decisions = open_job(curve)
    assert state["bracket"] == fixed["bracket"]  # the test before the locating pass, unchanged
    restart = proper(decisions)[0]
    assert restart.lr == CONFIG.lr_min and "before the loss fell" in restart.reason
    located = restart.start_step  # what the pass cost
    assert located <= probe.sweep_steps(CONFIG.lr_min, CONFIG.lr_max, probe.LOCATE_PER_DECADE)
    assert decisions[-1].start_step == located + fixed_decisions[-1].start_step


def test_an_exploding_test_stops_at_the_first_loss_past_the_guard() -> None:
    state, decisions = open_job(cliff)
    sweep = state["probe"]
    assert sweep is not None and sweep["diverged_at"] is not None
    assert len(sweep["lrs"]) == len(sweep["losses"]) + 1  # and the LR it diverged at
    assert sweep["lrs"][-1] > 0.3 >= sweep["lrs"][-2]
    last = proper(decisions)[-1]
    assert decisions[-1].start_step < last.start_step + last.steps  # the window ended early


def test_a_sweep_of_ten_steps_a_decade_or_more_needs_no_locating_pass() -> None:
    for config in (TunerConfig(total_steps=2000), TunerConfig(total_steps=1000, lr_min=1e-3)):
        state, decisions = open_job(cliff, config)  # 60 steps over 6 decades; 30 over 3
        assert decisions[0].steps == 4 and decisions[1].steps > probe.CHECK_STEPS
        assert all(d.action != "restore" for d in decisions if d.phase == "probe")
        assert state["bracket"] is not None and 1e-2 < state["bracket"][1] < 0.3


def test_a_test_begun_by_the_engine_before_the_locating_pass_goes_on_with_its_sweep() -> None:
    with mock.patch.object(probe, "LOCATE_BELOW", 0.0):
        state, d = advance(CONFIG, None, None)
        state, d = advance(CONFIG, state, report_of(d, cliff))
        state, d = advance(CONFIG, state, WindowReport(start_step=d.start_step, losses=[2.3] * 6))
    old = json_of(state)
    sweep = old["probe"]
    del sweep["lrs"], sweep["locating"]  # what an engine before round 18 stored
    upgraded = copy_state(old)
    assert upgraded["probe"] is not None and not upgraded["probe"]["locating"]
    assert upgraded["probe"]["lrs"] == pytest.approx([probe.probe_lr(i, 30, 1e-6, 1.0) for i in range(10)])
    state, d = advance(CONFIG, upgraded, WindowReport(start_step=d.start_step, losses=[2.3] * d.steps))
    assert d.phase == "warmup" and state["bracket"] == [CONFIG.lr_min, CONFIG.lr_max]


def json_of(state: State) -> dict[str, object]:
    import json

    return dict(json.loads(json.dumps(state)))
