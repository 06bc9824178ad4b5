"""Derived plan sizes: stages sized by how far their search moved the LR (lever ``sized-stages``)."""

from __future__ import annotations

import pytest

from lrpilot.protocol import TunerConfig, WindowReport
from lrpilot_service.engine import advance, budget


def test_without_sizing_a_stage_keeps_its_tau() -> None:
    assert budget.sized_tau(100, 1e-2, 1e-3) == 100


def test_a_search_that_moved_the_lr_halves_the_stage_one_that_kept_it_doubles_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(budget, "SIZE_BY_MOVE", True)
    assert budget.sized_tau(100, 1e-2, 1e-3) == 50
    assert budget.sized_tau(100, 1e-4, 1e-3) == 50
    assert budget.sized_tau(100, 1.2e-3, 1e-3) == 200
    assert budget.sized_tau(100, 1e-2, None) == 100  # nothing to compare with


def test_the_planner_sizes_the_first_exploitation(monkeypatch: pytest.MonkeyPatch) -> None:
    config = TunerConfig(total_steps=2000, probe="none", warmup_steps=20, warmup_lr=1e-3, candidates=3)
    lengths = {}
    for sized in (False, True):
        monkeypatch.setattr(budget, "SIZE_BY_MOVE", sized)
        state, d = advance(config, None, None)
        loss = 2.0
        while d.phase != "exploit":
            state, d = advance(config, state, WindowReport(start_step=d.start_step, losses=[loss] * d.steps))
            loss -= 0.1  # every later try does better: the largest LR, far from the warmup's, wins
        lengths[sized] = state["segment"]["end"] - state["segment"]["start"]
    assert lengths[True] < 0.6 * lengths[False]  # half the stage, less the try that went on
