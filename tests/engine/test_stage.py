"""Tests for engine/stage.py: when a stage's search opens another try and when it stops early."""

from __future__ import annotations

from typing import cast

import pytest

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import stage
from lrpilot_service.engine.state import State


def _state_with_tries(xs: list[float], ys: list[float | None]) -> State:
    state = cast(State, {"search": None, "stage": 0, "stages": []})
    stage.begin_search(state, 1e-4, 1.0, n=10, tau=100, try_steps=20, kind="all")
    search = stage.searching(state)
    search["xs"], search["ys"] = list(xs), list(ys)
    return state


def test_search_ends_early_when_bo_expects_nothing_more() -> None:
    xs = [0.5, 0.2, 0.8, 0.35, 0.65, 0.42, 0.58]  # a noiseless minimum, bracketed tightly
    state = _state_with_tries(xs, [(x - 0.5) ** 2 for x in xs])
    opened, why = stage.next_try(state, TunerConfig(total_steps=1000), start=500)
    assert opened is None
    assert why.startswith("search ends after 7 tries")
    assert stage.searching(state)["try"] is None


def test_search_goes_on_while_the_best_is_at_an_edge() -> None:
    xs = [0.5, 0.2, 0.8, 0.35, 0.65]
    state = _state_with_tries(xs, [1.0 - x for x in xs])
    opened, _ = stage.next_try(state, TunerConfig(total_steps=1000), start=500)
    assert opened is not None and opened["x"] > 0.8
    assert stage.searching(state)["try"] is opened


def test_too_few_scored_tries_never_stop_a_search(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage, "EARLY_STOP_GAIN", 1e9)  # any BO proposal would stop
    state = _state_with_tries([0.5, 0.2], [1.0, 1.1])
    assert stage.next_try(state, TunerConfig(total_steps=1000), start=500)[0] is not None


def _concluded(xs: list[float], ys: list[float], level: float) -> float:
    state = _state_with_tries(xs, list(ys))
    stage.searching(state)["sds"] = [0.0] * len(xs)
    state.update({"stage_level": [level, 0.0], "best_lr": None})  # type: ignore[typeddict-item]
    lr, _, _ = stage.conclude(state, TunerConfig(total_steps=1000), fallback_lr=1e-3)
    return lr


def test_a_larger_lr_within_a_tenth_of_the_best_progress_wins() -> None:
    # From a level of 2.0, the best try reached 1.45 (progress 0.55): 1.50 is within 0.055 of it,
    # a difference a short try misjudges, so the larger LR (x = 0.5) wins over x = 0.2.
    lr = _concluded([0.5, 0.2, 0.8], [1.50, 1.45, 1.90], level=2.0)
    assert lr == pytest.approx(1e-4 * 1e4**0.5)


def test_a_larger_lr_beyond_the_tolerance_does_not_win() -> None:
    lr = _concluded([0.5, 0.2, 0.8], [1.55, 1.45, 1.90], level=2.0)  # 0.10 > 0.055 behind
    assert lr == pytest.approx(1e-4 * 1e4**0.2)


def test_scores_within_half_a_percent_tie_even_when_the_stage_made_little_progress() -> None:
    # The byte-level LM's second stage: tries at 2.425, 2.440, 2.430 from a level of 2.45. The
    # progress share alone (10% of 0.025) ties nothing; 0.5% of 2.425 ties all three.
    lr = _concluded([0.5, 0.2, 0.8], [2.425, 2.440, 2.430], level=2.45)
    assert lr == pytest.approx(1e-4 * 1e4**0.8)


def test_a_shrunk_refinement_moves_halfway_from_the_lr_it_refines(monkeypatch: pytest.MonkeyPatch) -> None:
    assert stage._shrunk(4e-3, 1e-3, stage._shrink_share(3)) == 4e-3  # off by default
    monkeypatch.setattr(stage, "SHRINK", 0.5)
    assert stage._shrunk(4e-3, 1e-3, stage._shrink_share(3)) == pytest.approx(2e-3)
    assert stage._shrunk(4e-3, None, stage._shrink_share(3)) == 4e-3  # nothing to move from


def test_a_refinement_on_two_scored_tries_can_move_halfway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage, "SHRINK_FEW", 0.5)  # lever shrink-few
    assert [stage._shrink_share(n) for n in (0, 1, 2, 3)] == [1.0, 0.5, 0.5, 1.0]


def _concluded_flat(bracket: list[float], lr_min: float = 1e-6) -> tuple[State, str]:
    """A stage whose every try ended where the stage began: nothing learned anywhere in the bracket."""
    state = _state_with_tries([0.5, 0.2, 0.8], [2.0, 2.0, 2.0])
    stage.searching(state)["sds"] = [0.0] * 3
    state.update(
        {"stage_level": [2.0, 0.0], "best_lr": None, "bracket": list(bracket), "research": "no"}  # type: ignore[typeddict-item]
    )
    _, _, why = stage.conclude(state, TunerConfig(total_steps=1000, lr_min=lr_min), fallback_lr=1e-3)
    return state, why


def test_a_stage_in_which_no_try_learned_widens_the_bracket_a_decade_down() -> None:
    state, why = _concluded_flat([1e-3, 0.1])
    assert state["research"] == "all"
    assert state["bracket"] == [pytest.approx(1e-4), 0.1]
    assert "widened down to lr=0.0001" in why


def test_widening_stops_at_lr_min_and_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    state, _ = _concluded_flat([3e-6, 0.1], lr_min=1e-6)
    assert state["bracket"] == [1e-6, 0.1]
    monkeypatch.setattr(stage, "WIDEN_DECADES", 0.0)
    state, why = _concluded_flat([1e-3, 0.1])
    assert state["bracket"] == [1e-3, 0.1] and "widened" not in why
