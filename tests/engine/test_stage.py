"""Tests for engine/stage.py: when a stage's search opens another try and when it stops early."""

from __future__ import annotations

from typing import cast

import pytest

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import stage
from lrpilot_service.engine.state import State


def state_with_tries(xs: list[float], ys: list[float | None]) -> State:
    state = cast(
        State,
        {
            "search": None,
            "stage": 0,
            "stages": [],
            "river": {"area": 0.0, "snapshot": 0.0, "points": []},
            "next_step": 0,
        },
    )
    stage.begin_search(state, 1e-4, 1.0, n=10, tau=100, try_steps=20, kind="all")
    search = stage.searching(state)
    search["xs"], search["ys"] = list(xs), list(ys)
    return state


def test_search_ends_early_when_bo_expects_nothing_more() -> None:
    xs = [0.5, 0.2, 0.8, 0.35, 0.65, 0.42, 0.58]  # a noiseless minimum, bracketed tightly
    state = state_with_tries(xs, [(x - 0.5) ** 2 for x in xs])
    opened, why = stage.next_try(state, TunerConfig(total_steps=1000), start=500)
    assert opened is None
    assert why.startswith("search ends after 7 tries")
    assert stage.searching(state)["try"] is None


def test_search_goes_on_while_the_best_is_at_an_edge() -> None:
    xs = [0.5, 0.2, 0.8, 0.35, 0.65]
    state = state_with_tries(xs, [1.0 - x for x in xs])
    opened, _ = stage.next_try(state, TunerConfig(total_steps=1000), start=500)
    assert opened is not None and opened["x"] > 0.8
    assert stage.searching(state)["try"] is opened


def test_too_few_scored_tries_never_stop_a_search(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage, "EARLY_STOP_GAIN", 1e9)  # any BO proposal would stop
    state = state_with_tries([0.5, 0.2], [1.0, 1.1])
    assert stage.next_try(state, TunerConfig(total_steps=1000), start=500)[0] is not None
