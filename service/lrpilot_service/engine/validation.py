"""Validation loss in the plan (``objective="val"``): where to measure it, and overfitting.

The tries score LRs on validation losses measured at ``eval_at`` steps; exploitation measures
the end of every window, so a stage that makes the validation loss worse is seen and rewound.
"""

from __future__ import annotations

import math

from lrpilot.protocol import TunerConfig, WindowReport
from lrpilot_service.engine.state import State

#: Validation points per search try when the objective is validation loss.
EVALS_PER_TRY = 8
#: Val objective: an exploit window whose validation loss is this much above the stage's start
#: is overfitting, and is treated like a divergence (rewind, quarter LR).
OVERFIT_TOLERANCE = 0.03


def eval_steps(st: State, config: TunerConfig) -> list[int]:
    """Steps after which the client measures validation loss (val objective: tries, exploits)."""
    if config.objective != "val" or st["phase"] not in ("search", "exploit"):
        return []
    seg = st["segment"]
    if st["phase"] == "exploit":  # one point per window: enough to see the stage overfit
        return [min(seg["end"], st["next_step"] + config.window_max) - 1]
    spacing = max(1, (seg["end"] - seg["start"]) // EVALS_PER_TRY)
    first = st["next_step"]
    last = min(seg["end"], first + config.window_max)
    return [s for s in range(seg["start"] + spacing - 1, seg["end"], spacing) if first <= s < last]


def last_validation(report: WindowReport) -> float | None:
    """The report's validation loss at its latest measured step (finite values only), if any."""
    finite = {s: v for s, v in (report.val_losses or {}).items() if math.isfinite(v)}
    return finite[max(finite)] if finite else None


def overfitting(reference: float, value: float) -> str | None:
    """Val objective: is ``value`` worse than the stage's ``reference`` by more than the tolerance?

    Small data overfits: a large LR drives the training loss down and the validation loss up, and
    the tries are too short to see it. The planner compares each exploit window's last validation
    loss with the stage's reference (at the snapshot, else the stage's first measurement).
    """
    if value > reference + OVERFIT_TOLERANCE * abs(reference):
        return f"validation loss rose from {reference:.4g} to {value:.4g} in this stage (overfitting); "
    return None
