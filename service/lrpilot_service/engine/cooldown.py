"""Tries that end with a cooldown, scored by where their LR leads once annealed.

A constant LR trains down a valley while bouncing across it: its minibatch loss sits above the
valley floor by an amount that grows with the LR. A short try at a small LR shows a low loss
because it bounces less, not because it got further; the final anneal of a real run removes the
bounce for every LR, so ranking tries by their raw loss favours LRs that are too small
(short-horizon bias, Wu et al. 2018) — measured here as later stages choosing ever smaller LRs
while the tuned optimum held the largest stable one. Cooling each try down over its last
``try_cooldown`` share (LR linearly toward zero, as WSD's decay does) removes most of the bounce,
so the cooled loss compares progress, the quantity the rest of the run builds on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from lrpilot_service.engine.forecast import LossForecast
from lrpilot_service.engine.moments import mean_sd

#: The score is the mean over this share of the cooldown's last steps (at least MIN_SCORED).
SCORED_SHARE = 0.5
MIN_SCORED = 3


def cooldown_steps(try_steps: int, share: float) -> int:
    """How many of a try's steps anneal (0 when the share is 0, else at least MIN_SCORED)."""
    if share <= 0:
        return 0
    return min(try_steps - 1, max(MIN_SCORED, round(share * try_steps)))


def cooled_score(losses: Sequence[float], cooled: int) -> LossForecast:
    """The mean of the last losses of the cooldown, with its standard error as the uncertainty."""
    k = max(MIN_SCORED, math.ceil(SCORED_SHARE * cooled))
    tail = [v for v in losses[-k:] if math.isfinite(v)]
    if not tail:
        return LossForecast(0.0, 0.0, "cooldown", "cooldown: no finite loss")
    mean, sd = mean_sd(tail)
    return LossForecast(
        mean, sd / math.sqrt(len(tail)), "cooldown", f"mean of the last {len(tail)} cooled losses"
    )


def cooled_validation(vals: Mapping[str, float], cooled_from: int) -> float | None:
    """The mean validation loss measured from ``cooled_from`` on (the try's end), else the last one."""
    steps = sorted(int(s) for s in vals)
    if not steps:
        return None
    late = [vals[str(s)] for s in steps if s >= cooled_from]
    return mean_sd(late)[0] if late else vals[str(steps[-1])]
