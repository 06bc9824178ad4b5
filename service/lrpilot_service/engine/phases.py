"""The job's opening: the range test from the initial weights, then the warmup into stage 0.

With a budget, a job starts with the range test (``probe``): the engine snapshots the initial
weights, sweeps the LR geometrically toward ``lr_max`` (stopping at the first loss past the guard;
:mod:`lrpilot_service.engine.range_test`), restores the initial weights and warms up linearly to
the centre of the bracket the test found (:mod:`lrpilot_service.engine.probe`). The range test's
steps are charged like any other (about 3% of the budget, and its locating pass); the warmup's are
kept.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lrpilot.protocol import Action, TunerConfig
from lrpilot_service.engine.budget import Budget, lr_of
from lrpilot_service.engine.range_test import begin_probe
from lrpilot_service.engine.segments import set_segment
from lrpilot_service.engine.state import State


def begin(st: State, config: TunerConfig, budget: Budget) -> tuple[Action, str] | None:
    """The first segment of a new job: the range test, or the warmup; None: straight to stage 0."""
    if budget.probe_steps > 0:
        return "snapshot", begin_probe(st, config, budget)
    if budget.warmup_steps > 0 and budget.warmup_lr is not None:
        return "continue", _start_warmup(st, 0, budget.warmup_steps, budget.warmup_lr)
    return None


#: Where in the bracket (0: its low end, 1: its top, on the log scale) the warmup ends.
WARMUP_POINT = 0.5


def warmup(st: State, config: TunerConfig, budget: Budget) -> str:
    """After the range test: restore the initial weights and warm up (at least one step)."""
    target = budget.warmup_lr
    if target is None:
        low, high = st["bracket"] or [config.lr_min, config.lr_max]
        target = lr_of(WARMUP_POINT, low, high)
    return "restore the initial weights; " + _start_warmup(
        st, st["next_step"], max(1, budget.warmup_steps), target
    )


def _start_warmup(st: State, start: int, steps: int, target: float) -> str:
    """Linear warmup: step i of ``steps`` trains at ``target * (i + 1) / steps``."""
    first, last = target / steps, target * (steps + 1) / steps
    set_segment(st, "warmup", start, start + steps, first, last)
    return f"linear warmup to lr={target:.3g} over {steps} steps"


def note_grads(st: State, grad_norms: Sequence[float] | None) -> None:
    """The run's mean gradient norm (outside tries and the range test): dead networks are judged on it."""
    finite = [g for g in grad_norms or [] if math.isfinite(g)]
    summary = st["grad_norms"]
    for norm in finite:  # a running mean cannot overflow where a running sum can ...
        summary["count"] += 1
        n = summary["count"]  # ... nor can each term divided first (norm - mean can: 1e308 - -1e308)
        summary["mean"] += norm / n - summary["mean"] / n
    summary["max"] = max([summary["max"], *finite])
