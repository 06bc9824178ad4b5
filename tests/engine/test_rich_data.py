"""Tests for engine/rich_data.py: a later stage holds a larger LR where the model does not memorise."""

from __future__ import annotations

from typing import cast

import pytest

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import rich_data, stage
from lrpilot_service.engine.state import State


def _state_with_tries(xs: list[float], ys: list[float | None]) -> State:
    state = cast(State, {"search": None, "stage": 1, "stages": []})
    stage.begin_search(state, 1e-4, 1.0, n=3, tau=100, try_steps=20, kind="refine")
    search = stage.searching(state)
    search["xs"], search["ys"] = list(xs), list(ys)
    return state


def _refined(val: float, *, train: float = 1.0) -> tuple[float, str]:
    """A refinement on validation scores: x = 0.2 wins clearly, x = 0.5 learned too, x = 0.8 did not."""
    state = _state_with_tries([0.5, 0.2, 0.8], [0.50, 0.45, 1.60])
    search = stage.searching(state)
    search["sds"] = [0.0] * 3
    state.update(
        {"stage_level": [train, 0.0], "stage_val": val, "best_lr": 1e-2, "research": "no"}  # type: ignore[typeddict-item]
    )
    lr, _, why = stage.conclude(state, TunerConfig(total_steps=1000, objective="val"), fallback_lr=1e-3)
    return lr, why


def test_a_job_that_does_not_memorise_holds_twice_its_pick(monkeypatch: pytest.MonkeyPatch) -> None:
    pick = 1e-4 * 1e4**0.2
    lr, why = _refined(1.05)  # validation within 10% of training: a long hold rewards a larger LR
    assert lr == pytest.approx(2 * pick) and "x2" in why
    assert _refined(1.5)[0] == pytest.approx(pick)  # memorising: the pick stands
    monkeypatch.setattr(rich_data, "RICH_GAP", None)  # lever no-rich
    assert _refined(1.0)[0] == pytest.approx(pick)


def test_a_first_stage_or_a_train_objective_holds_its_pick() -> None:
    pick = 1e-4 * 1e4**0.2
    state = _state_with_tries([0.5, 0.2, 0.8], [0.50, 0.45, 1.60])
    search = stage.searching(state)
    search["kind"], search["sds"] = "first", [0.0] * 3
    state.update({"stage_level": [1.0, 0.0], "stage_val": 1.0, "best_lr": None, "research": "no"})  # type: ignore[typeddict-item]
    lr, _, _ = stage.conclude(state, TunerConfig(total_steps=1000, objective="val"), fallback_lr=1e-3)
    assert lr == pytest.approx(pick)


def test_a_raised_pick_never_passes_the_largest_try_that_learned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rich_data, "RICH_FACTOR", 100.0)
    lr, _ = _refined(1.0)
    assert lr == pytest.approx(1e-4 * 1e4**0.5)  # x = 0.8 made no progress: x = 0.5 is the cap
