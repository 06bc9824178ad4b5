"""The end of a budgeted job: hold the chosen LR, then anneal to ``lr_min`` over the reserve.

Warmup-stable-decay shape: once the rest of the budget cannot pay for another stage, the last
chosen LR is held until only the anneal reserve (``anneal_fraction`` of T) is left, and the decay
runs over that reserve along ``anneal`` (linear, half-cosine or WSD's 1-sqrt). A run therefore
never ends inside a search, and no window crosses ``total_steps``. The shape and the reserve were
chosen by measurement across the benchmark's workloads (docs/engine.md).
"""

from __future__ import annotations

from lrpilot.protocol import Action, TunerConfig
from lrpilot_service.engine.budget import Budget
from lrpilot_service.engine.segments import set_segment
from lrpilot_service.engine.state import State


def planning_limit(budget: Budget) -> int | None:
    """The last step a stage may use: the budget less the anneal reserve (None: no budget)."""
    return None if budget.total_steps is None else budget.total_steps - budget.anneal_reserve


def finish(st: State, config: TunerConfig, budget: Budget, fallback_lr: float) -> tuple[Action, str]:
    """Hold the LR until the anneal reserve, then anneal to the end (``anneal: none`` holds it)."""
    step, total = st["next_step"], budget.total_steps
    assert total is not None  # only budgeted jobs finish
    lr = st["best_lr"] if st["best_lr"] is not None else fallback_lr
    limit = planning_limit(budget)
    if config.anneal != "none" and limit is not None and step < limit:
        set_segment(st, "exploit", step, limit, lr)
        st["best_val"] = None  # the hold's best model is measured afresh (overfit_stop.py)
        return (
            "continue",
            f"hold lr={lr:.3g} until step {limit}, then anneal ({config.anneal}) over the last "
            f"{total - limit} steps",
        )
    if config.anneal != "none":
        set_segment(st, "anneal", step, total, lr, config.lr_min, shape=config.anneal)
        return (
            "continue",
            f"anneal ({config.anneal}) from lr={lr:.3g} to {config.lr_min:.3g} over the last "
            f"{total - step} steps",
        )
    set_segment(st, "exploit", step, total, lr)
    return "continue", f"exploit lr={lr:.3g} for the last {total - step} steps"
