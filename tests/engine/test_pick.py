"""Tests for engine/pick.py: how a stage picks its LR from its tries (ties, shrink, widening)."""

from __future__ import annotations

import pytest

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import pick, stage
from lrpilot_service.engine.state import State
from tests.engine.test_stage import state_with_tries


def _concluded(xs: list[float], ys: list[float], level: float) -> float:
    state = state_with_tries(xs, list(ys))
    stage.searching(state)["sds"] = [0.0] * len(xs)
    state.update({"stage_level": [level, 0.0], "best_lr": None})  # type: ignore[typeddict-item]
    lr, _, _ = pick.conclude(state, TunerConfig(total_steps=1000), fallback_lr=1e-3)
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
    assert pick._shrunk(4e-3, 1e-3, pick._shrink_share(3)) == 4e-3  # off by default
    monkeypatch.setattr(pick, "SHRINK", 0.5)
    assert pick._shrunk(4e-3, 1e-3, pick._shrink_share(3)) == pytest.approx(2e-3)
    assert pick._shrunk(4e-3, None, pick._shrink_share(3)) == 4e-3  # nothing to move from


def test_a_refinement_on_two_scored_tries_can_move_halfway(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pick, "SHRINK_FEW", 0.5)  # lever shrink-few
    assert [pick._shrink_share(n) for n in (0, 1, 2, 3)] == [1.0, 0.5, 0.5, 1.0]


def _concluded_flat(bracket: list[float], lr_min: float = 1e-6) -> tuple[State, str]:
    """A stage whose every try ended where the stage began: nothing learned anywhere in the bracket."""
    state = state_with_tries([0.5, 0.2, 0.8], [2.0, 2.0, 2.0])
    stage.searching(state)["sds"] = [0.0] * 3
    state.update(
        {"stage_level": [2.0, 0.0], "best_lr": None, "bracket": list(bracket), "research": "no"}  # type: ignore[typeddict-item]
    )
    _, _, why = pick.conclude(state, TunerConfig(total_steps=1000, lr_min=lr_min), fallback_lr=1e-3)
    return state, why


def test_a_stage_in_which_no_try_learned_widens_the_bracket_a_decade_down() -> None:
    state, why = _concluded_flat([1e-3, 0.1])
    assert state["research"] == "all"
    assert state["bracket"] == [pytest.approx(1e-4), 0.1]
    assert "widened down to lr=0.0001" in why


def test_widening_stops_at_lr_min_and_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    state, _ = _concluded_flat([3e-6, 0.1], lr_min=1e-6)
    assert state["bracket"] == [1e-6, 0.1]
    monkeypatch.setattr(pick, "WIDEN_DECADES", 0.0)
    state, why = _concluded_flat([1e-3, 0.1])
    assert state["bracket"] == [1e-3, 0.1] and "widened" not in why
