"""The LR range test (Smith 2017): where in [lr_min, lr_max] does this model learn at all?

From the initial weights the LR rises geometrically from ``lr_min`` to ``lr_max`` over a few dozen
steps (about ten a decade), and the run is stopped as soon as the loss explodes; then the weights
are restored. The loss, plotted against the LR of each step, falls once the LR is large enough to
move the weights, reaches a minimum, and climbs back (or explodes) past the edge of stability.

What the curve says, measured on the eight benchmark workloads (docs/engine.md): the LR that is
best for a whole tuned schedule lies between 1/300 and 3 times the LR at the curve's smoothed
minimum, on every workload. The minimum alone is no estimate (the ratio spans 2.5 decades: small
data that overfits wants far smaller LRs), but the bracket narrows the range the stage search
must cover, and it excludes the top of a wide range where a network dies without a NaN.

Where on the curve the top is read (round 16): at the minimum, but never past the geometric
centre of the curve's floor, the LRs whose smoothed loss lies within ``FLOOR_SHARE`` of the drop of
the minimum. Some curves end in a floor that is flat but for noise, and where on it the lowest
point falls is chance: the byte-level LM's floor spans lr 0.02-0.5, and over 10 seeds its top
spread 0.51 decades read at the minimum, 0.28 capped at the floor's centre (``python -m
bench.range_test``). The held LR follows the top: lm_bytes went from 1.033 to 1.015 of the tuned
cosine (10 seeds), its worst run from 1.10 to 1.03, and of the other workloads' 55 runs one
changed (cancer seed 2, 1% better; docs/engine.md, round 16). Where the loss keeps falling until
the edge of stability (SGD on a linear regression, ``tests/engine/test_scenarios.py``), the floor
is a narrow band at the minimum, and the stages chose within 1.6x of the best constant LR (3.6x
read at the minimum alone). The floor's centre itself (lever ``probe-centre``) also moves the top
up where the floor extends past the minimum, and cost the char LM 3% and the teacher CNN 0.8%; its
first LR (the knee, lever ``probe-knee``) reads far below a real minimum (up to 19x below the best
LR, round 15).

The bracket spans 2 decades, not the 3 that hold every workload's optimum: over 10 paired
seeds the first stage's 5 tries then land on the LRs that most workloads want (aggregate 1.037 ->
1.029 of the tuned cosine; 5 of 8 workloads 3-7% better), and the two small-data workloads that
want less lose 3-5% (docs/engine.md, round 9). What reaches lower: the overfitting check and
back-offs, and a stage in which no try learned widens the bracket a decade down.

Where the test proper starts (round 18): one decade below where a quick locating pass saw the loss
fall (:mod:`lrpilot_service.engine.range_test`), so its steps resolve the decades that matter.

Everything here is a pure function of the probe's losses and the LRs they were taken at.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

#: The bracket's top is the LR read on the smoothed curve times this, capped by the edge.
TOP_FACTOR = 2.0
#: Where the top is read: the minimum capped at the floor's centre, the floor's geometric centre
#: (lever ``probe-centre``), its first LR (the knee, lever ``probe-knee``) or the minimum alone
#: (lever ``probe-minimum``, the rule before round 16).
TOP_AT: Literal["capped", "centre", "knee", "minimum"] = "capped"
#: The floor: the LRs, from the curve's fall to its edge, within this share of the drop of the minimum.
FLOOR_SHARE = 0.1
#: The bracket spans this many decades below its top.
DECADES = 2.0
#: Past the minimum, the loss climbing back this share of the way to its starting level is the edge.
EDGE_SHARE = 0.5
#: A drop smaller than this share of the starting level, or than a few noise sds, is no signal.
MIN_DROP_SHARE = 0.02
NOISE_SDS = 3.0
#: The locating pass (range_test.py): its pace, how often it checks the loss, and how far below
#: the window where the loss fell the test proper starts. It runs only where one pace over the
#: whole range would sweep fewer than ``LOCATE_BELOW`` steps a decade (lever ``locate-always``: at
#: any pace; lever ``probe-fixed``, 0: never).
LOCATE_BELOW = 10.0
LOCATE_PER_DECADE = 2.5
CHECK_STEPS = 2
BACKOFF_DECADES = 1.0


@dataclass(frozen=True)
class Bracket:
    """The LRs the first stage searches, and what the range test saw."""

    low: float
    high: float
    informative: bool  # False: the test saw no learning; the bracket is the whole range
    reason: str


def probe_lr(index: int, steps: int, lr_min: float, lr_max: float) -> float:
    """The LR of the range test's step ``index`` of ``steps``: geometric from lr_min toward lr_max
    (reached at ``index == steps``, one step after the last)."""
    if steps <= 0:
        return lr_min
    return float(lr_min * (lr_max / lr_min) ** (index / steps))


def sweep_steps(low: float, high: float, per_decade: float) -> int:
    """Steps of a geometric sweep from ``low`` to ``high`` at ``per_decade`` steps a decade (>= 1)."""
    return max(1, math.ceil(math.log10(high / low) * per_decade - 1e-9))


def started_to_fall(losses: Sequence[float]) -> bool:
    """Has the sweep's loss begun to fall? The mean of the last ``CHECK_STEPS`` losses lies below
    the median of the first three by more than ``MIN_DROP_SHARE`` of it and ``NOISE_SDS`` standard
    deviations of that difference. The noise sd is read robustly from step-to-step differences
    (their median absolute value is 0.674 * sqrt(2) sd for Gaussian noise); a median of three has
    variance about (pi / 2) sd^2 / 3, a mean of k sd^2 / k."""
    if len(losses) < 3 + CHECK_STEPS:
        return False
    v = np.asarray(losses, dtype=np.float64)
    start, recent = float(np.median(v[:3])), float(np.mean(v[-CHECK_STEPS:]))
    sd = float(np.median(np.abs(np.diff(v)))) / (0.6745 * math.sqrt(2))
    spread = sd * math.sqrt(math.pi / 6 + 1 / CHECK_STEPS)
    return start - recent > max(MIN_DROP_SHARE * abs(start), NOISE_SDS * spread)


def _smooth(values: Sequence[float], half_width: int) -> np.ndarray:
    """Running median: one noisy minibatch must not set the minimum or the edge."""
    v = np.asarray(values, dtype=np.float64)
    return np.array([np.median(v[max(0, i - half_width) : i + half_width + 1]) for i in range(len(v))])


def _floor(s: np.ndarray, i_min: int, edge: int | None, band: float) -> tuple[int, int]:
    """The first and last steps, on either side of the minimum ``i_min`` and before the ``edge``,
    whose smoothed loss lies within ``band`` of the minimum's (the minimum itself always does)."""
    level = s[i_min] + band
    first = next(i for i in range(i_min + 1) if s[i] <= level)
    stop = len(s) if edge is None else min(edge, len(s))
    last = max(i for i in range(i_min, stop) if s[i] <= level)
    return first, last


def bracket(
    losses: Sequence[float],
    steps: int,
    lr_min: float,
    lr_max: float,
    *,
    diverged_at: int | None,
    lrs: Sequence[float] | None = None,
) -> Bracket:
    """The search range from the range test's losses: step i at ``lrs[i]``, or without ``lrs`` at
    ``probe_lr(i, steps, ...)`` (one pace over ``steps``, which also sets the smoothing).

    ``diverged_at`` is the index of the step where the loss went non-finite or past the guard
    (the test stopped there; ``lrs`` then holds its LR too), or None when it ran its whole length.
    """

    def lr_at(i: int) -> float:
        return lrs[min(i, len(lrs) - 1)] if lrs else probe_lr(i, steps, lr_min, lr_max)

    finite = [v for v in losses if math.isfinite(v)]
    top = max((abs(v) for v in finite), default=0.0) or 1.0
    finite = [v / top for v in finite]  # scale-free, and no overflow for losses near 1e308
    whole = Bracket(lr_min, lr_max, False, "range test saw no learning: searching the whole range")
    if len(finite) < 8:
        if diverged_at is not None and diverged_at < 8:  # diverged at once: only the bottom is safe
            top = lr_at(max(diverged_at - 1, 0))
            high = max(top, lr_min * 10)
            return Bracket(lr_min, min(high, lr_max), True, f"range test diverged at once (lr {top:.3g})")
        return whole
    s = _smooth(finite, max(1, steps // 30))
    head = s[: max(3, len(s) // 10)]
    start, i_min = float(np.median(head)), int(np.argmin(s))
    drop = start - float(s[i_min])
    noise = float(np.median(np.abs(np.diff(finite)))) / math.sqrt(2) if len(finite) > 2 else 0.0
    if drop <= max(MIN_DROP_SHARE * abs(start), NOISE_SDS * noise):
        return whole
    edge = next((i for i in range(i_min, len(s)) if s[i] > s[i_min] + EDGE_SHARE * drop), None)
    if edge is None and diverged_at is not None:
        edge = diverged_at
    lr_at_min = lr_at(i_min)
    fell = f"{drop / abs(start):.0%}" if start else f"by {drop * top:.3g}"  # a loss that starts at 0
    why = f"range test: loss fell {fell} to its minimum at lr {lr_at_min:.3g}"
    first, last = (lr_at(i) for i in _floor(s, i_min, edge, FLOOR_SHARE * drop))
    centre = math.sqrt(first * last)
    at = {"capped": min(lr_at_min, centre), "centre": centre, "knee": first, "minimum": lr_at_min}[TOP_AT]
    if at != lr_at_min:
        why += f", floor lr {first:.3g}-{last:.3g}, top read at lr {at:.3g} ({TOP_AT})"
    high = at * TOP_FACTOR
    if edge is not None:
        lr_edge = lr_at(edge)
        high = min(high, lr_edge)
        why += f", edge at lr {lr_edge:.3g}"
    high = min(max(high, lr_min * 10), lr_max)
    low = max(lr_min, high / 10**DECADES)
    return Bracket(low, high, True, why)
