"""One stage's search: propose tries, score them with the forecaster, pick the LR to exploit.

All search bookkeeping lives in ``state["search"]`` and the stage's summary in
``state["stages"][-1]``, so a stage survives a restart of the service mid-search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lrpilot.protocol import Forecast, TunerConfig
from lrpilot_service.engine.budget import lr_of
from lrpilot_service.engine.forecast import LossForecast, forecast_loss
from lrpilot_service.engine.search import choose_best, propose_next
from lrpilot_service.engine.state import CandidateRecord, SearchState, State, TryState

#: Points tried per search are spread by the stage so seeds differ between stages and tries.
SEED_STRIDE = 1_000


def begin_search(state: State, low: float, high: float, n: int, tau: int, try_steps: int) -> None:
    """Open a stage's search over [low, high] (log scale) with ``n`` tries of ``try_steps``."""
    state["search"] = {
        "low": low,
        "high": high,
        "n": n,
        "try_steps": try_steps,
        "xs": [],
        "ys": [],
        "sds": [],
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


def next_try(state: State, config: TunerConfig, start: int) -> tuple[TryState, str]:
    """Choose and open the next try; returns it and the proposal's reason for the decision."""
    search = searching(state)
    seed = config.seed * SEED_STRIDE + state["stage"] * 64 + len(search["xs"])
    proposal = propose_next(search["xs"], search["ys"], method=config.search, seed=seed)
    lr = lr_of(proposal.x, search["low"], search["high"])
    opened: TryState = {"x": proposal.x, "lr": lr, "start": start, "losses": [], "vals": {}}
    search["try"] = opened
    reason = f"try {len(search['xs']) + 1}/{search['n']} lr={lr:.3g} ({proposal.method}: {proposal.reason})"
    return opened, reason


def record_try_steps(state: State, losses: Sequence[float], val_losses: dict[int, float] | None) -> None:
    """Keep a running try's finite observations (the report may be one of several windows)."""
    current = running_try(state)
    current["losses"].extend(float(v) for v in losses if math.isfinite(v))
    for step, value in (val_losses or {}).items():
        if math.isfinite(value):
            current["vals"][str(step)] = float(value)
    state["stages"][-1]["search_steps"] += len(losses)


def finish_try(state: State, config: TunerConfig, tau: int, steps: int, diverged: bool) -> Forecast:
    """Score the running try, add it to the GP's data and the stage summary."""
    search = searching(state)
    current = running_try(state)
    losses = current["losses"]
    if diverged:
        worst = max(losses) if losses else (state["ref_loss"] or 0.0)
        forecast = Forecast(
            lr=current["lr"], predicted=worst, uncertainty=0.0, method="diverged", steps=steps
        )
        search["ys"].append(None)
        search["sds"].append(0.0)
    else:
        fitted = _forecast_try(current, config, losses, tau)
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
    record: CandidateRecord = {
        "lr": forecast.lr,
        "predicted": forecast.predicted,
        "uncertainty": forecast.uncertainty,
        "method": forecast.method,
        "steps": forecast.steps,
    }
    state["stages"][-1]["candidates"].append(record)
    return forecast


def _forecast_try(current: TryState, config: TunerConfig, losses: list[float], tau: int) -> LossForecast:
    """Forecast the try's loss at t = tau, on validation losses when the job asks for them."""
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


def conclude(state: State, config: TunerConfig, fallback_lr: float) -> tuple[float, bool, str]:
    """Pick the stage's LR by the GP posterior mean; say whether the last try can simply go on.

    Returns (lr, continue_last_try, reason). Continuing is free when the winner is the try that
    just ran to completion: its model is already trained at that LR, so no restore is needed.
    With no scored try at all (every one voided), the stage keeps ``fallback_lr``.
    """
    search = searching(state)
    summary = state["stages"][-1]
    if not search["xs"]:
        lr, keep_going, why = fallback_lr, False, "no try could be scored: keeping the last LR"
    else:
        seed = config.seed * SEED_STRIDE + state["stage"] * 64 + 63
        choice = choose_best(search["xs"], search["ys"], seed=seed, sds=search["sds"])
        lr = lr_of(choice.x, search["low"], search["high"])
        last = search["try"]
        keep_going = last is not None and last["x"] == choice.x and search["ys"][-1] is not None
        why = choice.reason
    summary["chosen_lr"] = lr
    summary["reason"] = why
    state["best_lr"] = lr
    state["search"] = None
    return lr, keep_going, f"chose lr={lr:.3g}: {why}"
