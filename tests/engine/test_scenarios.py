"""Scenarios: the engine drives a real (simulated) SGD training whose best LR per stage is known."""

from __future__ import annotations

import numpy as np
import pytest

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import summarize
from tests.engine.simulation import LinearRegressionSGD, drive

ORACLE_GRID = np.geomspace(1e-3, 10.0, 41)
SEEDS = range(5)


@pytest.fixture(scope="module")
def runs() -> list[tuple[list[tuple[int, float, float]], LinearRegressionSGD, int]]:
    """Five seeded jobs: per stage (stage, chosen LR, oracle best constant LR)."""
    results = []
    for seed in SEEDS:
        trainer = LinearRegressionSGD(seed=seed)
        config = TunerConfig(lr_min=1e-4, lr_max=10.0, total_steps=3000, seed=seed)
        outcome = drive(config, trainer, oracle_grid=ORACLE_GRID)
        stages = summarize(outcome.states[-1])
        rows = [(s.stage, s.chosen_lr or 0.0, outcome.stage_best[s.stage]) for s in stages]
        results.append((rows, trainer, outcome.steps_consumed))
    return results


def test_chosen_lr_is_within_factor_four_of_the_best_constant_lr_and_mostly_within_two(runs) -> None:  # type: ignore[no-untyped-def]
    """No stage's choice is far off (4x, on every seed) and most are close (2x, on 3 of 5 seeds).

    Fourteen-step tries misjudge an SGD LR by a factor of about 3 now and then (a try that jumps
    4x above the warmup's LR spikes); a choice 10x or 100x off is what wrecks a run.
    """
    stages = {stage for rows, _, _ in runs for stage, _, _ in rows}
    for stage in sorted(stages):
        table = [(round(c, 4), round(b, 4)) for rows, _, _ in runs for s, c, b in rows if s == stage]
        off = [abs(np.log(chosen / best)) for chosen, best in table]
        assert max(off) <= np.log(4.0), f"stage {stage}: (chosen, best) per seed = {table}"
        assert sum(o <= np.log(2.0) for o in off) > len(off) / 2, f"stage {stage}: {table}"


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
