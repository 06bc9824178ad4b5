"""The two ways the first release wrecked runs, as regression tests (both fail on that engine).

1. A ReLU network trained by SGD with momentum on a wide range: every first-stage try from the
   initial weights was flat (a plateau), the tie rule took the top of the range, the network died
   without a NaN and never recovered (a CNN ended at chance level). ``DyingNetwork``: the first
   release collapsed 4 of these 6 seeds to the untrained loss.
2. A language model on a wide range: short tries from the initial weights favour a large LR (the
   easy part of the loss goes fastest), which then stalls far above what a smaller LR reaches,
   with no explosion for a guard to see. ``StallingModel``: the first release ended every seed at
   ~2.99, 2.6 times the best constant-then-anneal schedule's loss (1.17).

Simulations (tests/engine/simulation.py), so the mechanism is exact and the test fast; the
benchmark's ``teacher_cnn`` and ``lm_bytes`` workloads are the real-model counterparts.
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import pick
from tests.engine.simulation import DyingNetwork, StallingModel, drive

SEEDS = range(6)
WIDE = {"lr_min": 1e-6, "lr_max": 1.0, "total_steps": 2000}


def oracle(make: type, seed: int) -> float:
    """The best constant LR held to 80% then annealed linearly (on a 41-point log grid), noiseless."""
    best = np.inf
    for lr in np.geomspace(1e-5, 1.0, 41):
        model = make(seed=seed)
        model.noise = 0.0
        for step in range(2000):
            model.step(lr if step < 1600 else lr * (2000 - step) / 400)
        best = min(best, model.full_loss())
    return float(best)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_plateau_then_a_quiet_death_does_not_collapse_the_run(seed: int) -> None:
    model = DyingNetwork(seed=seed, plateau=0.3, rate=0.05)
    drive(TunerConfig(seed=seed, **WIDE), model)
    assert model.full_loss() < 0.9 * model.initial, "collapsed: the final loss is the untrained one's"


def stall_ratios() -> list[float]:
    """Final loss over the oracle's, for 16 seeds of the stalling LM."""
    ratios = []
    for seed in range(16):
        model = StallingModel(seed=seed)
        drive(TunerConfig(seed=seed, **WIDE), model)
        ratios.append(model.full_loss() / oracle(StallingModel, seed))
    return ratios


def test_an_lr_that_stalls_is_left() -> None:
    """Most seeds end within 1.35x the oracle (the first release: all at 2.6x), at most 3 of 16
    above it (2.3-2.5x: a later stage kept its lowest try, the only one that learned)."""
    ratios = stall_ratios()
    assert float(np.median(ratios)) <= 1.25, [round(r, 2) for r in ratios]
    assert sum(r > 1.35 for r in ratios) <= 3, [round(r, 2) for r in ratios]


def test_the_edge_re_search_leaves_a_stall_on_one_seed_more() -> None:
    """Lever ``edge-research`` (off by default: on the benchmark it only searched late stages on
    their noise floor again) re-searches a stage whose only learning try is its lowest: 2 of 16."""
    with mock.patch.object(pick, "EDGE_RESEARCH", True):
        ratios = stall_ratios()
    assert sum(r > 1.35 for r in ratios) <= 2, [round(r, 2) for r in ratios]
