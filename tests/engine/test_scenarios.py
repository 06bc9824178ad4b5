"""Scenarios: the engine drives a real (simulated) SGD training whose best LR per stage is known."""

from __future__ import annotations

import numpy as np
import pytest

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import summarize
from tests.engine.simulation import LinearRegressionSGD, drive

ORACLE_GRID = np.geomspace(1e-3, 10.0, 41)
SEEDS = range(12)


@pytest.fixture(scope="module")
def runs() -> list[tuple[list[tuple[int, float, float]], LinearRegressionSGD, int]]:
    """Twelve seeded jobs: per stage (stage, chosen LR, oracle best constant LR)."""
    results = []
    for seed in SEEDS:
        trainer = LinearRegressionSGD(seed=seed)
        config = TunerConfig(lr_min=1e-4, lr_max=10.0, total_steps=3000, seed=seed)
        outcome = drive(config, trainer, oracle_grid=ORACLE_GRID)
        stages = summarize(outcome.states[-1])
        rows = [(s.stage, s.chosen_lr or 0.0, outcome.stage_best[s.stage]) for s in stages]
        results.append((rows, trainer, outcome.steps_consumed))
    return results


def off_by(runs, stages: set[int]) -> list[float]:  # type: ignore[no-untyped-def]
    """How many times above or below the stage's best constant LR each choice in ``stages`` is."""
    return [max(c / b, b / c) for rows, _, _ in runs for s, c, b in rows if s in stages]


def test_the_first_stage_chooses_within_factor_four_of_the_best_constant_lr_and_mostly_two(runs) -> None:  # type: ignore[no-untyped-def]
    """From the range test's bracket, no first-stage choice is far off (4x, on every seed) and most
    are close (2x). A choice 10x or 100x off is what wrecks a run."""
    off = off_by(runs, {0})
    assert max(off) <= 4.0, sorted(off)
    assert sum(o <= 2.0 for o in off) > len(off) / 2, sorted(off)


def test_later_stages_choose_far_off_at_most_one_time_in_four(runs) -> None:  # type: ignore[no-untyped-def]
    """Later stages start from a model near its noise floor, where a smaller LR wins a short try
    (the short-horizon bias) and the best constant LR over the stage is a weak target: choices 4x
    and more below it happen (12 seeds: 2 of 12 second stages, and 3 of 12 with the range test's
    locating pass forced at 18 steps a decade, lever ``locate-always``, whose final losses are
    within 1.4%). What must not happen is a stage off on most seeds. Five seeds, as this test ran
    before round 18, happened to hold none."""
    off = off_by(runs, {s for rows, _, _ in runs for s, _, _ in rows} - {0})
    assert sum(o > 4.0 for o in off) <= len(off) / 4, sorted(off)


def test_every_job_uses_exactly_its_budget_and_ends_below_the_start(runs) -> None:  # type: ignore[no-untyped-def]
    for _, trainer, consumed in runs:
        assert consumed == 3000
        assert np.isfinite(trainer.full_loss())
        assert trainer.full_loss() < 0.05 * LinearRegressionSGD(seed=trainer.seed).full_loss()


def test_diverging_lrs_are_tried_rejected_and_never_chosen() -> None:
    trainer = LinearRegressionSGD(seed=11)
    config = TunerConfig(lr_min=1e-3, lr_max=100.0, total_steps=2000, seed=11)
    outcome = drive(config, trainer)
    stages = summarize(outcome.states[-1])
    diverged = [c for s in stages for c in s.candidates if c.method == "diverged"]
    assert diverged, "an LR range up to 100 must contain diverging LRs"
    assert all(c.steps < s.search_steps for s in stages for c in s.candidates if c.method == "diverged")
    lowest_diverged = min(c.lr for c in diverged)
    assert all(s.chosen_lr is not None and s.chosen_lr < lowest_diverged for s in stages)
    assert np.isfinite(trainer.full_loss())
