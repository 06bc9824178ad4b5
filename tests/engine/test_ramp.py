"""Tries that rise to their LR (``try_ramp``) instead of jumping to it from the snapshot's."""

from __future__ import annotations

from typing import cast

import pytest

from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot_service.engine import advance
from lrpilot_service.engine.state import SearchState, State

WARMUP_LR = 1e-3
CONFIG = TunerConfig(
    total_steps=2000,
    probe="none",
    warmup_steps=20,
    warmup_lr=WARMUP_LR,
    candidates=3,
    tau_ratio=0.2,
    try_ramp=0.3,
)


def _run(config: TunerConfig, state: State | None, d: Decision, loss: float) -> tuple[State, Decision]:
    return advance(config, state, WindowReport(start_step=d.start_step, losses=[loss] * d.steps))


def _first_try(config: TunerConfig) -> tuple[State, Decision]:
    state, warm = advance(config, None, None)
    assert warm.phase == "warmup"
    return _run(config, state, warm, 2.0)


def test_a_try_rises_from_the_snapshots_lr_then_holds_then_cools() -> None:
    state, rise = _first_try(CONFIG)
    try_steps = round(CONFIG.tau_ratio * state["tau"])
    assert (rise.phase, rise.action, rise.steps) == ("search", "snapshot", round(0.3 * try_steps))
    target = state["search"]["try"]["lr"] if state["search"] and state["search"]["try"] else 0.0
    assert rise.lr == pytest.approx(WARMUP_LR) and rise.lr_end == pytest.approx(target)
    state, hold = _run(CONFIG, state, rise, 1.9)
    assert hold.lr == hold.lr_end == pytest.approx(target)
    state, cool = _run(CONFIG, state, hold, 1.8)
    assert cool.lr == pytest.approx(target) and cool.lr_end == pytest.approx(CONFIG.lr_min)
    assert rise.steps + hold.steps + cool.steps == try_steps


def test_the_exploitation_rises_from_the_snapshots_lr_after_a_restore() -> None:
    state, d = _first_try(CONFIG)
    levels = [1.5, 1.0, 1.7]  # the second try wins: the model is restored to the snapshot
    while d.phase == "search":
        search = state["search"]
        assert search is not None
        state, d = _run(CONFIG, state, d, levels[len(search["xs"])])
    assert (d.phase, d.action) == ("exploit", "restore")
    assert d.lr == pytest.approx(WARMUP_LR) and d.lr_end == pytest.approx(state["best_lr"])
    state, held = _run(CONFIG, state, d, 1.0)
    assert held.lr == held.lr_end == pytest.approx(state["best_lr"])


def test_the_exploitation_rises_from_the_cooled_lr_when_the_last_try_goes_on() -> None:
    state, d = _first_try(CONFIG)
    levels = [1.5, 1.7, 1.0]  # the last try wins: its model goes on, from the end of its cooldown
    cooled_end = CONFIG.lr_min
    while d.phase == "search":
        search = state["search"]
        assert search is not None
        cooled_end = d.lr_at(d.start_step + d.steps - 1)
        state, d = _run(CONFIG, state, d, levels[len(search["xs"])])
    assert (d.phase, d.action) == ("exploit", "continue")
    assert d.lr == pytest.approx(cooled_end) and d.lr_end == pytest.approx(state["best_lr"])


def test_no_ramp_keeps_the_jump() -> None:
    state, d = _first_try(CONFIG.model_copy(update={"try_ramp": 0.0}))
    assert d.lr == d.lr_end and d.steps == round(CONFIG.tau_ratio * state["tau"]) - round(0.3 * 20)


def test_with_a_minimum_jump_only_a_jump_up_rises(monkeypatch: pytest.MonkeyPatch) -> None:
    from lrpilot_service.engine import next_stage

    monkeypatch.setattr(next_stage, "RISE_MIN_JUMP", 4.0)
    search = cast(SearchState, {"try_steps": 20})
    assert next_stage.rise(CONFIG, search, 1e-3, 8e-3) == (6, 1e-3)
    assert next_stage.rise(CONFIG, search, 1e-3, 2e-3) is None  # less than 4x: it jumps
    assert next_stage.rise(CONFIG, search, 1e-3, 1e-4) is None  # a step down never rises
