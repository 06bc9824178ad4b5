"""One stage's search: open it, propose tries, score them with the forecaster (pick.py then picks
the LR to exploit).

All search bookkeeping lives in ``state["search"]`` and the stage's summary in
``state["stages"][-1]``, so a stage survives a restart of the service mid-search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lrpilot.protocol import Forecast, TunerConfig
from lrpilot_service.engine import health, river
from lrpilot_service.engine.budget import lr_of, x_of
from lrpilot_service.engine.cooldown import cooled_score, cooled_validation
from lrpilot_service.engine.forecast import LossForecast, forecast_loss
from lrpilot_service.engine.search import propose_next
from lrpilot_service.engine.state import CandidateRecord, SearchKind, SearchState, State, TryState


def begin_search(
    state: State, low: float, high: float, n: int, tau: int, try_steps: int, kind: SearchKind
) -> None:
    """Open a stage's search over [low, high] (log scale) with ``n`` tries of ``try_steps``."""
    state["search"] = {
        "kind": kind,
        "low": low,
        "high": high,
        "n": n,
        "try_steps": try_steps,
        "xs": [],
        "ys": [],
        "sds": [],
        "starts": [],
        "voided": 0,
        "try": None,
    }
    state["stages"].append(
        {
            "stage": state["stage"],
            "tau": tau,
            "search_steps": 0,
            "lr_low": low,
            "lr_high": high,
            "candidates": [],
            "chosen_lr": None,
            "reason": "",
        }
    )


def searching(state: State) -> SearchState:
    """The open search (the planner calls this only in the search phase)."""
    search = state["search"]
    if search is None:
        raise AssertionError("no search is open in this state")
    return search


def running_try(state: State) -> TryState:
    """The try being trained (the planner calls this only while one runs)."""
    current = searching(state)["try"]
    if current is None:
        raise AssertionError("no try is running in this state")
    return current


#: A search stops early once BO expects the next try to beat the best by less than this share of
#: the tries' spread (and at least MIN_TRIES_BEFORE_STOP were scored): the stage spends its tries
#: where the GP is still unsure, not where it is confident.
EARLY_STOP_GAIN = 0.01
MIN_TRIES_BEFORE_STOP = 3


def next_try(state: State, config: TunerConfig, start: int) -> tuple[TryState | None, str]:
    """Choose and open the next try; returns it and the proposal's reason for the decision.

    None (and why) when the search should end here: BO expects nothing more from another try.
    """
    search = searching(state)
    queue = search.get("queue")
    if queue:  # points already chosen (successive halving's finalists) go first, in order
        x, why = queue.pop(0), "a finalist, again at full length"
    else:
        ys, _ = river.charged(state, config, search, search["ys"])
        proposal = propose_next(search["xs"], ys, method=config.search, incumbent=_incumbent(state))
        scored = sum(y is not None for y in search["ys"])
        if proposal.gain is not None and proposal.gain < EARLY_STOP_GAIN and scored >= MIN_TRIES_BEFORE_STOP:
            return None, f"search ends after {len(search['xs'])} tries: the next one is expected to gain " + (
                f"{proposal.gain:.1%} of the tries' spread"
            )
        x, why = proposal.x, f"{proposal.method}: {proposal.reason}"
    lr = lr_of(x, search["low"], search["high"])
    opened: TryState = {"x": x, "lr": lr, "start": start, "losses": [], "grads": [], "vals": {}}
    search["try"] = opened
    return opened, f"try {len(search['xs']) + 1}/{search['n']} lr={lr:.3g} ({why})"


#: A refinement tries the LR being trained first (lever ``incumbent-first``).
INCUMBENT_FIRST = False


def _incumbent(state: State) -> float | None:
    """The point of the LR a refinement starts from, when it lies inside the searched range."""
    search = searching(state)
    if not INCUMBENT_FIRST or search["kind"] != "refine" or state["best_lr"] is None:
        return None
    best = state["best_lr"]
    if not search["low"] <= best <= search["high"] or search["high"] <= search["low"]:
        return None
    return round(x_of(best, search["low"], search["high"]), 3)


def record_try_steps(
    state: State,
    losses: Sequence[float],
    grad_norms: Sequence[float] | None,
    val_losses: dict[int, float] | None,
) -> None:
    """Keep a running try's finite observations (the report may be one of several windows)."""
    current = running_try(state)
    current["losses"].extend(float(v) for v in losses if math.isfinite(v))
    current["grads"].extend(float(g) for g in grad_norms or [] if math.isfinite(g))
    for step, value in (val_losses or {}).items():
        if math.isfinite(value):
            current["vals"][str(step)] = float(value)
    state["stages"][-1]["search_steps"] += len(losses)


def finish_try(state: State, config: TunerConfig, tau: int, steps: int, diverged: bool) -> Forecast:
    """Score the running try, add it to the GP's data and the stage summary."""
    search = searching(state)
    current = running_try(state)
    losses = current["losses"]
    dead = health.dead_gradients(current["grads"], state["grad_norms"]["mean"])
    if diverged or dead is not None:  # a network whose gradients vanished died: as good as diverged
        worst = max(losses) if losses else (state["ref_loss"] or 0.0)
        forecast = Forecast(
            lr=current["lr"], predicted=worst, uncertainty=0.0, method="diverged", steps=steps
        )
        current["note"] = dead or "diverged"
        search["ys"].append(None)
        search["sds"].append(0.0)
    else:
        seg = state["segment"]  # still the try's: hold marks where its cooldown began
        fitted = _score_try(current, config, losses, tau, seg["hold"], seg["end"])
        forecast = Forecast(
            lr=current["lr"],
            predicted=fitted.predicted,
            uncertainty=fitted.uncertainty,
            method=fitted.method,
            steps=steps,
        )
        search["ys"].append(fitted.predicted)
        search["sds"].append(fitted.uncertainty)
        current["note"] = fitted.reason
    search["xs"].append(current["x"])
    if losses:
        search["starts"].append(losses[0])
    record: CandidateRecord = {
        "lr": forecast.lr,
        "predicted": forecast.predicted,
        "uncertainty": forecast.uncertainty,
        "method": forecast.method,
        "steps": forecast.steps,
    }
    state["stages"][-1]["candidates"].append(record)
    return forecast


def _score_try(
    current: TryState, config: TunerConfig, losses: list[float], tau: int, hold: int, end: int
) -> LossForecast:
    """The try's score: its cooled-down loss if it cooled down, else its loss forecast at t = tau;
    on validation losses when the job asks for them."""
    cooled = end - hold
    if cooled > 0:
        if config.objective == "val":
            value = cooled_validation(current["vals"], hold + cooled // 2)
            if value is not None:
                return LossForecast(value, 0.0, "cooldown", "validation loss after the cooldown")
        return cooled_score(losses, cooled)
    if config.objective == "val" and len(current["vals"]) >= 3:
        steps = sorted(int(s) for s in current["vals"])
        spacing = max(1, (steps[-1] - current["start"] + 1) // len(steps))
        series = [current["vals"][str(s)] for s in steps]
        return forecast_loss(series, max(len(series), math.ceil(tau / spacing)))
    fitted = forecast_loss(losses, max(len(losses), tau))
    if config.objective == "val":
        return LossForecast(
            fitted.predicted, fitted.uncertainty, fitted.method, f"{fitted.reason}; no val losses"
        )
    return fitted


def stage_level(state: State, config: TunerConfig) -> tuple[float, float] | None:
    """Where the stage started, in the units its tries are scored in (training or validation loss).

    Training loss: the losses just before the stage, else (a first stage with no history) the
    tries' own first losses, all taken from the snapshot.
    """
    if config.objective == "val":  # a full validation loss has no minibatch noise
        return None if state["stage_val"] is None else (state["stage_val"], 0.0)
    level = state["stage_level"]
    if level is None:
        return health.level_of(searching(state)["starts"])
    return level[0], level[1]


def learned_scores(search: SearchState, level: tuple[float, float] | None) -> list[float | None]:
    """The tries' scores, None for a try that diverged or made no significant progress on ``level``."""
    return [
        None if y is None or health.no_progress(y, sd, level) else y
        for y, sd in zip(search["ys"], search["sds"], strict=True)
    ]


def void_try(state: State) -> str:
    """Drop a try that did not run at its LR (the client replayed fallback steps): not scored.

    It still counts against the stage's tries, so an outage cannot stretch a stage past its budget.
    """
    search = searching(state)
    search["voided"] += 1
    lr = running_try(state)["lr"]
    search["try"] = None
    return f"try at lr={lr:.3g} ran at other LRs (client fallback): not scored"


def tries_used(state: State) -> int:
    search = searching(state)
    return len(search["xs"]) + int(search["voided"])
