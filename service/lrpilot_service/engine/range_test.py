"""Driving the LR range test: a quick pass that finds where the loss moves, then the test proper.

A sweep at one pace over a wide range spends most of its steps where nothing happens: on every
benchmark workload the loss does not move below lr 1e-4, three of the six decades of [1e-6, 1],
and the decades that matter get 5 steps each at T < 2,000 (the digits CNN's loss moves over lr
0.004-0.06: 6 steps of a 30-step sweep). Its own 3-decade range gets 10 a decade, and the wide
range cost it 14% against that (docs/engine.md, round 17).

So the test first *locates* (round 18): from the initial weights the LR rises at
``probe.LOCATE_PER_DECADE`` steps a decade, in windows of ``probe.CHECK_STEPS``, until the loss
has fallen (:func:`probe.started_to_fall`). Then the initial weights are restored and the test
proper sweeps its ``budget.probe_steps`` from ``probe.BACKOFF_DECADES`` below the window where the
loss fell, up to ``lr_max``: the resolution a workload's own range would give, whatever the width
of the range. Where the pass reaches ``lr_max`` without the loss falling, or diverges first, the
test proper sweeps the whole range at one pace, as before round 18: with SGD the loss falls by the
LR times the steps taken at it, and at 2.5 steps a decade the teacher CNN's fell too little before
``lr_max`` (13-15 steps lost).

The pass runs only where one pace would be coarse: fewer than ``probe.LOCATE_BELOW`` (10) steps a
decade, which on the wide range is T < 2,000. Where the sweep already has 10 a decade it adds
steps and no resolution, and measured on 10 paired seeds it cost the byte-level LM (T = 2,000)
3.4% and the teacher CNN 1.2% (lever ``locate-always``; docs/engine.md, round 18).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lrpilot.protocol import Action, TunerConfig
from lrpilot_service.engine import divergence, probe
from lrpilot_service.engine.budget import Budget
from lrpilot_service.engine.moments import mean_sd
from lrpilot_service.engine.segments import lr_at, set_segment
from lrpilot_service.engine.state import State

#: The range test's first window is this short: its losses set the guard's reference.
REFERENCE_STEPS = 4


def begin_probe(st: State, config: TunerConfig, budget: Budget) -> str:
    """Open the range test from the initial weights (the caller snapshots them); return why."""
    pace = budget.probe_steps / math.log10(config.lr_max / config.lr_min)
    locating = pace < probe.LOCATE_BELOW
    st["probe"] = {"losses": [], "lrs": [], "diverged_at": None, "locating": locating}
    if locating:
        steps = probe.sweep_steps(config.lr_min, config.lr_max, probe.LOCATE_PER_DECADE)
        set_segment(st, "probe", 0, steps, config.lr_min, config.lr_max, ramp="geometric")
        return (
            f"range test: locating where the loss moves, lr from {config.lr_min:.3g} toward "
            f"{config.lr_max:.3g} at {probe.LOCATE_PER_DECADE:g} steps a decade, from the initial weights"
        )
    return _sweep(st, config, budget, 0, config.lr_min)


def _sweep(st: State, config: TunerConfig, budget: Budget, start: int, low: float) -> str:
    """The test proper: ``budget.probe_steps`` from ``low`` geometrically toward ``lr_max``."""
    p = budget.probe_steps
    set_segment(st, "probe", start, start + p, low, config.lr_max, ramp="geometric")
    return f"range test: lr from {low:.3g} toward {config.lr_max:.3g} (geometric) over {p} steps"


def probe_window(st: State) -> int | None:
    """The longest range-test window now: short at first (the guard's reference), then
    ``probe.CHECK_STEPS`` while locating; None: no cap."""
    if st["ref_loss"] is None:
        return REFERENCE_STEPS
    if st["probe"] is not None and st["probe"]["locating"]:
        return probe.CHECK_STEPS
    return None


def absorb_probe(
    st: State, config: TunerConfig, budget: Budget, losses: Sequence[float], stop: int | None
) -> tuple[Action | None, str]:
    """Record a range-test window; return the action that goes on with the test and why, or
    (None, why) when the test is over and ``st["bracket"]`` holds what it found."""
    sweep = st["probe"]
    assert sweep is not None  # the probe phase opens it
    if st["ref_loss"] is None:  # the first window sets the guard's reference and the untrained level
        st["ref_loss"] = divergence.reference_level(losses)
        finite = [v for v in losses if math.isfinite(v)]
        st["initial_level"] = mean_sd(finite)[0] if finite else None
        stop = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
    kept = losses if stop is None else losses[:stop]
    first_step = st["next_step"] - len(losses)
    sweep["losses"].extend(float(v) for v in kept)
    sweep["lrs"].extend(lr_at(st["segment"], first_step + i) for i in range(len(kept)))
    if sweep["locating"]:
        if probe.started_to_fall(sweep["losses"]):
            return "restore", _located(st, config, budget)
        if stop is not None or st["next_step"] >= st["segment"]["end"]:
            return "restore", _not_located(st, config, budget, stop is not None)
    if stop is not None:
        sweep["diverged_at"] = len(sweep["losses"])
        sweep["lrs"].append(lr_at(st["segment"], first_step + stop))
    elif st["next_step"] < st["segment"]["end"]:
        return "continue", f"range test continues ({len(sweep['losses'])} steps)"
    found = probe.bracket(
        sweep["losses"],
        budget.probe_steps,
        config.lr_min,
        config.lr_max,
        diverged_at=sweep["diverged_at"],
        lrs=sweep["lrs"],
    )
    st["bracket"] = [found.low, found.high]
    st["ref_loss"] = None  # the first stage measures its own reference from the warmup
    return None, f"{found.reason}: first stage searches [{found.low:.3g}, {found.high:.3g}]"


def _located(st: State, config: TunerConfig, budget: Budget) -> str:
    """The loss has fallen: sweep from ``BACKOFF_DECADES`` below the window that showed it."""
    sweep = st["probe"]
    assert sweep is not None
    fell_at = sweep["lrs"][-probe.CHECK_STEPS]
    low = max(config.lr_min, fell_at / 10**probe.BACKOFF_DECADES)
    return _restart(st, config, budget, low, f"the loss fell from lr {fell_at:.3g}")


def _not_located(st: State, config: TunerConfig, budget: Budget, diverged: bool) -> str:
    """The pass ended (or diverged) before the loss fell: the loss moves only with more steps at
    each LR (plain SGD and SGD with momentum fall by the LR times the steps taken at it), so the
    test proper sweeps the whole range at one pace."""
    why = "diverged" if diverged else f"reached lr {config.lr_max:.3g}"
    return _restart(st, config, budget, config.lr_min, f"the locating pass {why} before the loss fell")


def _restart(st: State, config: TunerConfig, budget: Budget, low: float, why: str) -> str:
    """End the locating pass: drop its losses and start the test proper from ``low``, from the
    initial weights (the caller's action is a restore)."""
    sweep = st["probe"]
    assert sweep is not None
    sweep["losses"], sweep["lrs"], sweep["locating"] = [], [], False
    return f"{why}; restore the initial weights; " + _sweep(st, config, budget, st["next_step"], low)
