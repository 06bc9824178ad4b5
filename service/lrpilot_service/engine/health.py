"""Training that stopped learning without a NaN: stalled tries, stages that made things worse.

A diverging LR announces itself (NaN, an exploding loss); a too-large LR often does not. A CNN at
the top of a wide range dies quietly (its loss climbs back to the untrained model's level and stays
there), a language model stalls far above where a smaller LR would take it. Both looked like
"ties" to a rule that compares short tries only with each other. Here every try and every
exploitation window is also compared with the loss level the stage started from: a try that ends
no lower than that level made no progress (a failure, not a tie), and an exploitation window
clearly above it means the stage is making the model worse (rewind it, like a divergence).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from lrpilot_service.engine.moments import mean_sd

#: Losses before a stage that set its starting level.
LEVEL_STEPS = 16
#: A try must end this many standard errors below the stage's starting level to count as progress.
PROGRESS_SES = 2.0
#: An exploitation window this far above the stage's starting level (relative) ...
WORSE_SHARE = 0.02
#: ... and this many standard errors of the difference (window mean less level) above it.
WORSE_SES = 3.0
#: Windows shorter than this are too noisy to judge.
MIN_JUDGED_STEPS = 8
#: Gradient norms below this share of the run's mean norm: the network is dead.
DEAD_GRAD_SHARE = 1e-3


def level_of(recent: Sequence[float]) -> tuple[float, float] | None:
    """(mean, sd) of the last finite losses before a stage: where it starts, and how noisy."""
    finite = [v for v in recent[-LEVEL_STEPS:] if math.isfinite(v)]
    if len(finite) < 2:
        return None
    return mean_sd(finite)


def no_progress(predicted: float, uncertainty: float, level: tuple[float, float] | None) -> bool:
    """A try that did not end significantly below the level its stage started from learned nothing.

    Significantly: by more than PROGRESS_SES standard errors of the difference (the level's mean
    over LEVEL_STEPS losses, and the try's own score), so flat tries cannot win by noise.
    """
    if level is None or not math.isfinite(predicted):
        return False
    mean, sd = level
    error = math.hypot(sd / math.sqrt(LEVEL_STEPS), uncertainty if math.isfinite(uncertainty) else 0.0)
    return predicted >= mean - PROGRESS_SES * error


def worse_than_start(losses: Sequence[float], level: tuple[float, float] | None) -> str | None:
    """Why an exploitation window shows the stage making the loss worse, or None."""
    finite = [v for v in losses if math.isfinite(v)]
    if level is None or len(finite) < MIN_JUDGED_STEPS:
        return None
    mean, sd = level
    window, window_sd = mean_sd(finite)
    # the standard error of the difference: the level is itself a mean of LEVEL_STEPS noisy losses
    error = math.hypot(sd / math.sqrt(LEVEL_STEPS), window_sd / math.sqrt(len(finite)))
    margin = max(WORSE_SHARE * abs(mean), WORSE_SES * error)
    if window > mean + margin:
        return f"loss {window:.4g} is above the stage's starting level {mean:.4g} (stalled or rising); "
    return None


def stalled(recent: Sequence[float], level: tuple[float, float] | None) -> str | None:
    """Why a stage that has run its course made no significant progress from its start, or None.

    A too-large LR often stalls rather than diverges (a language model far above the loss a smaller
    LR reaches). Its tries looked fine (the easy part of the loss goes fastest at a large LR), its
    exploitation does not rise, it just does not fall: compared with the stage's starting level,
    the last LEVEL_STEPS losses are not PROGRESS_SES standard errors lower.
    """
    now = level_of(recent)
    if now is None or level is None or len(recent) < LEVEL_STEPS:
        return None
    if no_progress(now[0], now[1] / math.sqrt(LEVEL_STEPS), level):
        return f"loss {now[0]:.4g} made no significant progress from the stage's start {level[0]:.4g}; "
    return None


def dead_gradients(grad_norms: Sequence[float] | None, run_mean: float) -> str | None:
    """Why the gradients say the network died (all but vanished), or None."""
    finite = [g for g in grad_norms or [] if math.isfinite(g)]
    if len(finite) < MIN_JUDGED_STEPS or run_mean <= 0:
        return None
    window = statistics.median(finite)
    if window < DEAD_GRAD_SHARE * run_mean:
        return f"gradient norms collapsed to {window:.3g} (run mean {run_mean:.3g}); "
    return None
