"""The next stage: whether the budget pays for it, how long it is, where and how it searches.

A stage is a search (tries of tau' steps, each from the stage's snapshot) and an exploitation of
tau steps at the chosen LR. ``plan_next`` opens one when the budget pays for its search and its
exploitation, else hands the rest of the budget to the finish (hold, then anneal); the helpers
here build each try's segment (rise, hold, cooldown) and the LR a job falls back to.
"""

from __future__ import annotations

import math

from lrpilot.protocol import Action, TunerConfig
from lrpilot_service.engine import divergence, halving, health
from lrpilot_service.engine.budget import MIN_TRY_STEPS, Budget, refine_range
from lrpilot_service.engine.cooldown import cooldown_steps
from lrpilot_service.engine.finish import finish, planning_limit
from lrpilot_service.engine.segments import lr_at, set_segment
from lrpilot_service.engine.stage import begin_search, next_try, searching
from lrpilot_service.engine.state import SearchKind, SearchState, State

#: Divergence, a stall or overfitting in exploitation: restore the stage snapshot, LR divided by this.
BACKOFF = 4.0
#: The fewest tries a first stage is cut to when the budget is small.
MIN_FIRST_TRIES = 3


def plan_next(st: State, config: TunerConfig, budget: Budget) -> tuple[Action, str]:
    """Start the next stage if the budget pays for its search and exploitation; else finish."""
    step, total = st["next_step"], budget.total_steps
    if total is not None and step >= total:
        set_segment(st, "done", step, step, st["segment"]["lr_end"])
        return "done", f"budget of {total} steps used"
    k = st["stage"] + 1
    planned_out = config.search_stages is not None and k >= config.search_stages
    if k > 0 and planned_out and st["research"] == "no" and total is not None:  # failed: re-search
        return finish(st, config, budget, fallback_lr(st, config, budget))
    tau = budget.tau if k == 0 else budget.next_tau(st["tau"])
    full = k == 0 or st["best_lr"] is None or st["research"] != "no"  # nothing to refine: search all
    n = config.candidates if full else budget.refine_candidates
    limit = planning_limit(budget)
    if limit is not None:
        room = limit - step
        if n * budget.try_steps(tau, config.tau_ratio) + tau > room:
            if k > 0:
                return finish(st, config, budget, fallback_lr(st, config, budget))
            # A small budget: fewer tries first (search at most half the room), then a shorter
            # stage; only when even MIN_FIRST_TRIES cannot fit is the LR left unsearched.
            n = min(n, max(MIN_FIRST_TRIES, room // (2 * MIN_TRY_STEPS)))
            if room < (n + 1) * MIN_TRY_STEPS:
                return finish(st, config, budget, fallback_lr(st, config, budget))
            tau = _largest_tau(room, n, budget, config.tau_ratio)
    st["stage"], st["tau"] = k, tau
    st["ref_loss"] = divergence.reference_level(st["recent_losses"])
    level = health.level_of(st["recent_losses"])
    st["stage_level"] = None if level is None else [level[0], level[1]]
    st["stage_val"] = st["last_val"]
    st["stage_val_at_snapshot"] = st["stage_val"] is not None
    st["overfit_windows"] = 0
    st["best_val"] = None  # a stage's best model is its own (overfit_stop.EVERY_EXPLOIT)
    best = st["best_lr"]
    if n == 0 and best is not None:
        set_segment(st, "exploit", step, step + tau, best)
        return "snapshot", f"stage {k}: exploit lr={best:.3g} for {tau} steps (no search)"
    low, high = _search_range(st, config, full)
    kind: SearchKind = "first" if k == 0 else ("refine" if st["research"] == "no" else st["research"])
    st["research"] = "no"
    try_steps = budget.try_steps(tau, config.tau_ratio)
    from_lr = lr_at(st["segment"], max(st["segment"]["start"], step - 1))  # the snapshot's last LR
    try_steps, final_steps = halving.lengths(n, try_steps)
    begin_search(st, low, high, n, tau, try_steps, kind)
    searching(st)["from_lr"] = from_lr
    if final_steps is not None:
        searching(st)["full_steps"] = final_steps
    opened, reason = next_try(st, config, step)
    assert opened is not None  # the first try of a stage is never stopped (nothing scored yet)
    try_segment(st, config, step, try_steps, opened["lr"])
    return (
        "snapshot",
        f"stage {k} (tau={tau}, {n} tries of {try_steps} steps in [{low:.3g}, {high:.3g}]): {reason}",
    )


def try_segment(st: State, config: TunerConfig, start: int, steps: int, lr: float) -> None:
    """A try: (``try_ramp``) a rise from the snapshot's LR, ``lr`` held, then (``try_cooldown``)
    annealed linearly toward zero over its last steps."""
    search = searching(st)
    cooled = cooldown_steps(steps, config.try_cooldown)
    set_segment(
        st,
        "search",
        start,
        start + steps,
        lr,
        config.lr_min if cooled else lr,
        hold=start + steps - cooled,
        rise=rise(config, search, search.get("from_lr"), lr),
    )


#: Which segments rise when ``try_ramp`` is set: the tries, the exploitation after them (levers).
RISE_TRIES, RISE_EXPLOITATION = True, True
#: ... and only when their LR is at least this many times the snapshot's (lever ``ramp-jumps``):
#: a jump up spikes an SGD-momentum or adaptive optimiser; a step down does not.
RISE_MIN_JUMP = 0.0


def rise(
    config: TunerConfig,
    search: SearchState,
    from_lr: float | None,
    to_lr: float,
    *,
    exploit: bool = False,
) -> tuple[int, float] | None:
    """A try's (and its exploitation's) rise: ``try_ramp`` of a try's steps, from ``from_lr``."""
    steps = round(config.try_ramp * search["try_steps"])
    wanted = RISE_EXPLOITATION if exploit else RISE_TRIES
    if from_lr is None or steps <= 0 or not wanted or to_lr < RISE_MIN_JUMP * from_lr:
        return None
    return steps, from_lr


def _search_range(st: State, config: TunerConfig, full: bool) -> tuple[float, float]:
    """The first stage's range (the range test's bracket), a re-search's, or a refinement's."""
    low, high = (st["bracket"][0], st["bracket"][1]) if st["bracket"] else (config.lr_min, config.lr_max)
    best = st["best_lr"]
    if not full and best is not None and config.refine == "narrow":
        return refine_range(config, best)
    if st["research"] == "below" and best is not None:  # below the LR that failed (already backed off)
        high = min(high, best * BACKOFF / 2)
        low = min(low, high / 10)
    return max(config.lr_min, low), max(min(high, config.lr_max), config.lr_min * 1.01)


def fallback_lr(st: State, config: TunerConfig, budget: Budget) -> float:
    """The LR a job that never searched holds: warmup's, else the bracket's centre."""
    if budget.warmup_lr is not None:
        return budget.warmup_lr
    low, high = st["bracket"] or [config.lr_min, config.lr_max]
    return math.sqrt(low * high)


def _largest_tau(room: int, n: int, budget: Budget, ratio: float) -> int:
    """The longest first stage that still fits in ``room`` steps with its search."""
    tau = max(1, math.floor(room / (1 + n * ratio)))
    while tau > 1 and n * budget.try_steps(tau, ratio) + tau > room:
        tau -= 1
    return tau
