"""What a small LR forgoes over the plan: the river law of the job's own history (lever ``no-river``).

Short tries prefer small LRs (short-horizon bias, Wu et al. 2018): over a try a small LR loses
little progress, over the rest of the run it loses much. Along a run the training loss falls
log-linearly in the LR's area ``S1`` (its running sum: the "river" of a river-valley landscape,
Wen et al. 2024, and the ``S1`` term of Tissue et al.'s annealing law)::

    L = c - b ln S1

From the snapshot's area ``S0``, a candidate at ``eta`` gains ``b g(eta)`` more over the plan that
follows a choice (area ``eta P``: held to the anneal, then half the anneal) than over its try (area
``eta t``), with ``g(eta) = ln((S0 + eta P) / (S0 + eta t))``, which grows with ``eta``. So a try
below the stage's pick ``eta*`` (its lowest score) is charged ``b [g(eta*) - g(eta)]``.

Only below the pick: above it the law is not trusted (an area cannot see what a too large LR costs
without diverging, which is why Tissue et al.'s law ranked the benchmark's candidates backwards),
and the try's own evidence rules. So the lowest score stays the lowest: the charge steers BO's
next try away from small LRs, and the GP's posterior mean, which pools neighbouring tries, may
move the pick (on the benchmark it moved 2 of 40 runs, both up, and only where a refinement ran a
fourth try). Only where the data do not memorise (rich_data.does_not_memorise: elsewhere more
training progress is no lower validation loss), and in later stages (the first one's history is a
warmup). Measured on the forecaster benchmark (``python -m bench.forecasters``, 192 cases): median
Spearman against the best checkpoint 0.70 -> 0.80 (docs/engine.md, rounds 20 and 21).

The state follows the model's own line: ``river`` holds its area, the area at the last snapshot
(a restore returns to it), and one (area, mean training loss) point per warmup, exploit or
anneal window; tries are restored and add nothing, unless the winner goes on. A job begun by an
engine before this one has no known line (``river`` is None) and is never charged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lrpilot.protocol import Action, TunerConfig
from lrpilot_service.engine import rich_data
from lrpilot_service.engine.budget import lr_of, resolve
from lrpilot_service.engine.cooldown import cooldown_steps
from lrpilot_service.engine.moments import mean_sd
from lrpilot_service.engine.segments import lr_at
from lrpilot_service.engine.state import SearchState, Segment, State

#: Off: lever ``no-river``.
RIVER = True
#: ``b`` is fitted on this last share of the history (its points; 0.25-1.0 measured alike).
FIT_SHARE = 0.5
#: At most this many history points are kept: past it, the older half is thinned to every other.
MAX_POINTS = 128
#: A fit needs at least this many points.
MIN_POINTS = 3


def river_slope(areas: Sequence[float], losses: Sequence[float]) -> float:
    """``b`` of ``L = c - b ln S1``, least squares on the last FIT_SHARE of the points (areas
    ``S1``, in order); 0 where the loss did not fall or too few points are finite."""
    n = len(losses)
    start = int(n * (1 - FIT_SHARE))
    area = np.asarray(areas[start:], dtype=np.float64)
    y = np.asarray(losses[start:], dtype=np.float64)
    ok = np.isfinite(y) & (area > 0)
    if ok.sum() < MIN_POINTS or np.ptp(np.log(area[ok])) <= 0:
        return 0.0
    with np.errstate(all="ignore"):  # losses near 1e308 overflow the fit: no slope, no charge
        slope = float(np.polyfit(np.log(area[ok]), y[ok], 1)[0])
    return max(-slope, 0.0) if math.isfinite(slope) else 0.0


def charge(
    lrs: Sequence[float], scores: Sequence[float | None], b: float, s0: float, plan: float, tried: float
) -> list[float | None]:
    """``scores`` with each candidate below the pick (the lowest score) charged what it forgoes:
    ``b [g(eta*) - g(eta)]``, ``g(eta) = ln((s0 + eta plan) / (s0 + eta tried))``, where ``plan``
    and ``tried`` are the plan's and the try's lengths in steps at full LR. None stays None."""
    finite = [(y, i) for i, y in enumerate(scores) if y is not None and math.isfinite(y)]
    if b <= 0 or s0 <= 0 or plan <= tried or not finite:
        return list(scores)

    def gain(lr: float) -> float:
        return b * math.log((s0 + lr * plan) / (s0 + lr * tried))

    pick = lrs[min(finite)[1]]
    top = gain(pick)
    return [
        y + top - gain(lr) if y is not None and lr < pick else y for lr, y in zip(lrs, scores, strict=True)
    ]


def full_lr_steps(steps: int, cooldown_share: float) -> float:
    """A cooled try's length in steps at its full LR (its area over its LR): held, then cooled
    linearly to zero over ``cooldown_share`` of its steps (cooldown.cooldown_steps)."""
    return steps - cooldown_steps(steps, cooldown_share) / 2


def _area(segment: Segment, start: int, end: int) -> float:
    """The LR's sum over steps ``[start, end)`` of ``segment``."""
    return sum(lr_at(segment, s) for s in range(start, end))


def note_window(state: State, segment: Segment, start: int, losses: Sequence[float]) -> None:
    """Add a warmup, exploit or anneal window's area and its (area, mean loss) point."""
    river = state["river"]
    if river is None:
        return
    river["area"] += _area(segment, start, start + len(losses))
    finite = [v for v in losses if math.isfinite(v)]
    if finite:  # a plain sum of losses near 1e308 overflows, and the state cannot hold infinity
        river["points"].append([river["area"], mean_sd(finite)[0]])
    if len(river["points"]) > MAX_POINTS:
        half = len(river["points"]) // 2
        river["points"] = river["points"][:half:2] + river["points"][half:]


def note_try(state: State, start: int, end: int) -> None:
    """The winning try goes on into the exploitation: its steps are now the model's."""
    river = state["river"]
    if river is not None:
        river["area"] += _area(state["segment"], start, end)


def follow(state: State, action: Action) -> None:
    """A snapshot marks the area a restore returns to; a restore drops the points past it."""
    river = state["river"]
    if river is None:
        return
    if action == "snapshot":
        river["snapshot"] = river["area"]
    elif action == "restore":
        river["area"] = river["snapshot"]
        river["points"] = [p for p in river["points"] if p[0] <= river["snapshot"] * (1 + 1e-9)]


def charged(
    state: State, config: TunerConfig, search: SearchState, scores: Sequence[float | None]
) -> tuple[list[float | None], str]:
    """A later stage's scores with the tries below the pick charged (see the module), and why."""
    river = state["river"]
    if (
        river is None
        or not RIVER
        or search["kind"] not in ("refine", "all")
        or config.total_steps is None
        or not rich_data.does_not_memorise(state, config)
    ):
        return list(scores), ""
    points = river["points"]
    b = river_slope([p[0] for p in points], [p[1] for p in points])
    plan = config.total_steps - state["next_step"] - resolve(config).anneal_reserve / 2
    tried = full_lr_steps(search["try_steps"], config.try_cooldown)
    lrs = [lr_of(x, search["low"], search["high"]) for x in search["xs"]]
    out = charge(lrs, scores, b, river["snapshot"], plan, tried)
    if out == list(scores):
        return out, ""
    return out, f"; tries below it charged what they forgo over the plan (river slope b={b:.3g})"
