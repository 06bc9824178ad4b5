"""Stopping a memorising final hold (objective ``"val"``): keep the best model to the end.

Small data overfits late. On digits_mlp (seed 2) lrpilot's hold at lr=0.025 brought the
validation loss down to 0.156 by step 500; the training loss then went on falling toward zero
while the validation loss rose to 0.186 by step 2,000, against the tuned cosine's 0.163. The
stage's overfitting rule (validation.py) compares with the validation loss at the stage's start,
which a long fall leaves far above, so it never fired. In the hold, therefore:

- a validation loss ``NEW_BEST_MARGIN`` below the hold's best so far, and below the stage's
  starting level, is a new best, and the next window starts with a snapshot. The client keeps one
  slot, so every later restore (this rule's, or the stage's own overfitting rule's) goes back to
  the best model, which is never worse than the stage's snapshot it replaced. Measured without
  the second condition, cancer and diabetes lost 3-4%: a restore went to a hold's "best" above
  the stage's start;
- the model is memorising when, in ``PATIENCE`` windows in a row, the validation loss sits
  ``OVERFIT_TOLERANCE`` above that best *and* the training loss is ``TRAIN_GAP`` below its level at
  the best. A validation loss that only bounces (large data at a large LR) comes with a training
  loss that does not fall, so it does not count;
- then the best model is restored and the LR drops to ``lr_min`` (over ``ANNEAL_SHARE`` of the
  anneal reserve) until the end: the steps left are spent, and the job ends with the best model.

The settings were measured on 10 paired seeds (docs/engine.md, round 10): annealing from the
restored model over the whole reserve kept memorising (digits_mlp 0.981 -> 1.011 of the tuned
cosine), and 2 windows of patience stopped noisy holds at a large LR too early.

Lever ``best-every-stage`` (``EVERY_EXPLOIT``, off) applies the same watch to every exploitation,
and an exploitation that ended memorising hands on its best model. Measured on 10 seeds (round
11): digits_mlp 0.981 -> 0.953 and diabetes 1.023 -> 1.004, but cancer 1.056 -> 1.069 and
digits_cnn 0.976 -> 1.019; a worse worst workload, so it stays off.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from typing import Literal

from lrpilot.protocol import TunerConfig, WindowReport
from lrpilot_service.engine.budget import Budget
from lrpilot_service.engine.finish import planning_limit
from lrpilot_service.engine.segments import lr_at, set_segment
from lrpilot_service.engine.state import State
from lrpilot_service.engine.validation import (
    OVERFIT_TOLERANCE,
    last_validation,
    window_cap,
    worst_validation,
)

#: Off switch (lever ``no-overfit-stop``).
STOP = True
#: A new best must be this share below the last: a slowly improving hold snapshots every few
#: windows, not every window.
NEW_BEST_MARGIN = 0.01
#: Memorising: the training loss this share below its level at the best validation loss ...
TRAIN_GAP = 0.1
#: ... in this many hold windows in a row (lever ``overfit-stop-patience-2``).
PATIENCE = 4
#: The LR falls from the hold's to ``lr_min`` over this share of the anneal reserve (0: at once;
#: lever ``overfit-stop-anneal``).
ANNEAL_SHARE = 0.0
#: Lever ``best-every-stage`` (off): every exploitation snapshots its best validation model, and
#: one that ends memorising rewinds to it before the next stage (or the hold, or the anneal), so a
#: stage that overfitted hands on its best model, not its last.
EVERY_EXPLOIT = False

Verdict = Literal["snapshot", "stop"]


def holding(st: State, config: TunerConfig, budget: Budget) -> bool:
    """Is this the final hold (an exploitation that runs to the anneal reserve) of a val job?"""
    return (
        STOP
        and config.objective == "val"
        and st["phase"] == "exploit"
        and st["stage"] >= 0
        and st["segment"]["end"] == planning_limit(budget)
    )


def tracking(st: State, config: TunerConfig) -> bool:
    """Does this exploitation track its best validation model (EVERY_EXPLOIT; the hold always does)?"""
    return EVERY_EXPLOIT and config.objective == "val" and st["phase"] == "exploit" and st["stage"] >= 0


def rewind(st: State, config: TunerConfig, budget: Budget, losses: Sequence[float]) -> tuple[bool, str]:
    """At an exploitation's end (EVERY_EXPLOIT): go back to its best model if it ended memorising
    (``losses``: the last window's training losses).

    Returns (restore, why). The client's slot holds that best, labelled with this stage, and it
    restores only its own stage's snapshot: so the restore comes with one more window of this
    stage at its LR (the next stage then snapshots as usual), or, at the planning limit, with the
    anneal that follows (still this stage). (False, "") goes on as planned.
    """
    if not EVERY_EXPLOIT:
        return False, ""
    best, last = st["best_val"], st["last_val"]
    st["best_val"] = None
    if best is None or last is None or not _memorising(last, losses, best):
        return False, ""
    st["last_val"] = best[0]
    why = (
        f"validation loss {last:.4g} ended above the exploitation's best {best[0]:.4g} (memorising): "
        "restore the best; "
    )
    step, limit = st["next_step"], planning_limit(budget)
    room = st["tau"] if limit is None else limit - step
    if room <= 0:
        return True, why
    lr = lr_at(st["segment"], step - 1)
    set_segment(st, "exploit", step, step + min(room, window_cap(st, config)), lr)
    return True, why + f"one more window at lr={lr:.3g} from it"


def watch(st: State, report: WindowReport, *, final: bool = True) -> tuple[Verdict | None, str]:
    """Fold an exploit window's validation and training losses in: snapshot a new best, or stop
    (only in the final hold)."""
    value, worst = last_validation(report), worst_validation(report)
    finite = [loss for loss in report.losses if math.isfinite(loss)]
    if value is None or worst is None or not finite:
        return None, ""
    train = statistics.fmean(finite)
    best = st["best_val"]
    bar = min(math.inf if best is None else best[0], st["stage_val"] or math.inf)
    if value < bar * (1 - NEW_BEST_MARGIN):
        st["best_val"] = [value, train, 0]
        return "snapshot", f"validation loss {value:.4g} is this exploitation's best: snapshot"
    if best is None or not final:
        return None, ""
    best[2] = best[2] + 1 if _memorising(worst, finite, best) else 0
    if best[2] < PATIENCE:
        return None, ""
    return "stop", (
        f"validation loss {worst:.4g} is above the hold's best {best[0]:.4g} while the training loss "
        f"fell from {best[1]:.4g} to {train:.4g} (memorising); "
    )


def _memorising(val: float, losses: Sequence[float], best: list[float]) -> bool:
    """The validation loss OVERFIT_TOLERANCE above the best, the training loss TRAIN_GAP below its
    level there (the mean of ``losses``): the model learns its training set, not the task."""
    finite = [loss for loss in losses if math.isfinite(loss)]
    train = statistics.fmean(finite) if finite else math.inf
    return val > best[0] * (1 + OVERFIT_TOLERANCE) and train < best[1] * (1 - TRAIN_GAP)


def stop(st: State, config: TunerConfig, budget: Budget) -> str:
    """Restore the best model; the LR falls to ``lr_min`` (over ANNEAL_SHARE of the reserve) and stays."""
    step, total, lr = st["next_step"], budget.total_steps, st["segment"]["lr"]
    assert total is not None  # a hold exists only in a budgeted job
    steps = min(round(ANNEAL_SHARE * budget.anneal_reserve), total - step)
    set_segment(st, "anneal", step, total, config.lr_min, rise=(steps, lr))
    st["best_val"], st["overfit_windows"], st["recent_grads"] = None, 0, []
    fall = f"lr={config.lr_min:.3g}"
    if steps:
        fall = f"anneal from lr={lr:.3g} over {steps} steps to {fall}"
    return f"restore the best model; {fall} until step {total} (overfit stop)"
