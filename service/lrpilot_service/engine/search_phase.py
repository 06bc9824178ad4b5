"""A try's report, folded into the stage's search: go on, open the next try, or conclude.

The search phase is where a stage spends its tries: a window either continues the running try,
finishes it (scored by stage.py, or voided when the client trained other LRs), and then opens the
next try, a successive-halving finalist, or concludes the stage (pick.py) and plans its
exploitation. Split from planner.py, which routes every phase's report here or elsewhere.
"""

from __future__ import annotations

import math

from lrpilot.protocol import Action, Decision, Forecast, TunerConfig, WindowReport
from lrpilot_service.engine import halving, health, rich_data, river
from lrpilot_service.engine.budget import Budget, sized_tau
from lrpilot_service.engine.next_stage import fallback_lr, rise, try_segment
from lrpilot_service.engine.pick import conclude
from lrpilot_service.engine.segments import lr_at, set_segment
from lrpilot_service.engine.stage import (
    finish_try,
    next_try,
    record_try_steps,
    running_try,
    searching,
    tries_used,
    void_try,
)
from lrpilot_service.engine.state import State


def absorb_search(
    st: State,
    config: TunerConfig,
    budget: Budget,
    awaited: Decision,
    report: WindowReport,
    stop: int | None,
) -> tuple[Action, str, Forecast | None]:
    """Fold a search window's report (``stop``: where a divergence check tripped, if it did)."""
    losses = report.losses
    step, end = st["next_step"], st["segment"]["end"]
    record_try_steps(st, losses, report.grad_norms, report.val_losses)
    off_plan = _off_plan(awaited, report)
    if stop is None and step < end and not off_plan:
        return "continue", f"try continues at lr={awaited.lr:.3g}", None
    started = running_try(st)["start"]
    forecast: Forecast | None = None
    if off_plan:
        note = void_try(st)
    else:
        forecast = finish_try(st, config, st["tau"], step - started, diverged=stop is not None)
        note = f"try at lr={forecast.lr:.3g} {_outcome(forecast)}"
    search = searching(st)
    stopped: list[str] = []
    if tries_used(st) < search["n"]:
        opened, why = next_try(st, config, step)
        if opened is not None:
            try_segment(st, config, step, search["try_steps"], opened["lr"])
            return "restore", f"{note}; {why}", forecast
        stopped.append(why)
    final = halving.begin_final_round(st, config)
    if final is not None:
        opened, why = next_try(st, config, step)
        assert opened is not None  # a queued finalist always opens
        try_segment(st, config, step, search["try_steps"], opened["lr"])
        return "restore", "; ".join([note, *stopped, final, why]), forecast
    fallback = st["best_lr"] or fallback_lr(st, config, budget)
    _rebase_level(st, health.level_of(search["starts"]))
    lr, keep_going, concluded = conclude(st, config, fallback_lr=fallback)
    reason = "; ".join([*stopped, concluded])
    already = step - started if keep_going else 0
    # the exploitation rises from the LR the model was last trained at: the try's, if it goes on
    trained_at = lr_at(st["segment"], max(started, step - 1)) if keep_going else search.get("from_lr")
    if keep_going:
        river.note_try(st, started, step)
    reach = rich_data.reach_rise(st, lr, trained_at)
    rising = rise(config, search, trained_at, lr, exploit=True) or reach
    length = sized_tau(st["tau"], lr, search.get("from_lr"))
    set_segment(st, "exploit", step, step + max(1, length - already), lr, rise=rising)
    action: Action = "continue" if keep_going else "restore"
    return action, f"{note}; {reason}; exploit {st['segment']['end'] - step} steps", forecast


def _rebase_level(st: State, snapshot_level: tuple[float, float] | None) -> None:
    """Judge the tries and the exploitation against the snapshot's own loss when that reads higher.

    The stage's level comes from the training losses just before the snapshot; each try's first
    loss is the snapshot itself on a fresh batch. When the tries started higher, the pre-stage
    level read low (noise, or a model still bouncing at a large LR), and every exploitation window
    would look "worse than start": the higher of the two is the fair reference.
    """
    level = st["stage_level"]
    if snapshot_level is None or level is None or snapshot_level[0] <= level[0]:
        return
    st["stage_level"] = [snapshot_level[0], max(snapshot_level[1], level[1])]


def _off_plan(awaited: Decision, report: WindowReport) -> bool:
    """Did the client train this window at other LRs than planned (fallback replay)?"""
    if report.lrs is None:
        return False
    return any(
        not math.isclose(lr, awaited.lr_at(report.start_step + i), rel_tol=1e-6, abs_tol=1e-12)
        for i, lr in enumerate(report.lrs)
    )


def _outcome(forecast: Forecast) -> str:
    if forecast.method == "diverged":
        return f"diverged after {forecast.steps} steps"
    return f"forecast {forecast.predicted:.4g} ± {forecast.uncertainty:.2g} ({forecast.method})"
