"""Tries that cool down: the segment the client runs, and how the try is scored."""

from __future__ import annotations

import pytest

from lrpilot.protocol import TunerConfig, WindowReport
from lrpilot_service.engine import advance
from lrpilot_service.engine.cooldown import cooldown_steps, cooled_score

CONFIG = TunerConfig(total_steps=2000, probe="none", warmup_steps=0, candidates=3, tau_ratio=0.2)


def test_a_try_holds_its_lr_then_anneals_toward_lr_min_in_a_second_window() -> None:
    _, hold = advance(CONFIG, None, None)
    assert hold.phase == "search" and hold.lr == hold.lr_end
    steps = 20  # tau 100 x 0.2
    cooled = cooldown_steps(steps, CONFIG.try_cooldown)
    assert hold.steps == steps - cooled == 14
    state, _ = advance(CONFIG, None, None)
    state, cool = advance(CONFIG, state, WindowReport(start_step=0, losses=[1.0] * hold.steps))
    assert (cool.phase, cool.action, cool.steps) == ("search", "continue", cooled)
    assert cool.lr == pytest.approx(hold.lr) and cool.lr_end == pytest.approx(CONFIG.lr_min)


def test_a_cooled_try_is_scored_by_the_mean_of_its_last_losses() -> None:
    score = cooled_score([5.0, 4.0, 3.0, 2.0, 1.0, 1.5], cooled=6)
    assert score.method == "cooldown"
    assert score.predicted == pytest.approx((2.0 + 1.0 + 1.5) / 3)


def test_the_validation_objective_measures_a_cooled_try_once_at_its_end() -> None:
    config = CONFIG.model_copy(update={"objective": "val"})
    state, hold = advance(config, None, None)
    assert hold.eval_at == []
    state, cool = advance(config, state, WindowReport(start_step=0, losses=[1.0] * hold.steps))
    assert cool.eval_at == [cool.start_step + cool.steps - 1] and cool.action == "evaluate"


def test_zero_cooldown_keeps_autolrs_tries_and_their_forecast() -> None:
    config = CONFIG.model_copy(update={"try_cooldown": 0.0})
    state, d = advance(config, None, None)
    assert d.steps == 20 and d.lr == d.lr_end
    state, nxt = advance(config, state, WindowReport(start_step=0, losses=[1.0 / (i + 1) for i in range(20)]))
    assert nxt.forecast is not None and nxt.forecast.method in ("exp", "level")
