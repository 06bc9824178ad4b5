"""Tests for engine/rich_data.py: a later stage holds a larger LR where the model does not memorise."""

from __future__ import annotations

import math
from typing import cast

import pytest

from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot_service.engine import advance, overfit_stop, pick, rich_data, stage
from lrpilot_service.engine.state import SearchKind, State
from tests.engine.test_planner import classic, exploit_with_val
from tests.engine.test_stage import state_with_tries

#: The stage's pick below: x = 0.2 of the search's range [1e-4, 1].
PICK = 1e-4 * 1e4**0.2


def _concluded(val: float, *, train: float = 1.0, kind: SearchKind = "refine") -> tuple[float, str]:
    """A stage on validation scores: x = 0.2 wins clearly, x = 0.5 learned too, x = 0.8 did not."""
    state = state_with_tries([0.5, 0.2, 0.8], [0.50, 0.45, 1.60])
    search = stage.searching(state)
    search["kind"], search["sds"] = kind, [0.0] * 3
    state.update(
        {"stage_level": [train, 0.0], "stage_val": val, "best_lr": 1e-2, "research": "no"}  # type: ignore[typeddict-item]
    )
    lr, _, why = pick.conclude(state, TunerConfig(total_steps=1000, objective="val"), fallback_lr=1e-3)
    return lr, why


def test_a_job_that_does_not_memorise_holds_twice_its_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    lr, why = _concluded(1.05)  # validation within 10% of training: a long hold rewards a larger LR
    assert lr == pytest.approx(2 * PICK) and "x2" in why
    assert _concluded(1.5)[0] == pytest.approx(PICK)  # memorising: the pick stands
    monkeypatch.setattr(rich_data, "RICH_GAP", None)  # lever no-rich
    assert _concluded(1.0)[0] == pytest.approx(PICK)


def test_a_first_stage_holds_its_pick() -> None:
    assert _concluded(1.0, kind="first")[0] == pytest.approx(PICK)


def test_a_raised_pick_never_passes_the_largest_try_that_learned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rich_data, "RICH_FACTOR", 100.0)
    lr, _ = _concluded(1.0)
    assert lr == pytest.approx(1e-4 * 1e4**0.5)  # x = 0.8 made no progress: x = 0.5 is the cap


def _reach_concluded(
    ys: list[float], monkeypatch: pytest.MonkeyPatch, reach: float | None = 0.5, kind: SearchKind = "refine"
) -> tuple[float, float | None]:
    """A stage that tracks training, the reach set to ``reach``; tries at x = 0.5, 0.2, 0.8.

    Returns the LR held and the pick recorded as reached (None: no reach)."""
    monkeypatch.setattr(rich_data, "RICH_REACH", reach)
    state = state_with_tries([0.5, 0.2, 0.8], ys)
    search = stage.searching(state)
    search["kind"], search["sds"] = kind, [0.0] * 3
    state.update(
        {"stage_level": [1.0, 0.0], "stage_val": 1.0, "best_lr": 1e-2, "research": "no", "bracket": None}  # type: ignore[typeddict-item]
    )
    lr, _, _ = pick.conclude(state, TunerConfig(total_steps=1000, objective="val"), fallback_lr=1e-3)
    return lr, state["reach"]


def _reaching(config: TunerConfig) -> tuple[State, Decision, float]:
    """A val job exploiting twice its largest try, as a reach (flat losses at 1.0 so far)."""
    state, decision = exploit_with_val(config)
    tried = max(c["lr"] for c in state["stages"][-1]["candidates"] if c["method"] != "diverged")
    state["segment"]["lr"] = state["segment"]["lr_end"] = 2 * tried
    state["reach"] = tried
    return state, decision, tried


def test_a_reach_doubles_a_pick_above_which_nothing_was_tried(monkeypatch: pytest.MonkeyPatch) -> None:
    top = 1e-4 * 1e4**0.8
    assert _reach_concluded([0.50, 0.55, 0.40], monkeypatch) == (pytest.approx(2 * top), top)
    # lever off: the pick is the largest try that learned, so the cap holds it where it is
    assert _reach_concluded([0.50, 0.55, 0.40], monkeypatch, reach=None)[0] == pytest.approx(top)


def test_a_reach_never_goes_past_a_try_above_the_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    # x = 0.8 was tried and made no progress: the pick (x = 0.2) is raised at most to x = 0.5
    monkeypatch.setattr(rich_data, "RICH_FACTOR", 100.0)
    assert _reach_concluded([0.50, 0.45, 1.60], monkeypatch) == (pytest.approx(1e-4 * 1e4**0.5), None)


def test_an_exploitation_above_a_reached_pick_rises_to_it(monkeypatch: pytest.MonkeyPatch) -> None:
    state = cast(State, {"reach": 0.1, "tau": 200, "phase": "search"})
    assert rich_data.reach_rise(state, 0.2, 0.1) == (100, 0.1)  # from the snapshot's LR, over tau / 2
    assert rich_data.reach_rise(state, 0.1, 0.05) is None  # at the pick itself: no reach, no rise
    state["reach"] = None  # a raise within the tries that learned
    assert rich_data.reach_rise(state, 0.2, 0.1) is None
    state["reach"] = 0.1
    monkeypatch.setattr(rich_data, "RICH_REACH", None)  # lever no-reach
    assert rich_data.reach_rise(state, 0.2, 0.1) is None


def test_a_reach_lets_a_catapult_pass_and_falls_back_to_its_largest_try(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = classic(total_steps=4000, candidates=3, objective="val", window_max=50)
    state, decision, tried = _reaching(config)

    def window(val: float, losses: list[float] | None = None) -> Decision:
        nonlocal state
        last = decision.start_step + decision.steps - 1
        report = WindowReport(
            start_step=decision.start_step,
            losses=losses or [1.0] * decision.steps,
            val_losses={} if losses else {last: val},
        )
        state, after = advance(config, state, report)
        return after

    decision = window(1.0)
    ref = state["ref_loss"]
    assert ref is not None and decision.max_grad_norm is None  # a catapult's gradients pass
    assert decision.max_loss == pytest.approx(ref + (config.divergence_factor * 10 - 1) * abs(ref))
    for val in (1.2, 1.25):  # validation rising while it climbs is the catapult, not overfitting
        decision = window(val)
        assert decision.action != "restore"
    decision = window(1.0, losses=[1.0, math.inf])
    assert decision.action == "restore" and decision.lr == pytest.approx(tried)  # not a quarter


def test_a_stage_that_learned_nothing_never_reaches(monkeypatch: pytest.MonkeyPatch) -> None:
    # a re-search of the whole range in which no try made progress on the level 1.0 takes its
    # largest try that did not fail, and holds it as it is
    assert _reach_concluded([1.2, 1.3, 1.1], monkeypatch, kind="all")[0] == pytest.approx(1e-4 * 1e4**0.8)


def test_a_reach_goes_at_most_halfway_to_a_try_above_that_diverged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rich_data, "RICH_FACTOR", 100.0)
    diverged = 1e-4 * 1e4**0.8  # x = 0.8 diverged: a jump from the snapshot, which a rise need not be
    assert _reach_concluded([0.40, 0.45, None], monkeypatch)[0] == pytest.approx(math.sqrt(1e-2 * diverged))
    monkeypatch.setattr(rich_data, "REACH_BELOW_DIVERGED", False)  # lever reach-free-only
    assert _reach_concluded([0.40, 0.45, None], monkeypatch)[0] == pytest.approx(1e-2)


def test_only_a_reach_widens_the_guard() -> None:
    # An LR above every try without a reach (a refinement that learned nothing keeps the LR it
    # refined, which may lie above its tries) keeps the usual guards.
    config = classic(total_steps=4000, candidates=3, objective="val", window_max=50)
    state, decision, _ = _reaching(config)
    state["reach"] = None
    state, decision = advance(config, state, WindowReport(start_step=decision.start_step, losses=[1.0] * 25))
    ref = state["ref_loss"]
    assert ref is not None and decision.max_loss == pytest.approx(
        ref + (config.divergence_factor - 1) * abs(ref)
    )


def test_a_reach_is_judged_after_its_rise_and_a_failed_one_searches_no_more() -> None:
    config = classic(total_steps=4000, candidates=3, objective="val", window_max=50)
    state, decision, tried = _reaching(config)
    state["stage_level"] = [1.0, 0.01]  # the stage started at 1.0
    state["segment"]["rise"] = decision.start_step + 10_000  # still rising
    worse = WindowReport(start_step=decision.start_step, losses=[1.5] * decision.steps)
    state, decision = advance(config, state, worse)
    assert decision.action != "restore"  # a catapult in the rise is no stall
    state["segment"]["rise"] = decision.start_step  # risen
    worse = WindowReport(start_step=decision.start_step, losses=[1.5] * decision.steps)
    state, decision = advance(config, state, worse)
    assert decision.action == "restore" and "above the stage's starting level" in decision.reason
    assert decision.lr == pytest.approx(tried) and state["research"] == "no"


def test_a_reach_is_not_ended_by_the_overfit_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    config = classic(total_steps=4000, candidates=3, objective="val", window_max=50)
    monkeypatch.setattr(overfit_stop, "holding", lambda *args: True)
    monkeypatch.setattr(overfit_stop, "watch", lambda *args, **kwargs: ("stop", "memorising; "))
    report = WindowReport  # the same flat window in and out of a reach
    state, decision, _ = _reaching(config)
    _, after = advance(config, state, report(start_step=decision.start_step, losses=[1.0] * decision.steps))
    assert after.action != "restore"
    state, decision = exploit_with_val(config)  # at an LR a try proved: the stop stands
    _, after = advance(config, state, report(start_step=decision.start_step, losses=[1.0] * decision.steps))
    assert after.action == "restore" and "memorising" in after.reason
