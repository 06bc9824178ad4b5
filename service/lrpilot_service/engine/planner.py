"""The stage state machine: ``advance(config, state, report) -> (state, decision)``.

A budgeted job moves through segments of steps: a range test from the initial weights (then a
restore), a warmup, then per stage a search (tries of tau' steps, each from the stage snapshot)
and an exploitation of tau steps at the chosen LR, then a hold and a final anneal. A segment is
reported in windows of at most ``window_max`` steps; the state records where in the plan the job
stands, so any process can continue it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lrpilot.protocol import Action, Decision, Forecast, Keep, TunerConfig, WindowReport
from lrpilot_service.engine import divergence, health, keep_best, overfit_stop, rich_data, river
from lrpilot_service.engine.budget import Budget, resolve
from lrpilot_service.engine.finish import planning_limit
from lrpilot_service.engine.next_stage import BACKOFF, plan_next
from lrpilot_service.engine.phases import begin, note_grads, warmup
from lrpilot_service.engine.range_test import absorb_probe, probe_window
from lrpilot_service.engine.search_phase import absorb_search
from lrpilot_service.engine.segments import lr_at, set_segment, window_steps
from lrpilot_service.engine.state import (
    Research,
    State,
    copy_state,
    current_decision,
    new_state,
)
from lrpilot_service.engine.validation import (
    eval_steps,
    last_validation,
    overfit_verdict,
    window_cap,
    worst_validation,
)

#: A stage that stalled searches again only if it is among the first this-many stages (None: any).
#: A first stage that stalls chose badly from a fresh model (the LM that stalled at 1.7x the tuned
#: loss); later, a model that stops improving on the training loss has mostly converged at its LR,
#: and searching below it only lowered the LR (measured: docs/engine.md, lever stall-all).
STALL_RESEARCH_STAGES: int | None = 1
#: An exploitation that overfits backs off; with "below" the next stage also searches only below
#: the LR that overfitted (lever ``overfit-below``), as after a stall. "no": the whole bracket.
#: Measured on 10 seeds (round 11): cancer 1.056 -> 1.055, diabetes 1.023 -> 1.028; not kept.
OVERFIT_RESEARCH: Research = "no"


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
        action, reason = started if started is not None else plan_next(fresh, config, budget)
        return _emit(fresh, config, action, reason)
    if report is None:
        raise ReportRejected("a report is required to advance an existing job")
    st = copy_state(state)
    awaited = current_decision(st)
    _check(st, awaited, report)
    st["window"] += 1
    action, reason, forecast = _absorb(st, config, budget, awaited, report)
    keep, kept = keep_best.after_report(st, config, report, action)
    return _emit(st, config, action, reason + kept, forecast, keep)


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
        river.note_window(st, st["segment"], report.start_step, losses)
        note_grads(st, report.grad_norms)
        st["recent_losses"] = divergence.remember(st["recent_losses"], losses)
        st["recent_grads"] = divergence.remember(st["recent_grads"], report.grad_norms)
    elif phase == "search" and st["ref_loss"] is None:
        st["ref_loss"] = divergence.reference_level(losses[: divergence.FIRST_TRY_REFERENCE_STEPS])
    max_loss = divergence.loss_threshold(st["ref_loss"], rich_data.guard_factor(st, config))
    stop = divergence.first_divergence(losses, report.grad_norms, max_loss, awaited.max_grad_norm)
    if phase in ("search", "exploit", "anneal"):  # the range test and the warmup stop on any trip
        stop, st["last_spike"] = divergence.spike_or_divergence(
            losses, report.grad_norms, stop, awaited.max_grad_norm, report.start_step, st["last_spike"]
        )
    st["next_step"] += len(losses)
    step, end = st["next_step"], st["segment"]["end"]

    if phase == "probe":
        going_on, reason = absorb_probe(st, config, budget, losses, stop)
        if going_on is not None:
            return going_on, reason, None
        return "restore", f"{reason}; {warmup(st, config, budget)}", None

    if phase == "search":
        return absorb_search(st, config, budget, awaited, report, stop)

    if stop is not None and phase in ("exploit", "anneal"):
        why = divergence.describe(losses, report.grad_norms, stop, awaited.max_grad_norm)
        return (*_back_off(st, config, budget, f"{why} in {phase}; "), None)
    if phase == "exploit" and st["stage"] >= 0:
        failing = health.dead_gradients(report.grad_norms, st["grad_norms"]["mean"])
        worse = (
            None if rich_data.rising(st, report.start_step) else health.worse_than_start(losses, _level(st))
        )
        if failing is None and worse is not None:
            if not _backed_off(st):
                failing = worse
            else:  # a quarter of the LR did no better: the level, not the LR, was wrong
                level = health.level_of(losses)
                if level is not None:
                    st["stage_level"] = [level[0], level[1]]
        if failing is not None:
            return (*_back_off(st, config, budget, failing, research="below"), None)
    in_hold = overfit_stop.holding(st, config, budget)
    watched = in_hold or overfit_stop.tracking(st, config)
    verdict, why = overfit_stop.watch(st, report, final=in_hold) if watched else (None, "")
    if verdict == "stop" and not rich_data.reaching(st):  # a catapult's validation is no memorising
        return "restore", why + overfit_stop.stop(st, config, budget), None
    if phase == "exploit" and config.objective == "val" and not rich_data.reaching(st):
        overfit = _note_validation(st, report)
        if overfit is not None:
            return (*_back_off(st, config, budget, overfit, research=OVERFIT_RESEARCH), None)
    if verdict == "snapshot" and step < end:
        return "snapshot", why, None
    if phase == "warmup" and config.objective == "val":  # validation.WARMUP_VAL: the first stage's level
        value = last_validation(report)
        st["last_val"] = st["last_val"] if value is None else value
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
            action, reason = plan_next(st, config, budget)
            return action, f"{stall}{reason}", None
    rewound, why = overfit_stop.rewind(st, config, budget, losses) if phase == "exploit" else (False, "")
    if rewound and st["segment"]["start"] == step:  # one more window of this stage, from its best
        return "restore", f"{phase} done; {why}", None
    action, reason = plan_next(st, config, budget)
    if rewound:  # at the planning limit: the anneal (still this stage) starts from the best
        action = "restore" if action == "continue" else action
    return action, f"{phase} done; {why}{reason}", None


def _backed_off(st: State) -> bool:
    """Has this stage already backed off (its segment runs below the LR the stage chose)?"""
    chosen = st["stages"][-1]["chosen_lr"] if st["stages"] else None
    return chosen is not None and st["segment"]["lr"] < chosen * (1 - 1e-9)


def _stall_researches(stage: int) -> bool:
    return STALL_RESEARCH_STAGES is None or stage < STALL_RESEARCH_STAGES


def _level(st: State) -> tuple[float, float] | None:
    level = st["stage_level"]
    return None if level is None else (level[0], level[1])


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
    return overfit_verdict(st, reference, worst)


def _back_off(
    st: State, config: TunerConfig, budget: Budget, why: str, *, research: Research = "no"
) -> tuple[Action, str]:
    """Divergence, a stall or overfitting while exploiting or annealing: rewind, at a quarter LR.

    Restoring also serves as the next stage's snapshot (the model is then exactly the snapshot),
    so a divergence at the end of a segment restores and moves on. ``research``: the stage's
    choice itself failed, so the next stage searches its whole range again, below this LR.
    """
    seg, step = st["segment"], st["next_step"]
    proven = rich_data.proven(st)
    if proven is not None:  # a reach above the tries failed: hold the largest try, search no more
        lr = st["best_lr"] = proven
        research = "no"
    else:
        lr = max(config.lr_min, lr_at(seg, step) / BACKOFF)
        st["best_lr"] = max(config.lr_min, (st["best_lr"] or lr) / BACKOFF)
    if research != "no":
        st["research"] = research
    rewind: Action = "restore" if st["stage"] >= 0 else "continue"
    st["overfit_windows"] = 0
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
        action, reason = plan_next(st, config, budget)
        return (action if action == "done" else rewind), why + reason
    if st["phase"] == "anneal":
        set_segment(st, "anneal", step, end, lr, config.lr_min, shape=seg["shape"])
        return rewind, why + f"{rewind} and anneal from lr={lr:.3g}"
    set_segment(st, "exploit", step, end, lr)
    return rewind, why + f"{rewind} and exploit at lr={lr:.3g}"


def _emit(
    st: State,
    config: TunerConfig,
    action: Action,
    reason: str,
    forecast: Forecast | None = None,
    keep: Keep | None = None,
) -> tuple[State, Decision]:
    """Write the decision for the awaited window into the state and return both."""
    river.follow(st, action)
    seg, step, phase = st["segment"], st["next_step"], st["phase"]
    steps = 0 if phase == "done" else window_steps(seg, step, window_cap(st, config))
    cap = probe_window(st) if phase == "probe" else None
    if cap is not None:
        steps = min(steps, cap)
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
        keep=keep,
        max_loss=divergence.loss_threshold(st["ref_loss"], rich_data.guard_factor(st, config))
        if guarded
        else None,
        max_grad_norm=divergence.grad_threshold(st["recent_grads"])
        if guarded and not rich_data.reaching(st)
        else None,
    )
    st["decision"] = decision.model_dump(mode="json")
    return st, decision
