"""Tests for engine/search.py: the within-stage proposals and the end-of-stage choice.

The GP tests fit real BoTorch models; each fit is tens of milliseconds, so sequences are kept short.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np
import pytest

from lrpilot_service.engine import search
from lrpilot_service.engine.search import (
    MIN_DISTANCE,
    Proposal,
    choose_best,
    diverged_penalty,
    initial_design,
    propose_next,
    space_filling,
)


def _run(
    f: Callable[[float], float | None], n: int, method: str = "bo", seed: int = 0
) -> tuple[list[float], list[float | None], list[Proposal]]:
    """Drive propose_next for n tries the way the planner does (propose, evaluate, append)."""
    xs: list[float] = []
    ys: list[float | None] = []
    props: list[Proposal] = []
    for _ in range(n):
        p = propose_next(xs, ys, method=method)  # type: ignore[arg-type]
        props.append(p)
        xs.append(p.x)
        ys.append(f(p.x))
    return xs, ys, props


def _noisy_quadratic(centre: float, noise: float, seed: int = 0) -> Callable[[float], float]:
    rng = random.Random(seed)
    return lambda x: (x - centre) ** 2 + noise * rng.gauss(0.0, 1.0)


def _assert_no_repeats(xs: Sequence[float]) -> None:
    for i, a in enumerate(xs):
        for b in xs[:i]:
            assert abs(a - b) >= MIN_DISTANCE - 1e-12, (a, b, xs)


def test_initial_design_order() -> None:
    assert propose_next([], [], method="bo") == Proposal(0.5, "initial", "initial design point 1")
    assert propose_next([0.5], [1.0], method="bo").x == 0.2
    p = propose_next([0.5, 0.2], [1.0, 2.0], method="space_filling")
    assert (p.x, p.method) == (0.8, "initial")
    # Entries already tried are skipped, whoever tried them.
    assert propose_next([0.2], [1.0], method="bo").x == 0.5
    assert propose_next([0.5, 0.8], [1.0, 1.0], method="bo").x == 0.2


def test_an_incumbent_comes_first_and_crowds_out_design_points_next_to_it() -> None:
    assert initial_design(None) == (0.5, 0.2, 0.8)
    assert initial_design(0.75) == (0.75, 0.5, 0.2)
    assert initial_design(0.3) == (0.3, 0.5, 0.8)
    assert propose_next([], [], method="bo", incumbent=0.75).x == 0.75


def test_initial_design_stays_below_a_divergence() -> None:
    assert propose_next([0.5], [None], method="bo") == Proposal(0.2, "initial", "initial design point 2")
    p = propose_next([0.5, 0.2], [None, None], method="bo")
    assert (p.x, p.method) == (0.1, "fallback")
    assert "diverged" in p.reason


@pytest.mark.parametrize("method", ["bo", "space_filling"])
def test_never_repeats_a_tried_point(method: str) -> None:
    xs, _, props = _run(_noisy_quadratic(0.63, 0.002), 10, method=method)
    _assert_no_repeats(xs)
    assert all(0.0 <= x <= 1.0 for x in xs)
    expected = "bo-logei" if method == "bo" else "space-filling"
    assert [p.method for p in props[3:]] == [expected] * 7


@pytest.mark.parametrize("centre", [0.63, 0.27])
def test_bo_finds_quadratic_minimum_in_8_tries(centre: float) -> None:
    xs, ys, _ = _run(_noisy_quadratic(centre, 0.001), 8)
    assert min(abs(x - centre) for x in xs) < 0.05
    assert abs(choose_best(xs, ys).x - centre) < 0.1


def test_diverged_penalty_is_worse_and_scale_equivariant() -> None:
    ys: list[float | None] = [1.0, 0.5, None, 2.0]
    pen = diverged_penalty(ys)
    assert pen is not None and pen > 2.0
    for scale in (1e-6, 100.0, 1e6):
        scaled = diverged_penalty([None if y is None else y * scale for y in ys])
        assert scaled == pytest.approx(pen * scale, rel=1e-12)
    same = diverged_penalty([3e-7, 3e-7, None])
    assert same is not None and 3e-7 < same < 4e-7  # relative guard, not an absolute epsilon
    zero = diverged_penalty([0.0, None])
    assert zero is not None and zero > 0.0
    assert diverged_penalty([None, None]) is None


def test_diverged_try_is_never_chosen() -> None:
    # The diverged try sits in the middle of the basin the finite values point to.
    xs = [0.5, 0.2, 0.8, 0.6, 0.4]
    ys: list[float | None] = [0.3, 1.0, 0.9, None, 0.35]
    c = choose_best(xs, ys)
    assert c.x != 0.6 and c.x in xs and math.isfinite(c.mean)
    assert choose_best([0.5, 0.2, 0.8], [None, 0.9, None]).x == 0.2
    all_div = choose_best([0.5, 0.2, 0.8], [None, None, None])
    assert all_div.x == 0.2 and "all diverged" in all_div.reason


def test_choose_best_uses_the_posterior_mean() -> None:
    # A consistent cluster near 0.3 (~0.50) against one lucky low value at 0.8 whose repeat at the
    # same point (0.75) shows it is noise: the raw argmin is 0.8, the posterior mean prefers the
    # cluster. (An isolated low value without a repeat is, to a GP, a plausible narrow dip.)
    xs = [0.26, 0.28, 0.30, 0.32, 0.34, 0.80, 0.80, 0.6, 0.05]
    ys: list[float | None] = [0.51, 0.50, 0.49, 0.50, 0.51, 0.40, 0.75, 0.9, 0.9]
    c = choose_best(xs, ys)
    assert 0.25 <= c.x <= 0.35 and "GP posterior mean" in c.reason
    # The reported mean is the GP's, in the units of ys, not the raw observation.
    penalty = diverged_penalty(ys)
    assert penalty is not None
    values, offset, scale = search._scaled(ys, penalty)
    mean = offset + scale * float(search.gp.fit(xs, values).predict([c.x])[0][0])
    assert c.mean == pytest.approx(mean, rel=1e-6)
    assert c.mean != ys[xs.index(c.x)]


def test_choose_best_with_few_finite_points_uses_observed_minimum() -> None:
    c = choose_best([0.5, 0.2], [1.0, 0.7])
    assert (c.x, c.mean) == (0.2, 0.7) and "observed" in c.reason


def test_deterministic_and_leaves_caller_rng_alone() -> None:
    xs = [0.5, 0.2, 0.8, 0.65, 0.35]
    ys: list[float | None] = [0.2, 0.5, 0.3, 0.15, None]
    before = np.random.get_state()[1].copy()  # the model draws no random numbers at all
    first = (propose_next(xs, ys, method="bo"), choose_best(xs, ys))
    assert (np.random.get_state()[1] == before).all()
    assert first == (propose_next(xs, ys, method="bo"), choose_best(xs, ys))


@pytest.mark.parametrize("scale", [100.0, 1e-6])
def test_scale_invariance(scale: float) -> None:
    xs = [0.5, 0.2, 0.8, 0.65, 0.35, 0.9]
    ys = [0.2, 0.5, 0.3, 0.15, 0.33, 0.6]
    scaled = [y * scale for y in ys]
    assert propose_next(xs, scaled, method="bo").x == propose_next(xs, ys, method="bo").x
    base, big = choose_best(xs, ys), choose_best(xs, scaled)
    assert big.x == base.x and big.mean == pytest.approx(base.mean * scale, rel=1e-3)


DEGENERATE: list[tuple[list[float], list[float | None]]] = [
    ([0.3], [1.0]),
    ([0.5, 0.5, 0.5], [1.0, 1.0, 1.0]),
    ([0.5, 0.5, 0.5, 0.5], [1.0, 2.0, 0.5, 3.0]),
    ([0.5, 0.2, 0.8, 0.4], [2.0, 2.0, 2.0, 2.0]),
    ([0.5, 0.2, 0.8], [0.0, 0.0, 0.0]),
    ([0.0, 1.0, 0.5], [None, None, None]),
    ([0.0, 0.5, 0.2, 0.8], [None, 1.0, None, None]),
    ([-0.5, 1.5, 0.5], [1.0, 2.0, 3.0]),
    ([0.5, 0.2, 0.8, 0.3], [math.nan, math.inf, 1.0, -math.inf]),
    ([0.5, 0.2, 0.8, 0.3], [1e-300, 2e-300, 3e-300, 1e-300]),
    ([0.5, 0.2, 0.8, 0.3], [1e300, -1e300, 1e300, 0.0]),
    ([i / 100 for i in range(101)], [(i / 100 - 0.4) ** 2 for i in range(101)]),
]


@pytest.mark.parametrize(("xs", "ys"), DEGENERATE)
def test_degenerate_inputs_never_raise(xs: list[float], ys: list[float | None]) -> None:
    for method in ("bo", "space_filling"):
        p = propose_next(xs, ys, method=method)  # type: ignore[arg-type]
        assert 0.0 <= p.x <= 1.0 and p.method in {"initial", "bo-logei", "space-filling", "fallback"}
        assert all(p.x != min(1.0, max(0.0, x)) for x in xs)
    c = choose_best(xs, ys)
    assert c.x in [min(1.0, max(0.0, x)) for x in xs]


def test_fit_failure_falls_back_to_space_filling(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no fit today")

    monkeypatch.setattr(search.gp, "fit", boom)
    xs = [0.5, 0.2, 0.8, 0.65]
    ys: list[float | None] = [0.2, 0.5, 0.3, 0.15]
    p = propose_next(xs, ys, method="bo")
    assert (p.x, p.method) == (space_filling(xs), "fallback") and "RuntimeError" in p.reason
    c = choose_best(xs, ys)
    assert (c.x, c.mean) == (0.65, 0.15) and "RuntimeError" in c.reason


def test_space_filling_covers_gaps() -> None:
    xs, _, props = _run(lambda x: 1.0, 15, method="space_filling")
    assert [p.x for p in props[3:7]] == pytest.approx([0.35, 0.65, 0.1, 0.9])
    edges = sorted([0.0, 1.0, *xs])
    assert max(b - a for a, b in pairwise(edges)) <= 0.1 + 1e-12
    assert space_filling([]) == 0.5 and space_filling([0.0, 1.0]) == 0.5


def test_statistically_tied_tries_choose_the_largest_lr() -> None:
    # Short windows understate a larger LR's long-run gain: among ties, the largest LR wins.
    xs = [0.2, 0.4, 0.6, 0.8, 0.5]
    ys: list[float | None] = [0.50, 0.300, 0.302, 0.90, 0.31]
    c = choose_best(xs, ys, sds=[0.01] * 5)
    assert c.x == 0.6 and "largest LR" in c.reason


def test_the_tie_rule_can_stop_halfway_to_the_largest_tied_lr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search, "TIE_TOWARD", 0.5)  # lever tie-half
    xs = [0.2, 0.4, 0.6, 0.8, 0.5]
    ys: list[float | None] = [0.50, 0.300, 0.302, 0.90, 0.31]
    c = choose_best(xs, ys, sds=[0.01] * 5)
    assert c.x == pytest.approx(0.5) and "of the way" in c.reason


def test_a_clear_winner_is_not_overridden_by_the_tie_rule() -> None:
    xs = [0.2, 0.4, 0.6, 0.8, 0.5]
    ys: list[float | None] = [0.50, 0.300, 0.40, 0.90, 0.35]
    c = choose_best(xs, ys, sds=[0.001] * 5)
    assert c.x == 0.4 and c.reason == "lowest GP posterior mean"


def test_a_practical_tolerance_ties_tries_the_noise_alone_would_not() -> None:
    xs = [0.2, 0.4, 0.6, 0.8, 0.5]
    ys: list[float | None] = [0.50, 0.300, 0.40, 0.90, 0.35]
    c = choose_best(xs, ys, sds=[0.001] * 5, tolerance=0.06)
    assert c.x == 0.5 and "tied" in c.reason
    assert choose_best(xs, ys, sds=[0.001] * 5, tolerance=0.11).x == 0.6


def test_with_few_scored_tries_the_lowest_wins_unless_the_tie_rule_is_extended(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    xs, ys = [0.2, 0.5], [0.300, 0.302]
    assert choose_best(xs, list(ys), sds=[0.01, 0.01]).x == 0.2
    monkeypatch.setattr(search, "TIE_FEW_POINTS", True)  # lever tie-few
    assert choose_best(xs, list(ys), sds=[0.01, 0.01]).x == 0.5


def test_bo_reports_its_expected_gain_in_units_of_the_spread() -> None:
    """Scaling the losses leaves the gain alone; a well-bracketed minimum leaves little to gain."""
    xs = [0.5, 0.2, 0.8, 0.35, 0.65]
    quadratic = [(x - 0.5) ** 2 for x in xs]
    gains = [
        propose_next(xs, [scale * y + shift for y in quadratic], method="bo").gain
        for scale, shift in [(1.0, 0.0), (1e3, 5.0), (1e-4, 0.0)]
    ]
    assert all(g is not None for g in gains)
    assert max(gains) - min(gains) < 1e-6 * max(gains)  # type: ignore[type-var, operator]
    assert gains[0] < 0.05  # type: ignore[operator]
    # Still falling at the edge of the tried points: the GP expects a lot more.
    slope = [1.0 - x for x in xs]
    assert propose_next(xs, slope, method="bo").gain > gains[0]  # type: ignore[operator]
    assert propose_next([], [], method="bo").gain is None  # initial design: no BO, no gain
