"""Tests for engine/rich_data.py: a later stage holds a larger LR where the model does not memorise."""

from __future__ import annotations

import pytest

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import rich_data, stage
from lrpilot_service.engine.state import SearchKind
from tests.engine.test_stage import _state_with_tries

#: The stage's pick below: x = 0.2 of the search's range [1e-4, 1].
PICK = 1e-4 * 1e4**0.2


def _concluded(val: float, *, train: float = 1.0, kind: SearchKind = "refine") -> tuple[float, str]:
    """A stage on validation scores: x = 0.2 wins clearly, x = 0.5 learned too, x = 0.8 did not."""
    state = _state_with_tries([0.5, 0.2, 0.8], [0.50, 0.45, 1.60])
    search = stage.searching(state)
    search["kind"], search["sds"] = kind, [0.0] * 3
    state.update(
        {"stage_level": [train, 0.0], "stage_val": val, "best_lr": 1e-2, "research": "no"}  # type: ignore[typeddict-item]
    )
    lr, _, why = stage.conclude(state, TunerConfig(total_steps=1000, objective="val"), fallback_lr=1e-3)
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
