"""Derived sizes of a job's plan: how long stages and search windows are.

AutoLRS fixes tau = 1000 and tau' = 100 whatever the budget, which suits 100k-step runs and
wastes a 2,000-step run. Here, when the budget T is known, every size is a fraction of T so the
plan has the same shape at every scale (a 1,000-step and a 1,000,000-step job spend the same
share on search), with floors that keep each candidate window long enough to fit a forecast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lrpilot.protocol import TunerConfig

#: First stage's exploitation length as a share of the budget (tau_0 = T / 20).
TAU_SHARE = 1 / 20
#: A candidate window needs this many losses for the forecaster to see a curve.
MIN_TRY_STEPS = 10
#: AutoLRS's sizes, used when the budget is unknown.
UNBUDGETED_TAU = 1000
UNBUDGETED_TAU_MAX_FACTOR = 8
#: Later stages search a window of +-(range ** REFINE_WIDTH_SHARE) around the last best LR,
#: at least a factor REFINE_MIN_FACTOR either side.
REFINE_WIDTH_SHARE = 1 / 16
REFINE_MIN_FACTOR = 2.0
#: Default number of tries in later stages.
REFINE_CANDIDATES = 3
#: The range test's length as a share of the budget, and its bounds: about 10 steps per decade of
#: the default range at T = 2,000, never fewer than 5 a decade.
PROBE_SHARE = 0.03
PROBE_MIN_STEPS, PROBE_MAX_STEPS = 30, 100
#: Smaller budgets cannot afford a range test: they search the whole range.
PROBE_MIN_BUDGET = 8 * PROBE_MIN_STEPS
#: Default warmup as a share of the budget (the tuned baselines warm up over 5%).
WARMUP_SHARE = 0.03


@dataclass(frozen=True)
class Budget:
    """The numbers the planner works with, resolved once from the configuration."""

    total_steps: int | None
    tau: int
    tau_max: int
    probe_steps: int  # 0: no range test
    warmup_steps: int
    warmup_lr: float | None  # None: from the range test's bracket
    refine_candidates: int
    anneal_reserve: int

    def try_steps(self, tau: int, ratio: float) -> int:
        """Length of one candidate's search window for a stage of length ``tau``."""
        return max(MIN_TRY_STEPS, round(ratio * tau))

    def next_tau(self, tau: int) -> int:
        return min(2 * tau, self.tau_max)


def resolve(config: TunerConfig) -> Budget:
    """Fill in every size the configuration left open (rules in docs/engine.md)."""
    floor = math.ceil(MIN_TRY_STEPS / config.tau_ratio)
    total = config.total_steps
    probe = 0
    if total is not None and config.probe == "range_test" and total >= PROBE_MIN_BUDGET:
        probe = config.probe_steps or min(PROBE_MAX_STEPS, max(PROBE_MIN_STEPS, round(PROBE_SHARE * total)))
        probe = min(probe, total // 4)  # a small budget keeps most of its steps for training
    warmup = config.warmup_steps
    if warmup is None:
        warmup = round(WARMUP_SHARE * total) if total is not None else 0
    if total is not None:  # the range test and the warmup (one step at least after it) must fit
        warmup = max(1 if probe else 0, min(warmup, total - probe - 1))
    if config.tau is not None:
        tau = config.tau
    elif total is not None:
        tau = max(floor, round((total - warmup - probe) * TAU_SHARE))
    else:
        tau = max(floor, UNBUDGETED_TAU)
    if config.tau_max is not None:
        tau_max = max(config.tau_max, tau)
    elif total is not None:
        tau_max = max(tau, total)
    else:
        tau_max = tau * UNBUDGETED_TAU_MAX_FACTOR
    warmup_lr = config.warmup_lr
    if warmup_lr is None and probe == 0:
        warmup_lr = config.lr_min**0.75 * config.lr_max**0.25
    refine = config.refine_candidates
    if refine is None:
        refine = min(REFINE_CANDIDATES, config.candidates)
    reserve = 0
    if total is not None and config.anneal != "none":
        reserve = math.ceil(config.anneal_fraction * total)
    return Budget(
        total_steps=total,
        tau=tau,
        tau_max=tau_max,
        probe_steps=probe,
        warmup_steps=warmup,
        warmup_lr=warmup_lr,
        refine_candidates=refine,
        anneal_reserve=reserve,
    )


#: Stages sized by how far their search moved the LR (lever ``sized-stages``, off: docs/engine.md).
SIZE_BY_MOVE = False
#: A choice this many times above or below the LR the stage started at moved; else it stayed.
MOVED_FACTOR = 1.5


def sized_tau(tau: int, chosen: float, previous: float | None) -> int:
    """The stage's exploitation length when it is sized by how uncertain the LR still is.

    A search that moved the LR (by ``MOVED_FACTOR`` or more) found the old one wrong, so the next
    search comes after half the stage; one that kept it confirmed it, so the next comes after
    twice the stage, and fewer steps go to search. Without ``SIZE_BY_MOVE``: ``tau`` itself.
    """
    if not SIZE_BY_MOVE or previous is None or previous <= 0 or chosen <= 0:
        return tau
    moved = max(chosen / previous, previous / chosen) >= MOVED_FACTOR
    return max(1, tau // 2) if moved else 2 * tau


def refine_range(config: TunerConfig, best_lr: float) -> tuple[float, float]:
    """The narrowed log range a later stage searches, centred on the last best LR."""
    width = max(REFINE_MIN_FACTOR, (config.lr_max / config.lr_min) ** REFINE_WIDTH_SHARE)
    low = max(config.lr_min, best_lr / width)
    high = min(config.lr_max, best_lr * width)
    if high <= low:
        return config.lr_min, config.lr_max
    return low, high


def lr_of(x: float, low: float, high: float) -> float:
    """Map a normalised point x in [0, 1] to an LR on the log scale of [low, high]."""
    x = min(max(x, 0.0), 1.0)
    return float(min(max(low * (high / low) ** x, low), high))


def x_of(lr: float, low: float, high: float) -> float:
    """The inverse of :func:`lr_of`: where ``lr`` lies on the log scale of [low, high] (unclipped)."""
    return math.log(lr / low) / math.log(high / low)
