"""The range test's analysis: the bracket it finds on curves of known shape."""

from __future__ import annotations

import itertools
import math
from unittest import mock

import numpy as np
import pytest

from lrpilot_service.engine import probe
from lrpilot_service.engine.probe import DECADES, bracket, probe_lr

STEPS = 60
LO, HI = 1e-6, 1.0


def curve(lr_learn: float, lr_min: float, lr_edge: float, noise: float = 0.0, seed: int = 0) -> list[float]:
    """Flat at 2.0 until lr_learn, falling to 0.5 at lr_min, climbing back past lr_edge."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(STEPS):
        lr = probe_lr(i, STEPS, LO, HI)
        if lr < lr_learn:
            v = 2.0
        elif lr < lr_min:
            v = 2.0 - 1.5 * math.log(lr / lr_learn) / math.log(lr_min / lr_learn)
        else:
            v = 0.5 + 1.5 * min(1.0, math.log(lr / lr_min) / math.log(lr_edge / lr_min))
        out.append(v + noise * rng.normal())
    return out


def test_probe_lrs_are_geometric_from_lr_min_to_lr_max() -> None:
    lrs = [probe_lr(i, STEPS, LO, HI) for i in range(STEPS + 1)]
    assert lrs[0] == LO and lrs[-1] == pytest.approx(HI)
    ratios = [b / a for a, b in itertools.pairwise(lrs)]
    assert max(ratios) == pytest.approx(min(ratios))


def test_bracket_tops_out_near_the_minimum_and_below_the_edge() -> None:
    found = bracket(curve(1e-4, 1e-2, 1e-1), STEPS, LO, HI, diverged_at=None)
    assert found.informative
    assert 1e-2 <= found.high <= 2.5e-2  # twice the minimum's LR, at most (one grid step of slack)
    assert found.low == pytest.approx(found.high / 10**DECADES)


def floor_curve(noise: float, seed: int) -> list[float]:
    """Falls from 2.0 at lr 1e-4 to 0.5 at lr 1e-2, then a floor, flat but for minibatch noise,
    up to lr 1 (a byte-level LM's range test: its minimum lies anywhere on the floor)."""
    rng = np.random.default_rng(seed)
    return [
        min(2.0, max(0.5, 2.0 - 0.75 * math.log10(probe_lr(i, STEPS, LO, HI) / 1e-4))) + noise * rng.normal()
        for i in range(STEPS)
    ]


def dipped_floor() -> list[float]:
    """A floor whose lowest stretch, at lr ~0.1-0.3, lies far from its start (lr ~6e-3)."""
    dipped = floor_curve(0.0, 0)
    for i in range(52, 57):
        dipped[i] -= 0.02
    return dipped


def falling_to_the_edge(noise: float, seed: int) -> list[float]:
    """Falls slowly from lr 1e-5 until the test stops at the edge, lr 0.1 (SGD on a linear
    regression: the minimum is real, and the best LR lies near it)."""
    rng = np.random.default_rng(seed)
    lrs = [lr for lr in (probe_lr(i, STEPS, LO, HI) for i in range(STEPS)) if lr < 0.1]
    return [2.0 - 0.375 * max(0.0, math.log10(lr / 1e-5)) + noise * rng.normal() for lr in lrs]


def top(losses: list[float], stopped: int | None = None, *, at: str | None = None) -> float:
    """The bracket's top; ``at``: read by that rule (``probe.TOP_AT``) instead of the default."""
    with mock.patch.object(probe, "TOP_AT", at or probe.TOP_AT):
        return bracket(losses, STEPS, LO, HI, diverged_at=stopped).high


def test_a_dip_past_the_floors_centre_is_read_at_the_centre() -> None:
    # the floor spans lr ~6e-3 (its knee) to 1: twice its centre, not twice the dip's lr (~0.16)
    assert 0.1 <= top(dipped_floor()) <= 0.2


def test_on_a_noisy_floor_the_top_never_passes_twice_the_floors_centre() -> None:
    assert max(top(floor_curve(0.05, seed)) for seed in range(10)) <= 0.2  # the minimum: up to 1


def test_the_cap_never_reads_the_top_above_the_minimum() -> None:
    for seed in range(10):
        losses = floor_curve(0.05, seed)
        assert top(losses) <= top(losses, at="minimum")  # the floor's centre alone: up to 6x above it


def test_a_loss_that_falls_until_the_edge_is_read_near_its_minimum() -> None:
    for seed in range(10):
        losses = falling_to_the_edge(0.05, seed)
        at_minimum = top(losses, len(losses), at="minimum")
        assert top(losses, len(losses)) >= at_minimum / 1.3  # the knee reads up to 2.5x below it


def test_the_floors_centre_gives_the_same_bracket_on_every_seed() -> None:
    tops = [top(floor_curve(0.05, seed), at="centre") for seed in range(10)]
    assert max(tops) / min(tops) < 1.5  # read at the minimum, the top spread 40x (lr 0.025-1)


def test_the_knee_reads_the_top_where_the_floor_starts() -> None:
    assert 1e-2 <= top(dipped_floor(), at="knee") <= 2.5e-2  # twice the knee (~6e-3)


def test_with_the_knee_a_noisy_floor_gives_the_same_bracket_on_every_seed() -> None:
    tops = [top(floor_curve(0.05, seed), at="knee") for seed in range(10)]
    assert max(tops) / min(tops) < 3.0


def test_the_minimum_reads_the_top_at_the_dip_of_a_floor() -> None:
    assert top(dipped_floor(), at="minimum") > 0.2  # twice the dip's lr


def test_edge_caps_the_top_when_the_loss_climbs_back_steeply() -> None:
    found = bracket(curve(1e-4, 1e-2, 1.2e-2), STEPS, LO, HI, diverged_at=None)
    assert found.high <= 1.6e-2


def test_a_single_spike_does_not_move_the_bracket() -> None:
    losses = curve(1e-4, 1e-2, 1e-1)
    spiked = list(losses)
    spiked[20] = -5.0  # one absurd minibatch far below the real minimum, at lr ~1e-4
    assert bracket(spiked, STEPS, LO, HI, diverged_at=None) == bracket(
        losses, STEPS, LO, HI, diverged_at=None
    )


def test_a_flat_test_is_uninformative_and_searches_the_whole_range() -> None:
    found = bracket([2.0 + 0.001 * (i % 3) for i in range(STEPS)], STEPS, LO, HI, diverged_at=None)
    assert not found.informative and (found.low, found.high) == (LO, HI)


def test_a_test_that_diverged_at_once_keeps_only_the_bottom() -> None:
    found = bracket([2.0, 2.1], STEPS, LO, HI, diverged_at=2)
    assert found.informative and found.high <= LO * 10


def test_noisy_curves_still_bracket_the_true_minimum() -> None:
    for seed in range(10):
        found = bracket(curve(1e-4, 1e-2, 1e-1, noise=0.1, seed=seed), STEPS, LO, HI, diverged_at=None)
        assert found.low < 1e-2 < found.high * 1.5


def test_a_loss_that_starts_at_zero_is_bracketed_without_dividing_by_it() -> None:
    # found by the property test: "fell 100%" divided by the start of the curve
    losses = [0.0] * 10 + [-float(i) for i in range(1, 21)] + [5.0] * 10
    found = bracket(losses, 40, 1e-4, 0.5, diverged_at=None)
    assert found.informative and "fell by" in found.reason


def test_a_bracket_read_at_the_lrs_it_was_given_matches_one_read_at_the_sweep_s() -> None:
    losses = curve(1e-4, 1e-2, 1e-1, noise=0.05, seed=4)
    lrs = [probe_lr(i, STEPS, LO, HI) for i in range(STEPS)]
    assert bracket(losses, STEPS, LO, HI, diverged_at=None, lrs=lrs) == bracket(
        losses, STEPS, LO, HI, diverged_at=None
    )
    shifted = bracket(losses, STEPS, LO, HI, diverged_at=None, lrs=[lr * 10 for lr in lrs])
    assert shifted.high == pytest.approx(10 * bracket(losses, STEPS, LO, HI, diverged_at=None).high)


def test_the_loss_has_started_to_fall_only_past_the_noise_and_two_percent() -> None:
    rng = np.random.default_rng(0)
    flat = list(2.0 + 0.05 * rng.normal(size=12))
    assert not probe.started_to_fall(flat)
    assert not probe.started_to_fall([2.0, 2.0, 2.0, 1.97, 1.97])  # 1.5%: no signal
    assert probe.started_to_fall([2.0, 2.0, 2.0, 1.9, 1.9])
    assert not probe.started_to_fall([2.0, 2.0, 1.0, 1.0])  # too few losses to judge
    assert probe.started_to_fall([*flat, 1.7, 1.6])
    assert not probe.started_to_fall([*flat, 1.95, 1.95])  # within three noise sds of the mean of two


def test_sweep_steps_cover_the_decades_at_the_pace() -> None:
    assert probe.sweep_steps(1e-6, 1.0, 2.5) == 15
    assert probe.sweep_steps(1e-3, 1.0, 10.0) == 30
    assert probe.sweep_steps(1.0, 1.0, 10.0) == 1
