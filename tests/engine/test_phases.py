"""A budgeted job's opening: after the range test (test_range_test.py), the restore and the warmup."""

from __future__ import annotations

import math

import pytest

from lrpilot.protocol import TunerConfig, WindowReport
from lrpilot_service.engine import advance
from lrpilot_service.engine.phases import note_grads
from lrpilot_service.engine.probe import DECADES
from lrpilot_service.engine.state import new_state
from tests.engine.test_range_test import open_job

CONFIG = TunerConfig(total_steps=2000, seed=3)  # range test: 60 steps; warmup: 60 steps


def bowl(lr: float) -> float:
    """A range-test curve: no learning below 1e-4, best near 1e-2, explosion above 0.3."""
    if lr > 0.3:
        return math.inf
    return 2.0 - 1.5 * min(1.0, max(0.0, math.log10(lr / 1e-4) / 2)) + 4 * max(0.0, lr - 0.05)


def test_after_the_test_the_initial_weights_are_restored_and_warmed_up_to_the_bracket() -> None:
    state, decisions = open_job(bowl, CONFIG)
    warm = decisions[-1]
    assert (warm.phase, warm.action, warm.stage) == ("warmup", "restore", -1)
    assert state["bracket"] is not None
    low, high = state["bracket"]
    assert 5e-3 < high < 0.3 and low == pytest.approx(high / 10**DECADES)
    assert warm.lr_at(warm.start_step + warm.steps - 1) == pytest.approx(math.sqrt(low * high))
    assert state["recent_losses"] == []  # the sweep's losses say nothing about the warmed-up model


def test_the_first_stage_searches_the_bracket() -> None:
    state, decisions = open_job(bowl, CONFIG)
    d = decisions[-1]
    while d.phase == "warmup":
        state, d = advance(CONFIG, state, WindowReport(start_step=d.start_step, losses=[1.0] * d.steps))
    search = state["search"]
    assert d.phase == "search" and d.action == "snapshot" and search is not None
    assert state["bracket"] == [search["low"], search["high"]]


def test_the_mean_gradient_norm_cannot_overflow() -> None:
    # found by the property test: the largest float after a large negative one made the mean inf
    state = new_state(tau=100)
    note_grads(state, [1.7976931348623157e308, -9.9792015476736e291] * 3)
    assert math.isfinite(state["grad_norms"]["mean"])
