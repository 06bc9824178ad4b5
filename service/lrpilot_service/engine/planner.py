"""The stage state machine: ``advance(config, state, report) -> (state, decision)``.

A budgeted job moves through segments of steps: a range test from the initial weights (then a
restore), a warmup, then per stage a search (tries of tau' steps, each from the stage snapshot)
and an exploitation of tau steps at the chosen LR, then a hold and a final anneal. A segment is
reported in windows of at most ``window_max`` steps; the state records where in the plan the job
stands, so any process can continue it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lrpilot.protocol import Action, Decision, Forecast, TunerConfig, WindowReport
from lrpilot_service.engine import divergence, health
from lrpilot_service.engine.budget import MIN_TRY_STEPS, Budget, refine_range, resolve
from lrpilot_service.engine.cooldown import cooldown_steps
from lrpilot_service.engine.finish import finish, planning_limit
from lrpilot_service.engine.phases import absorb_probe, begin, note_grads, warmup
from lrpilot_service.engine.segments import lr_at, set_segment, window_steps
from lrpilot_service.engine.stage import (
    begin_search,
    conclude,
    finish_try,
    next_try,
    record_try_steps,
    running_try,
    searching,
    tries_used,
    void_try,
)
from lrpilot_service.engine.state import (
    Research,
    SearchKind,
    SearchState,
    State,
    copy_state,
    current_decision,
    new_state,
)
from lrpilot_service.engine.validation import (
    eval_steps,
    last_validation,
    overfitting,
    window_cap,
    worst_validation,
)

#: Divergence, a stall or overfitting in exploitation: restore the stage snapshot, LR divided by this.
BACKOFF = 4.0
#: The fewest tries a first stage is cut to when the budget is small.
MIN_FIRST_TRIES = 3
#: The range test's first window: its losses set the reference the guard is measured against.
PROBE_REFERENCE_STEPS = 4
#: A stage that stalled searches again only if it is among the first this-many stages (None: any).
#: A first stage that stalls chose badly from a fresh model (the LM that stalled at 1.7x the tuned
#: loss); later, a model that stops improving on the training loss has mostly converged at its LR,
#: and searching below it only lowered the LR (measured: docs/engine.md, lever stall-all).
STALL_RESEARCH_STAGES: int | None = 1


class ReportRejected(ValueError):
    """A report that cannot belong to the window the job awaits; the message says what to fix."""


def advance(
    config: TunerConfig, state: Mapping[str, Any] | None, report: WindowReport | None
) -> tuple[State, Decision]:
    """Take the awaited window's report and decide the next window. Pure and deterministic.

    ``state`` is the JSON a previous call returned (as stored); it is copied, never mutated.
    """
    budget = resolve(config)
    if state is None:
        if report is not None:
            raise ReportRejected("a new job has no window to report yet: create it first")
        fresh = new_state(budget.tau)
        started = begin(fresh, config, budget)
        action, reason = started if started is not None else _plan_next(fresh, config, budget)
        return _emit(fresh, config, action, reason)
    if report is None:
        raise ReportRejected("a report is required to advance an existing job")
    st = copy_state(state)
    awaited = current_decision(st)
    _check(st, awaited, report)
    st["window"] += 1
    action, reason, forecast = _absorb(st, config, budget, awaited, report)
    return _emit(st, config, action, reason, forecast)


def _check(st: State, awaited: Decision, report: WindowReport) -> None:
    if awaited.action == "done":
        raise ReportRejected(
            f"job is done (window {awaited.window} was its last decision); nothing to report"
        )
    first, last = st["next_step"], st["next_step"] + awaited.steps - 1
    if report.start_step != first:
        raise ReportRejected(
            f"window {awaited.window} starts at step {first}, but the report starts at step "
            f"{report.start_step}: send the losses of steps {first}..{last}"
        )
    if not report.losses:
        raise ReportRejected(f"the report for window {awaited.window} has no losses: send at least one")
    if len(report.losses) > awaited.steps:
        raise ReportRejected(
            f"window {awaited.window} planned {awaited.steps} steps but the report has {len(report.losses)} "
            "losses: send at most the planned number and post the rest with the next window"
        )
    end = report.start_step + len(report.losses)
    for step in report.val_losses or {}:
        if not report.start_step <= step < end:
            raise ReportRejected(
                f"val_losses has step {step}, outside this report's steps {report.start_step}..{end - 1}"
            )


def _absorb(
    st: State, config: TunerConfig, budget: Budget, awaited: Decision, report: WindowReport
) -> tuple[Action, str, Forecast | None]:
    """Fold one report into the state; return the next action, why, and a finished try's forecast."""
    losses = report.losses
    phase = st["phase"]
    if phase in ("warmup", "exploit", "anneal"):
        note_grads(st, report.grad_norms)
        st["recent_losses"] = divergence.remember(st["recent_losses"], losses)
        st["recent_grads"] = divergence.remember(st["recent_grads"], report.grad_norms)
    elif phase == "search" and st["ref_loss"] is None:
        st["ref_loss"] = divergence.reference_level(losses[: divergence.FIRST_TRY_REFERENCE_STEPS])
    max_loss = divergence.loss_threshold(st["ref_loss"], config.divergence_factor)
    stop = divergence.first_divergence(losses, report.grad_norms, max_loss, awaited.max_grad_norm)
    st["next_step"] += len(losses)
    step, end = st["next_step"], st["segment"]["end"]

    if phase == "probe":
        done, reason = absorb_probe(st, config, budget, losses, stop)
        if not done:
            return "continue", reason, None
        return "restore", f"{reason}; {warmup(st, config, budget)}", None

    if phase == "search":
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
                _try_segment(st, config, step, search["try_steps"], opened["lr"])
                return "restore", f"{note}; {why}", forecast
            stopped.append(why)
        fallback = st["best_lr"] or _fallback_lr(st, config, budget)
        _rebase_level(st, health.level_of(search["starts"]))
        lr, keep_going, concluded = conclude(st, config, fallback_lr=fallback)
        reason = "; ".join([*stopped, concluded])
        already = step - started if keep_going else 0
        # the exploitation rises from the LR the model was last trained at: the try's, if it goes on
        trained_at = lr_at(st["segment"], max(started, step - 1)) if keep_going else search.get("from_lr")
        rise = _rise(config, search, trained_at, exploit=True)
        set_segment(st, "exploit", step, step + max(1, st["tau"] - already), lr, rise=rise)
        action: Action = "continue" if keep_going else "restore"
        return action, f"{note}; {reason}; exploit {st['segment']['end'] - step} steps", forecast

    if stop is not None and phase in ("exploit", "anneal"):
        why = divergence.describe(losses, report.grad_norms, stop, awaited.max_grad_norm)
        return (*_back_off(st, config, budget, f"{why} in {phase}; "), None)
    if phase == "exploit" and st["stage"] >= 0:
        failing = health.dead_gradients(report.grad_norms, st["grad_norms"]["mean"])
        worse = health.worse_than_start(losses, _level(st))
        if failing is None and worse is not None:
            if not _backed_off(st):
                failing = worse
            else:  # a quarter of the LR did no better: the level, not the LR, was wrong
                level = health.level_of(losses)
                if level is not None:
                    st["stage_level"] = [level[0], level[1]]
        if failing is not None:
            return (*_back_off(st, config, budget, failing, research="below"), None)
    if phase == "exploit" and config.objective == "val":
        overfit = _note_validation(st, report)
        if overfit is not None:
            return (*_back_off(st, config, budget, overfit), None)
    if step < end:
        return ("evaluate" if eval_steps(st, config) else "continue"), f"{phase} continues", None
    if phase == "exploit" and st["stage"] >= 0 and _stall_researches(st["stage"]):
        stall = health.stalled(st["recent_losses"], _level(st))
        if (
            stall is not None
        ):  # no harm done: keep the steps, search again (below the LR, if it learnt before)
            st["research"] = "all" if st["stage"] == 0 else "below"
            if st["research"] == "below" and st["best_lr"] is not None:  # as _back_off marks a failed LR
                st["best_lr"] = max(config.lr_min, st["best_lr"] / BACKOFF)
            action, reason = _plan_next(st, config, budget)
            return action, f"{stall}{reason}", None
    action, reason = _plan_next(st, config, budget)
    return action, f"{phase} done; {reason}", None


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


def _backed_off(st: State) -> bool:
    """Has this stage already backed off (its segment runs below the LR the stage chose)?"""
    chosen = st["stages"][-1]["chosen_lr"] if st["stages"] else None
    return chosen is not None and st["segment"]["lr"] < chosen * (1 - 1e-9)


def _stall_researches(stage: int) -> bool:
    return STALL_RESEARCH_STAGES is None or stage < STALL_RESEARCH_STAGES


def _level(st: State) -> tuple[float, float] | None:
    level = st["stage_level"]
    return None if level is None else (level[0], level[1])


def _off_plan(awaited: Decision, report: WindowReport) -> bool:
    """Did the client train this window at other LRs than planned (fallback replay)?"""
    if report.lrs is None:
        return False
    return any(
        not math.isclose(lr, awaited.lr_at(report.start_step + i), rel_tol=1e-6, abs_tol=1e-12)
        for i, lr in enumerate(report.lrs)
    )


def _note_validation(st: State, report: WindowReport) -> str | None:
    """Record an exploit window's validation loss; say why the stage overfits, if it does."""
    value, worst = last_validation(report), worst_validation(report)
    if value is None or worst is None:
        return None
    st["last_val"] = value
    reference = st["stage_val"]
    if reference is None:  # the stage's first measurement is its reference
        st["stage_val"] = value
        return None
    return overfitting(reference, worst)


def _back_off(
    st: State, config: TunerConfig, budget: Budget, why: str, *, research: Research = "no"
) -> tuple[Action, str]:
    """Divergence, a stall or overfitting while exploiting or annealing: rewind, at a quarter LR.

    Restoring also serves as the next stage's snapshot (the model is then exactly the snapshot),
    so a divergence at the end of a segment restores and moves on. ``research``: the stage's
    choice itself failed, so the next stage searches its whole range again, below this LR.
    """
    seg, step = st["segment"], st["next_step"]
    lr = max(config.lr_min, lr_at(seg, step) / BACKOFF)
    st["best_lr"] = max(config.lr_min, (st["best_lr"] or lr) / BACKOFF)
    if research != "no":
        st["research"] = research
    rewind: Action = "restore" if st["stage"] >= 0 else "continue"
    if rewind == "restore":
        # The model goes back to the snapshot: what the failed stretch showed is not its history
        # (a dead network's vanishing gradients would make every healthy gradient an "explosion").
        st["recent_grads"] = []
        if not st["stage_val_at_snapshot"]:
            st["stage_val"] = None  # re-measure its validation level
    limit = planning_limit(budget)
    if st["phase"] == "anneal":
        end = seg["end"]
    else:
        end = min(step + st["tau"], limit) if limit is not None else step + st["tau"]
    if end <= step:
        action, reason = _plan_next(st, config, budget)
        return (action if action == "done" else rewind), why + reason
    if st["phase"] == "anneal":
        set_segment(st, "anneal", step, end, lr, config.lr_min, shape=seg["shape"])
        return rewind, why + f"{rewind} and anneal from lr={lr:.3g}"
    set_segment(st, "exploit", step, end, lr)
    return rewind, why + f"{rewind} and exploit at lr={lr:.3g}"


def _plan_next(st: State, config: TunerConfig, budget: Budget) -> tuple[Action, str]:
    """Start the next stage if the budget pays for its search and exploitation; else finish."""
    step, total = st["next_step"], budget.total_steps
    if total is not None and step >= total:
        set_segment(st, "done", step, step, st["segment"]["lr_end"])
        return "done", f"budget of {total} steps used"
    k = st["stage"] + 1
    planned_out = config.search_stages is not None and k >= config.search_stages
    if k > 0 and planned_out and st["research"] == "no" and total is not None:  # failed: re-search
        return finish(st, config, budget, _fallback_lr(st, config, budget))
    tau = budget.tau if k == 0 else budget.next_tau(st["tau"])
    full = k == 0 or st["best_lr"] is None or st["research"] != "no"  # nothing to refine: search all
    n = config.candidates if full else budget.refine_candidates
    limit = planning_limit(budget)
    if limit is not None:
        room = limit - step
        if n * budget.try_steps(tau, config.tau_ratio) + tau > room:
            if k > 0:
                return finish(st, config, budget, _fallback_lr(st, config, budget))
            # A small budget: fewer tries first (search at most half the room), then a shorter
            # stage; only when even MIN_FIRST_TRIES cannot fit is the LR left unsearched.
            n = min(n, max(MIN_FIRST_TRIES, room // (2 * MIN_TRY_STEPS)))
            if room < (n + 1) * MIN_TRY_STEPS:
                return finish(st, config, budget, _fallback_lr(st, config, budget))
            tau = _largest_tau(room, n, budget, config.tau_ratio)
    st["stage"], st["tau"] = k, tau
    st["ref_loss"] = divergence.reference_level(st["recent_losses"])
    level = health.level_of(st["recent_losses"])
    st["stage_level"] = None if level is None else [level[0], level[1]]
    st["stage_val"] = st["last_val"]
    st["stage_val_at_snapshot"] = st["stage_val"] is not None
    best = st["best_lr"]
    if n == 0 and best is not None:
        set_segment(st, "exploit", step, step + tau, best)
        return "snapshot", f"stage {k}: exploit lr={best:.3g} for {tau} steps (no search)"
    low, high = _search_range(st, config, full)
    kind: SearchKind = "first" if k == 0 else ("refine" if st["research"] == "no" else st["research"])
    st["research"] = "no"
    try_steps = budget.try_steps(tau, config.tau_ratio)
    from_lr = lr_at(st["segment"], max(st["segment"]["start"], step - 1))  # the snapshot's last LR
    begin_search(st, low, high, n, tau, try_steps, kind)
    searching(st)["from_lr"] = from_lr
    opened, reason = next_try(st, config, step)
    assert opened is not None  # the first try of a stage is never stopped (nothing scored yet)
    _try_segment(st, config, step, try_steps, opened["lr"])
    return (
        "snapshot",
        f"stage {k} (tau={tau}, {n} tries of {try_steps} steps in [{low:.3g}, {high:.3g}]): {reason}",
    )


def _try_segment(st: State, config: TunerConfig, start: int, steps: int, lr: float) -> None:
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
        rise=_rise(config, search, search.get("from_lr")),
    )


#: Which segments rise when ``try_ramp`` is set: the tries, the exploitation after them (levers).
RISE_TRIES, RISE_EXPLOITATION = True, True


def _rise(
    config: TunerConfig, search: SearchState, from_lr: float | None, *, exploit: bool = False
) -> tuple[int, float] | None:
    """A try's (and its exploitation's) rise: ``try_ramp`` of a try's steps, from ``from_lr``."""
    steps = round(config.try_ramp * search["try_steps"])
    wanted = RISE_EXPLOITATION if exploit else RISE_TRIES
    return None if from_lr is None or steps <= 0 or not wanted else (steps, from_lr)


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


def _fallback_lr(st: State, config: TunerConfig, budget: Budget) -> float:
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


def _outcome(forecast: Forecast) -> str:
    if forecast.method == "diverged":
        return f"diverged after {forecast.steps} steps"
    return f"forecast {forecast.predicted:.4g} ± {forecast.uncertainty:.2g} ({forecast.method})"


def _emit(
    st: State, config: TunerConfig, action: Action, reason: str, forecast: Forecast | None = None
) -> tuple[State, Decision]:
    """Write the decision for the awaited window into the state and return both."""
    seg, step, phase = st["segment"], st["next_step"], st["phase"]
    steps = 0 if phase == "done" else window_steps(seg, step, window_cap(st, config))
    if phase == "probe" and st["ref_loss"] is None:  # a short first window sets the guard's reference
        steps = min(steps, PROBE_REFERENCE_STEPS)
    search = st["search"]
    guarded = phase in ("probe", "search", "exploit", "anneal")
    eval_at = eval_steps(st, config)
    if action == "continue" and eval_at:
        action = "evaluate"
    decision = Decision(
        window=st["window"],
        start_step=step,
        steps=steps,
        lr=lr_at(seg, step),
        lr_end=lr_at(seg, step + steps),
        action=action,
        phase=phase,
        stage=st["stage"],
        ramp=seg["ramp"],
        candidate=len(search["xs"]) if phase == "search" and search else None,
        reason=reason,
        forecast=forecast,
        eval_at=eval_at,
        max_loss=divergence.loss_threshold(st["ref_loss"], config.divergence_factor) if guarded else None,
        max_grad_norm=divergence.grad_threshold(st["recent_grads"]) if guarded else None,
    )
    st["decision"] = decision.model_dump(mode="json")
    return st, decision
