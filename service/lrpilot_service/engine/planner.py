"""The stage state machine: ``advance(config, state, report) -> (state, decision)``.

A job moves through segments of steps: warmup, then per stage a search (tries of tau' steps,
each from the stage snapshot) and an exploitation of tau steps at the chosen LR, then a final
anneal when the budget is known. A segment is reported in windows of at most ``window_max``
steps; the state records where in the plan the job stands, so any process can continue it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lrpilot.protocol import Action, Decision, Forecast, Phase, TunerConfig, WindowReport
from lrpilot_service.engine import divergence
from lrpilot_service.engine.budget import MIN_TRY_STEPS, Budget, refine_range, resolve
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
from lrpilot_service.engine.state import Segment, State, copy_state, current_decision, new_state
from lrpilot_service.engine.validation import eval_steps, last_validation, overfitting

#: Divergence in exploitation or anneal: restore the stage snapshot and divide the LR by this.
BACKOFF = 4.0
#: The fewest tries a first stage is cut to when the budget is small.
MIN_FIRST_TRIES = 3


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
        if budget.warmup_steps > 0:
            first = budget.warmup_lr / budget.warmup_steps
            last = budget.warmup_lr * (budget.warmup_steps + 1) / budget.warmup_steps
            _set_segment(fresh, "warmup", 0, budget.warmup_steps, first, last)
            return _emit(fresh, config, "continue", f"linear warmup to lr={budget.warmup_lr:.3g}")
        action, reason = _plan_next(fresh, config, budget)
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
    _note_grads(st, report.grad_norms)
    if phase != "search":
        st["recent_losses"] = divergence.remember(st["recent_losses"], losses)
        st["recent_grads"] = divergence.remember(st["recent_grads"], report.grad_norms)
    elif st["ref_loss"] is None:
        st["ref_loss"] = divergence.reference_level(losses[: divergence.FIRST_TRY_REFERENCE_STEPS])
    max_loss = divergence.loss_threshold(st["ref_loss"], config.divergence_factor)
    stop = divergence.first_divergence(losses, report.grad_norms, max_loss, awaited.max_grad_norm)
    st["next_step"] += len(losses)
    step, end = st["next_step"], st["segment"]["end"]

    if phase == "search":
        record_try_steps(st, losses, report.val_losses)
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
        if tries_used(st) < search["n"]:
            opened, reason = next_try(st, config, step)
            _set_segment(st, "search", step, step + search["try_steps"], opened["lr"])
            return "restore", f"{note}; {reason}", forecast
        lr, keep_going, reason = conclude(st, config, fallback_lr=st["best_lr"] or budget.warmup_lr)
        already = step - started if keep_going else 0
        _set_segment(st, "exploit", step, step + max(1, st["tau"] - already), lr)
        action: Action = "continue" if keep_going else "restore"
        return action, f"{note}; {reason}; exploit {st['segment']['end'] - step} steps", forecast

    if stop is not None and phase in ("exploit", "anneal"):
        return (*_back_off(st, config, budget, f"loss {losses[stop]:.4g} diverged in {phase}; "), None)
    if phase == "exploit" and config.objective == "val":
        overfit = _note_validation(st, report)
        if overfit is not None:
            return (*_back_off(st, config, budget, overfit), None)
    if step < end:
        return ("evaluate" if eval_steps(st, config) else "continue"), f"{phase} continues", None
    action, reason = _plan_next(st, config, budget)
    return action, f"{phase} done; {reason}", None


def _off_plan(awaited: Decision, report: WindowReport) -> bool:
    """Did the client train this window at other LRs than planned (fallback replay)?"""
    if report.lrs is None:
        return False
    return any(
        not math.isclose(lr, awaited.lr_at(report.start_step + i), rel_tol=1e-6, abs_tol=1e-12)
        for i, lr in enumerate(report.lrs)
    )


def _back_off(st: State, config: TunerConfig, budget: Budget, why: str) -> tuple[Action, str]:
    """Divergence (or overfitting) while exploiting or annealing: rewind, at a quarter of the LR.

    Restoring also serves as the next stage's snapshot (the model is then exactly the snapshot),
    so a divergence at the end of a segment restores and moves on.
    """
    seg, step = st["segment"], st["next_step"]
    lr = max(config.lr_min, _lr_at(seg, step) / BACKOFF)
    st["best_lr"] = max(config.lr_min, (st["best_lr"] or lr) / BACKOFF)
    rewind: Action = "restore" if st["stage"] >= 0 else "continue"
    if rewind == "restore" and not st["stage_val_at_snapshot"]:
        st["stage_val"] = None  # the model goes back to the snapshot: re-measure its level
    limit = _planning_limit(budget)
    if st["phase"] == "anneal":
        end = seg["end"]
    else:
        end = min(step + st["tau"], limit) if limit is not None else step + st["tau"]
    if end <= step:
        action, reason = _plan_next(st, config, budget)
        return (action if action == "done" else rewind), why + reason
    if st["phase"] == "anneal":
        _set_segment(st, "anneal", step, end, lr, config.lr_min)
        return rewind, why + f"{rewind} and anneal from lr={lr:.3g}"
    _set_segment(st, "exploit", step, end, lr)
    return rewind, why + f"{rewind} and exploit at lr={lr:.3g}"


def _planning_limit(budget: Budget) -> int | None:
    return None if budget.total_steps is None else budget.total_steps - budget.anneal_reserve


def _plan_next(st: State, config: TunerConfig, budget: Budget) -> tuple[Action, str]:
    """Start the next stage if the budget pays for its search and exploitation; else finish."""
    step, total = st["next_step"], budget.total_steps
    if total is not None and step >= total:
        _set_segment(st, "done", step, step, st["segment"]["lr_end"])
        return "done", f"budget of {total} steps used"
    k = st["stage"] + 1
    tau = budget.tau if k == 0 else budget.next_tau(st["tau"])
    full = k == 0 or st["best_lr"] is None  # nothing to refine yet: search the whole range
    n = config.candidates if full else budget.refine_candidates
    limit = _planning_limit(budget)
    if limit is not None:
        room = limit - step
        if n * budget.try_steps(tau, config.tau_ratio) + tau > room:
            if not full:
                return _finish(st, config, budget)
            # A small budget: fewer tries first (search at most half the room), then a shorter
            # stage; only when even MIN_FIRST_TRIES cannot fit is the LR left unsearched.
            n = min(n, max(MIN_FIRST_TRIES, room // (2 * MIN_TRY_STEPS)))
            if room < (n + 1) * MIN_TRY_STEPS:
                return _finish(st, config, budget)
            tau = _largest_tau(room, n, budget, config.tau_ratio)
    st["stage"], st["tau"] = k, tau
    st["ref_loss"] = divergence.reference_level(st["recent_losses"])
    st["stage_val"] = st["last_val"]
    st["stage_val_at_snapshot"] = st["stage_val"] is not None
    best = st["best_lr"]
    if n == 0 and best is not None:
        _set_segment(st, "exploit", step, step + tau, best)
        return "snapshot", f"stage {k}: exploit lr={best:.3g} for {tau} steps (no search)"
    if full or best is None:
        low, high = config.lr_min, config.lr_max
    else:
        low, high = refine_range(config, best)
    try_steps = budget.try_steps(tau, config.tau_ratio)
    begin_search(st, low, high, n, tau, try_steps)
    opened, reason = next_try(st, config, step)
    _set_segment(st, "search", step, step + try_steps, opened["lr"])
    return (
        "snapshot",
        f"stage {k} (tau={tau}, {n} tries of {try_steps} steps in [{low:.3g}, {high:.3g}]): {reason}",
    )


def _largest_tau(room: int, n: int, budget: Budget, ratio: float) -> int:
    """The longest first stage that still fits in ``room`` steps with its search."""
    tau = max(1, math.floor(room / (1 + n * ratio)))
    while tau > 1 and n * budget.try_steps(tau, ratio) + tau > room:
        tau -= 1
    return tau


def _finish(st: State, config: TunerConfig, budget: Budget) -> tuple[Action, str]:
    """The rest of the budget cannot pay for another stage: hold the LR, then anneal to the end.

    Warmup-stable-decay shape: the chosen LR is held until only the anneal reserve is left, and
    the decay runs over that reserve. Measured on the benchmark workloads, holding beat a long
    linear decay from the last stage (docs/engine.md). With ``anneal: none`` the LR is held.
    """
    step, total = st["next_step"], budget.total_steps
    assert total is not None  # only budgeted jobs finish
    lr = st["best_lr"] if st["best_lr"] is not None else budget.warmup_lr
    limit = _planning_limit(budget)
    if config.anneal == "linear" and limit is not None and step < limit:
        _set_segment(st, "exploit", step, limit, lr)
        return (
            "continue",
            f"hold lr={lr:.3g} until step {limit}, then anneal over the last {total - limit} steps",
        )
    if config.anneal == "linear":
        _set_segment(st, "anneal", step, total, lr, config.lr_min)
        return (
            "continue",
            f"anneal linearly from lr={lr:.3g} to {config.lr_min:.3g} over the last {total - step} steps",
        )
    _set_segment(st, "exploit", step, total, lr)
    return "continue", f"exploit lr={lr:.3g} for the last {total - step} steps"


def _note_validation(st: State, report: WindowReport) -> str | None:
    """Record an exploit window's validation loss; say why the stage overfits, if it does."""
    value = last_validation(report)
    if value is None:
        return None
    st["last_val"] = value
    reference = st["stage_val"]
    if reference is None:  # the stage's first measurement is its reference
        st["stage_val"] = value
        return None
    return overfitting(reference, value)


def _set_segment(
    st: State, phase: Phase, start: int, end: int, lr: float, lr_end: float | None = None
) -> None:
    st["phase"] = phase
    st["segment"] = {"start": start, "end": end, "lr": lr, "lr_end": lr if lr_end is None else lr_end}


def _lr_at(seg: Segment, step: int) -> float:
    span = seg["end"] - seg["start"]
    if span <= 0 or seg["lr_end"] == seg["lr"]:
        return seg["lr"]
    return seg["lr"] + (seg["lr_end"] - seg["lr"]) * (step - seg["start"]) / span


def _note_grads(st: State, grad_norms: list[float] | None) -> None:
    finite = [g for g in grad_norms or [] if math.isfinite(g)]
    summary = st["grad_norms"]
    for norm in finite:  # a running mean cannot overflow where a running sum can
        summary["count"] += 1
        summary["mean"] += (norm - summary["mean"]) / summary["count"]
    summary["max"] = max([summary["max"], *finite])


def _outcome(forecast: Forecast) -> str:
    if forecast.method == "diverged":
        return f"diverged after {forecast.steps} steps"
    return f"forecast {forecast.predicted:.4g} ± {forecast.uncertainty:.2g} ({forecast.method})"


def _emit(
    st: State, config: TunerConfig, action: Action, reason: str, forecast: Forecast | None = None
) -> tuple[State, Decision]:
    """Write the decision for the awaited window into the state and return both."""
    seg, step, phase = st["segment"], st["next_step"], st["phase"]
    steps = 0 if phase == "done" else min(seg["end"] - step, config.window_max)
    search = st["search"]
    guarded = phase in ("search", "exploit", "anneal")
    eval_at = eval_steps(st, config)
    if action == "continue" and eval_at:
        action = "evaluate"
    decision = Decision(
        window=st["window"],
        start_step=step,
        steps=steps,
        lr=_lr_at(seg, step),
        lr_end=_lr_at(seg, step + steps),
        action=action,
        phase=phase,
        stage=st["stage"],
        candidate=len(search["xs"]) if phase == "search" and search else None,
        reason=reason,
        forecast=forecast,
        eval_at=eval_at,
        max_loss=divergence.loss_threshold(st["ref_loss"], config.divergence_factor) if guarded else None,
        max_grad_norm=divergence.grad_threshold(st["recent_grads"]) if guarded else None,
    )
    st["decision"] = decision.model_dump(mode="json")
    return st, decision
