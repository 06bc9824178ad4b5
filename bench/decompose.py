"""Where lrpilot's gap to the best tuned schedule goes: the LR it chose, the steps it spent, its shape.

For one workload and seed, let S at peak eta* be the best tuned schedule (its grid optimum), eta the
LR lrpilot held before its anneal, and K the steps of lrpilot's final model (T less everything a
restore discarded: the range test, the tries that lost, rewound stages). Then

    total  = L(lrpilot)     / L(S, eta*, T)     lrpilot against the best tuned schedule
    choice = L(S, eta, T)   / L(S, eta*, T)     the best shape, run at lrpilot's LR
    search = L(S, eta, K)   / L(S, eta, T)      the same, with only the steps lrpilot kept
    shape  = L(lrpilot)     / L(S, eta, K)      what is left: warmup, stages, hold and anneal

and total = choice x search x shape. The two runs of S at lrpilot's LR are ordinary schedule runs
(cached by workload, shape, LR, seed and budget); a ratio below 1 means that part helped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.methods import RunSpec
from bench.stats import iqm, score
from bench.workloads import WORKLOADS

#: lrpilot's LR is read this many steps before its anneal begins (the held LR).
ANNEAL_SHARE = 0.2


def held_lr(run: dict[str, Any]) -> float | None:
    """The LR lrpilot held just before its final anneal, or before an overfit stop dropped it to
    ``lr_min`` (3 significant digits: a cache key)."""
    lrs = run.get("lrs") or []
    if not lrs:
        return None
    total = len(lrs)
    index = max(0, total - math.ceil(ANNEAL_SHARE * total) - 1)
    floor = min(lrs)
    while index > 0 and lrs[index] <= floor:  # an overfit stop held lr_min: the LR held before it
        index -= 1
    lr = lrs[index]
    return float(f"{lr:.3g}") if lr and lr > 0 else None


def extra_specs(workload: str, best_method: str, runs: dict[int, dict[str, Any]]) -> list[RunSpec]:
    """The schedule runs the decomposition needs: per seed, the best shape at lrpilot's LR, with
    the whole budget and with lrpilot's kept steps."""
    budget = WORKLOADS[workload].budget(quick=False)
    specs = []
    for seed, run in runs.items():
        lr = held_lr(run)
        if lr is None:
            continue
        kept = int(run.get("kept_steps") or budget)
        specs.append(RunSpec(workload, best_method, lr, seed, budget))
        if 10 <= kept < budget:
            specs.append(RunSpec(workload, best_method, lr, seed, kept))
    return specs


@dataclass(frozen=True)
class Decomposition:
    total: float
    choice: float
    search: float
    shape: float
    held_lr: float | None
    kept_share: float


def decompose(
    workload: str,
    best_method: str,
    best_scores: list[float],
    runs: dict[int, dict[str, Any]],
    results: dict[RunSpec, dict[str, Any]],
) -> Decomposition | None:
    """The IQM over seeds of each factor (None when a run is missing)."""
    budget = WORKLOADS[workload].budget(quick=False)
    factors: dict[str, list[float]] = {"total": [], "choice": [], "search": [], "shape": []}
    lrs, kept_shares = [], []
    for seed, run in runs.items():
        lr = held_lr(run)
        at_lr = results.get(RunSpec(workload, best_method, lr, seed, budget)) if lr else None
        if lr is None or at_lr is None or seed >= len(best_scores):
            return None
        kept = int(run.get("kept_steps") or budget)
        short = results.get(RunSpec(workload, best_method, lr, seed, kept)) if kept < budget else at_lr
        if short is None:
            return None
        ours = score(run.get("final_val_loss"), run.get("initial_val_loss"))
        full = score(at_lr.get("final_val_loss"), at_lr.get("initial_val_loss"))
        trimmed = score(short.get("final_val_loss"), short.get("initial_val_loss"))
        best = best_scores[seed]
        factors["total"].append(ours / best)
        factors["choice"].append(full / best)
        factors["search"].append(trimmed / full)
        factors["shape"].append(ours / trimmed)
        lrs.append(lr)
        kept_shares.append(kept / budget)
    if not lrs:
        return None
    return Decomposition(
        total=iqm(factors["total"]),
        choice=iqm(factors["choice"]),
        search=iqm(factors["search"]),
        shape=iqm(factors["shape"]),
        held_lr=float(sorted(lrs)[len(lrs) // 2]),
        kept_share=iqm(kept_shares),
    )
