"""A search window's report: the try goes on, is scored or voided, the next opens or the stage
concludes (search_phase.py; the stage's whole course through ``advance`` is in test_planner)."""

from __future__ import annotations

from lrpilot.protocol import Decision, WindowReport
from lrpilot_service.engine import advance, summarize
from lrpilot_service.engine.search_phase import _off_plan, _rebase_level
from lrpilot_service.engine.state import new_state
from tests.engine.test_planner import classic


def _window(lr: float, lr_end: float, steps: int = 4) -> Decision:
    return Decision(
        window=1, start_step=10, steps=steps, lr=lr, lr_end=lr_end, action="continue",
        phase="search", stage=0, reason="a try",
    )  # fmt: skip


def test_a_window_trained_at_its_planned_lrs_is_on_plan() -> None:
    cooling = _window(0.1, 0.0)
    planned = [cooling.lr_at(10 + i) for i in range(4)]
    assert not _off_plan(cooling, WindowReport(start_step=10, losses=[1.0] * 4, lrs=planned))
    assert not _off_plan(cooling, WindowReport(start_step=10, losses=[1.0] * 4))  # lrs not reported


def test_a_window_trained_at_another_lr_for_one_step_is_off_plan() -> None:
    held = _window(0.1, 0.1)
    lrs = [0.1, 0.1, 0.005, 0.1]  # one step replayed at the client's fallback LR
    assert _off_plan(held, WindowReport(start_step=10, losses=[1.0] * 4, lrs=lrs))


def test_the_stage_level_rises_to_the_snapshot_when_the_tries_started_higher() -> None:
    state = new_state(tau=100)
    state["stage_level"] = [1.0, 0.05]
    _rebase_level(state, (1.3, 0.02))
    assert state["stage_level"] == [1.3, 0.05]  # the higher level, the wider spread
    _rebase_level(state, (1.1, 0.2))
    assert state["stage_level"] == [1.3, 0.05]  # a lower snapshot reading changes nothing
    _rebase_level(state, None)
    assert state["stage_level"] == [1.3, 0.05]


def test_a_window_inside_a_try_continues_it_at_the_same_lr() -> None:
    config = classic(total_steps=2000, candidates=3, lr_min=1e-4, lr_max=1.0, window_max=5)
    state, decision = advance(config, None, None)
    assert decision.phase == "search" and decision.steps == 5
    report = WindowReport(start_step=0, losses=[1.0] * 5)
    state, after = advance(config, state, report)
    assert after.action == "continue" and after.phase == "search" and after.lr == decision.lr
    assert "try continues" in after.reason


def test_search_window_replayed_at_other_lrs_is_not_scored() -> None:
    # After an outage the client replays steps it trained at its fallback LR; such a try says
    # nothing about the LR it was meant to test, so it must not reach the GP.
    config = classic(total_steps=2000, candidates=3, lr_min=1e-4, lr_max=1.0)
    state, decision = advance(config, None, None)
    assert decision.phase == "search"
    fallback = [0.005] * decision.steps
    report = WindowReport(start_step=0, losses=[1.0] * decision.steps, lrs=fallback)
    state, after = advance(config, state, report)
    assert "not scored" in after.reason and after.action == "restore"
    search = state["search"]
    assert search is not None and search["xs"] == [] and search["voided"] == 1
    assert summarize(state)[0].candidates == []


def test_stage_whose_tries_were_all_voided_keeps_a_safe_lr_and_the_budget() -> None:
    config = classic(total_steps=1000, candidates=2, lr_min=1e-4, lr_max=1.0)
    state, decision = advance(config, None, None)
    consumed = 0
    while decision.action != "done":
        lrs = [0.003] * decision.steps if decision.phase == "search" else None
        report = WindowReport(start_step=decision.start_step, losses=[1.0] * decision.steps, lrs=lrs)
        consumed += decision.steps
        state, decision = advance(config, state, report)
    assert consumed == 1000
    assert all(s.chosen_lr is not None for s in summarize(state))
