"""Validation loss in the plan (``objective="val"``): where to measure it, and overfitting.

The tries score LRs on validation losses measured at ``eval_at`` steps: once, at the end of a
try that cooled down (a full validation loss has no minibatch noise to average away), or at
``EVALS_PER_TRY`` points for a held try's forecast. Exploitation measures the end of every window,
so a stage that makes the validation loss worse is seen and rewound.
"""

from __future__ import annotations

import math

from lrpilot.protocol import TunerConfig, WindowReport
from lrpilot_service.engine.segments import window_steps
from lrpilot_service.engine.state import State

#: Validation points per search try when the objective is validation loss.
EVALS_PER_TRY = 8
#: Exploitation measures validation loss this many times a stage, but not more often than every
#: MIN_EVAL_SPACING steps.
EVALS_PER_STAGE = 8
MIN_EVAL_SPACING = 10
#: Val objective: an exploit window whose validation loss is this much above the stage's start
#: is overfitting, and is treated like a divergence (rewind, quarter LR).
OVERFIT_TOLERANCE = 0.03
#: ... in this many exploit windows in a row: one window's validation loss can spike at a large
#: LR without the stage overfitting (friedman_mlp seed 4 backed off from lr=0.068 to 0.017 on one
#: window 31% up, while the tuned cosine peaks at 0.32). Measured: docs/engine.md, round 7.
OVERFIT_WINDOWS = 2
#: Measure the warmup's last step too (lever ``warmup-val``, off), so the first stage has a level
#: to judge its tries against, as later stages do. Without it a first stage scored on validation
#: loss measures progress from its worst try: one bad try (lm_bytes seed 1: 3.21 against 2.54-2.57)
#: made four tries 5x apart tie, and the largest, 5x the tuned LR, won.
WARMUP_VAL = False


def window_cap(st: State, config: TunerConfig) -> int:
    """The longest window now: ``window_max``, and with the val objective an exploitation window
    ends every 1/EVALS_PER_STAGE of the stage, so an overfitting stage is seen (and rewound) in
    time; small data overfits within a few hundred steps."""
    if config.objective == "val" and st["phase"] == "exploit":
        return min(config.window_max, max(MIN_EVAL_SPACING, st["tau"] // EVALS_PER_STAGE))
    return config.window_max


def eval_steps(st: State, config: TunerConfig) -> list[int]:
    """Steps after which the client measures validation loss (val objective: tries, exploits, and
    with ``keep_best`` the anneal's last step, so the final model can be compared with the best;
    with ``WARMUP_VAL`` the warmup's last step)."""
    measured = ("search", "exploit", "anneal") if config.keep_best else ("search", "exploit")
    if WARMUP_VAL:
        measured = (*measured, "warmup")
    if config.objective != "val" or st["phase"] not in measured:
        return []
    seg, first = st["segment"], st["next_step"]
    last = first + window_steps(seg, first, window_cap(st, config))
    if st["phase"] in ("anneal", "warmup"):
        return [seg["end"] - 1] if first <= seg["end"] - 1 < last else []
    if st["phase"] == "exploit":  # the end of every (short) window
        return [last - 1]
    if seg["start"] < seg["hold"] < seg["end"]:  # a cooled try: its end is what it is scored on
        return [seg["end"] - 1] if first <= seg["end"] - 1 < last else []
    spacing = max(1, (seg["end"] - seg["start"]) // EVALS_PER_TRY)
    return [s for s in range(seg["start"] + spacing - 1, seg["end"], spacing) if first <= s < last]


def last_validation(report: WindowReport) -> float | None:
    """The report's validation loss at its latest measured step (finite values only), if any."""
    finite = {s: v for s, v in (report.val_losses or {}).items() if math.isfinite(v)}
    return finite[max(finite)] if finite else None


def worst_validation(report: WindowReport) -> float | None:
    """The report's highest finite validation loss: an overfitting stage is judged on its worst point."""
    finite = [v for v in (report.val_losses or {}).values() if math.isfinite(v)]
    return max(finite) if finite else None


def overfit_verdict(st: State, reference: float, value: float) -> str | None:
    """Count windows above the reference in a row; why the stage overfits once OVERFIT_WINDOWS did."""
    why = overfitting(reference, value)
    strikes = 0 if why is None else st["overfit_windows"] + 1
    st["overfit_windows"] = strikes
    return why if strikes >= OVERFIT_WINDOWS else None


def overfitting(reference: float, value: float) -> str | None:
    """Val objective: is ``value`` worse than the stage's ``reference`` by more than the tolerance?

    Small data overfits: a large LR drives the training loss down and the validation loss up, and
    the tries are too short to see it. The planner compares each exploit window's last validation
    loss with the stage's reference (at the snapshot, else the stage's first measurement).
    """
    if value > reference + OVERFIT_TOLERANCE * abs(reference):
        return f"validation loss rose from {reference:.4g} to {value:.4g} in this stage (overfitting); "
    return None
