"""Shapes of the hand schedules: endpoints, warmup, monotone decay, the documented formulas."""

from __future__ import annotations

import itertools
import math

import pytest

from bench.schedules import SCHEDULES, onecycle, rex, warmup_steps, wsd

T, PEAK = 1000, 0.5


def curve(name: str, total: int = T) -> list[float]:
    return [SCHEDULES[name](s, total, PEAK) for s in range(total)]


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_positive_and_never_above_peak(name: str) -> None:
    lrs = curve(name)
    assert all(0.0 <= x <= PEAK * (1 + 1e-12) for x in lrs)
    assert max(lrs) == pytest.approx(PEAK)


@pytest.mark.parametrize("name", ["cosine", "linear", "wsd"])
def test_warmup_rises_linearly_to_the_peak(name: str) -> None:
    w = warmup_steps(T)
    lrs = curve(name)
    assert w == 50
    assert lrs[0] == pytest.approx(PEAK / w)
    assert lrs[w - 1] == pytest.approx(PEAK)
    assert all(b > a for a, b in itertools.pairwise(lrs[:w]))


@pytest.mark.parametrize("name", ["cosine", "linear", "wsd", "rex", "step"])
def test_non_increasing_after_the_peak_and_near_zero_at_the_end(name: str) -> None:
    lrs = curve(name)
    top = lrs.index(max(lrs))
    assert all(b <= a + 1e-15 for a, b in zip(lrs[top:], lrs[top + 1 :], strict=False))
    assert lrs[-1] < 0.05 * PEAK


def test_constant() -> None:
    assert set(curve("constant")) == {PEAK}


def test_step_drops_tenfold_at_thirds() -> None:
    lrs = curve("step")
    assert lrs[332] == PEAK and lrs[333] == pytest.approx(PEAK / 10)
    assert lrs[665] == pytest.approx(PEAK / 10) and lrs[666] == pytest.approx(PEAK / 100)


def test_cosine_is_half_way_at_the_middle_of_its_decay() -> None:
    w = warmup_steps(T)
    mid = w + (T - w) // 2
    assert SCHEDULES["cosine"](mid, T, PEAK) == pytest.approx(PEAK / 2, rel=1e-2)


def test_wsd_is_flat_until_the_last_fifth_then_one_minus_sqrt() -> None:
    assert wsd(799, T, PEAK) == PEAK
    assert wsd(800, T, PEAK) == PEAK
    assert wsd(900, T, PEAK) == pytest.approx(PEAK * (1 - math.sqrt(0.5)))


def test_rex_formula() -> None:
    assert rex(0, T, PEAK) == pytest.approx(PEAK)
    p = 0.75
    assert rex(750, T, PEAK) == pytest.approx(PEAK * (1 - p) / (0.5 + 0.5 * (1 - p)))
    assert rex(500, T, PEAK) > SCHEDULES["linear"](500, T, PEAK)  # REX stays high longer than linear


def test_onecycle_matches_pytorch() -> None:
    torch = pytest.importorskip("torch")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=PEAK)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=PEAK,
        total_steps=T,
        pct_start=0.3,
        div_factor=25,
        final_div_factor=1e4,
        cycle_momentum=False,
    )
    for step in range(T):
        assert onecycle(step, T, PEAK) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        opt.step()
        sched.step()
    assert onecycle(0, T, PEAK) == pytest.approx(PEAK / 25)
    assert onecycle(T - 1, T, PEAK) == pytest.approx(PEAK / 25 / 1e4)


def test_short_budgets_do_not_break() -> None:
    for name in SCHEDULES:
        lrs = curve(name, total=10)
        assert all(math.isfinite(x) and x >= 0 for x in lrs)
