"""Tests for engine/divergence.py: a lone loss spike is not a divergence; a repeated one is."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import divergence
from tests.engine.simulation import LinearRegressionSGD, drive


def test_a_lone_finite_spike_passes_and_is_remembered() -> None:
    stop, spike = divergence.spike_or_divergence([1.0, 9.0], None, 1, None, start_step=100, last_spike=None)
    assert (stop, spike) == (None, 101)


def test_a_spike_right_after_another_is_a_divergence() -> None:
    stop, spike = divergence.spike_or_divergence([9.0], None, 0, None, start_step=102, last_spike=101)
    assert (stop, spike) == (0, 101)
    far = divergence.spike_or_divergence([9.0], None, 0, None, start_step=140, last_spike=101)
    assert far == (None, 140)


@pytest.mark.parametrize("loss", [math.inf, math.nan])
def test_a_non_finite_loss_diverges_at_once(loss: float) -> None:
    assert divergence.spike_or_divergence([loss], None, 0, None, 5, None) == (0, None)


def test_an_exploding_gradient_diverges_at_once() -> None:
    assert divergence.spike_or_divergence([1.0], [50.0], 0, 10.0, 5, None) == (0, None)
    assert divergence.spike_or_divergence([1.0], [math.nan], 0, 10.0, 5, None) == (0, None)


def test_a_lone_exploding_gradient_can_pass_as_a_spike(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(divergence, "GRAD_SPIKES", True)
    assert divergence.spike_or_divergence([1.0], [50.0], 0, 10.0, 5, None) == (None, 5)
    assert divergence.spike_or_divergence([1.0], [50.0], 0, 10.0, 6, 5) == (0, 5)  # twice in a row
    assert divergence.spike_or_divergence([1.0], [math.nan], 0, 10.0, 5, None) == (0, None)


def test_no_trip_no_change_and_the_rule_can_be_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert divergence.spike_or_divergence([1.0], None, None, None, 5, 3) == (None, 3)
    monkeypatch.setattr(divergence, "SPIKE_GAP", 0)
    assert divergence.spike_or_divergence([9.0], None, 0, None, 5, None) == (0, None)


@dataclass
class SpikyRegression(LinearRegressionSGD):
    """The linear regression whose minibatch loss reads 20x now and then (a heavy-tailed batch),
    whatever the LR: the weights are fine, only the reading spikes."""

    every: int = 97

    def step(self, lr: float) -> float:
        loss = super().step(lr)
        return 20.0 * loss if self.step_count % self.every == 0 else loss


def test_lone_spikes_do_not_back_a_run_off() -> None:
    # Before: each spike read as a divergence (19 rewinds, each at a quarter of the LR) and the run
    # ended at 6.4 times the clean run's loss; now it ends at the clean run's.
    config = TunerConfig(lr_min=1e-4, lr_max=10.0, total_steps=2000, seed=1)
    spiky, clean = SpikyRegression(seed=1), LinearRegressionSGD(seed=1)
    outcome = drive(config, spiky)
    drive(config, clean)
    rewinds = [d.reason for d in outcome.decisions if "diverged in" in d.reason]
    assert rewinds == []
    assert spiky.full_loss() <= 1.5 * clean.full_loss()
