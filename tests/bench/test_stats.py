"""Statistics of the benchmark: IQM, bootstrap intervals, steps-to-target, scoring of diverged runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.stats import (
    bootstrap_ci,
    iqm,
    median_steps,
    probability_of_improvement,
    score,
    steps_to_target,
    stratified_bootstrap_ci,
)


def test_iqm_trims_a_quarter_each_side() -> None:
    assert iqm([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert iqm([100.0, 1.0, 2.0, 3.0, -50.0]) == pytest.approx(2.0)  # outliers at both ends dropped
    assert iqm([1.0, 2.0, 6.0]) == pytest.approx(3.0)  # n < 4: nothing to trim, plain mean
    assert iqm([7.0]) == 7.0
    assert math.isnan(iqm([]))


def test_iqm_matches_scipy_trim_mean() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(3).normal(size=37)
    assert iqm(x) == pytest.approx(scipy_stats.trim_mean(x, 0.25))


def test_bootstrap_interval_contains_the_estimate_and_shrinks_with_data() -> None:
    rng = np.random.default_rng(0)
    small = rng.normal(1.0, 0.1, size=5)
    large = rng.normal(1.0, 0.1, size=200)
    lo, hi = bootstrap_ci(small)
    assert lo <= iqm(small) <= hi
    lo2, hi2 = bootstrap_ci(large)
    assert hi2 - lo2 < hi - lo
    assert lo2 < 1.0 < hi2


def test_bootstrap_of_constant_data_is_a_point() -> None:
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (pytest.approx(2.0), pytest.approx(2.0))


def test_bootstrap_is_deterministic() -> None:
    x = [0.9, 1.1, 1.0, 0.95, 1.2]
    assert bootstrap_ci(x, seed=1) == bootstrap_ci(x, seed=1)


def test_stratified_bootstrap_keeps_each_group() -> None:
    # two workloads with very different levels: every resample keeps 3 values of each, so the
    # pooled IQM can never be the low group's value alone, unlike an unstratified resample.
    low, high = [0.0, 0.0, 0.0], [10.0, 10.0, 10.0]
    lo, hi = stratified_bootstrap_ci([low, high])
    assert lo == pytest.approx(5.0) and hi == pytest.approx(5.0)
    assert stratified_bootstrap_ci([[], [1.0]]) == (pytest.approx(1.0), pytest.approx(1.0))


def test_steps_to_target() -> None:
    curve = [[0, 2.0], [10, 1.0], [20, 0.5], [30, 0.6], [40, 0.4]]
    assert steps_to_target(curve, 0.5) == 20  # first time at or below the target
    assert steps_to_target(curve, 0.45) == 40
    assert steps_to_target(curve, 0.1) is None
    assert steps_to_target([[0, 2.0], [10, None], [20, math.nan]], 1.0) is None


def test_median_steps_counts_not_reached_as_infinite() -> None:
    assert median_steps([10, 20, None]) == 20
    assert median_steps([10, None, None]) is None
    assert median_steps([]) is None


def test_probability_of_improvement_is_paired() -> None:
    assert probability_of_improvement([1, 2, 3], [2, 2, 2]) == pytest.approx(0.5)  # win, tie, loss
    with pytest.raises(ValueError):
        probability_of_improvement([1.0], [1.0, 2.0])


def test_score_treats_divergence_as_no_progress() -> None:
    assert score(0.3, 2.3) == 0.3
    assert score(None, 2.3) == 2.3
    assert score(math.nan, 2.3) == 2.3
    assert score(1e9, 2.3) == 2.3
