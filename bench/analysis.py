"""Turn raw runs into comparable rows: tuned grids, defaults, LR-free methods, tuners.

Why paired per seed: every method saw the same initialisation and batches on a seed, so the
ratio of two methods' losses on the same seed removes most seed-to-seed noise. The reference is
the best tuned cosine (its peak LR chosen by the validation loss IQM over seeds): its final loss
on each seed is that seed's target for steps-to-target. Choosing the grid point on the same
validation loss that is reported flatters the tuned baselines; that bias is against lrpilot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from bench.methods import LR_FREE, TUNERS, RunSpec
from bench.schedules import SCHEDULES
from bench.stats import bootstrap_ci, iqm, median_steps, probability_of_improvement, score, steps_to_target
from bench.workloads import WORKLOADS

Results = dict[RunSpec, dict[str, Any]]


@dataclass
class Row:
    """One method as reported: per-seed runs and scores, and what it cost."""

    label: str
    kind: str  # "tuned" | "default" | "lr-free" | "tuner"
    method: str
    peak_lr: float | None
    runs: list[dict[str, Any]]
    charged_steps: int  # steps charged per seed, tuning included
    at_grid_edge: bool = False
    scores: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scores = [score(r.get("final_val_loss"), r.get("initial_val_loss")) for r in self.runs]

    @property
    def iqm(self) -> float:
        return iqm(self.scores)


@dataclass
class WorkloadAnalysis:
    """Every row of one workload, with the reference (best tuned cosine) singled out."""

    workload: str
    budget: int
    seeds: int
    grid: list[float]
    rows: list[Row]
    cosine: Row
    best: Row
    missing: list[str]

    def row(self, kind: str, method: str) -> Row | None:
        return next((r for r in self.rows if r.kind == kind and r.method == method), None)

    def ratio(self, row: Row, ref: Row | None = None) -> list[float]:
        """Per-seed loss ratio of ``row`` to ``ref`` (default: the tuned cosine); < 1 is better."""
        ref = ref or self.cosine
        return [a / b if b > 0 else math.nan for a, b in zip(row.scores, ref.scores, strict=True)]

    def steps_to_target(self, row: Row) -> list[int | None]:
        """Per seed, consumed steps until the row reaches the tuned cosine's final loss on that seed."""
        return [steps_to_target(r["curve"], t) for r, t in zip(row.runs, self.cosine.scores, strict=True)]

    def summary(self, row: Row) -> dict[str, Any]:
        """Everything the tables print about a row."""
        ratios = self.ratio(row)
        reach = self.steps_to_target(row)
        shares = [r["search_share"] for r in row.runs if r.get("search_share") is not None]
        return {
            "iqm": row.iqm,
            "ci": bootstrap_ci(row.scores),
            "ratio": iqm(ratios),
            "ratio_ci": bootstrap_ci(ratios),
            "p_better": probability_of_improvement(row.scores, self.cosine.scores),
            "steps": median_steps(reach),
            "reached": sum(s is not None for s in reach),
            "wall": iqm([r["wall_s"] for r in row.runs]),
            "step_ms": iqm([r["step_ms"] for r in row.runs]),
            "search_share": iqm(shares) if shares else None,
            "diverged": sum(bool(r.get("diverged")) for r in row.runs),
        }


def analyse(results: Results, workload: str, seeds: int, quick: bool) -> WorkloadAnalysis:
    """Build the rows of one workload from the results (runs that failed are listed as missing)."""
    w = WORKLOADS[workload]
    budget, points = w.budget(quick), w.grid(quick)
    missing: list[str] = []

    def runs(method: str, lr: float | None) -> list[dict[str, Any]] | None:
        found = []
        for seed in range(seeds):
            spec = RunSpec(workload, method, lr, seed, budget)
            r = results.get(spec)
            if r is None or "error" in r:
                missing.append(spec.key())
                return None
            found.append(r)
        return found

    rows: list[Row] = []
    for name in SCHEDULES:
        by_lr = {lr: rs for lr in points if (rs := runs(name, lr)) is not None}
        if not by_lr:
            continue
        cands = [Row(name, "tuned", name, lr, rs, len(points) * budget) for lr, rs in by_lr.items()]
        best = min(cands, key=lambda r: r.iqm)
        best.label = f"{name} (tuned)"
        best.at_grid_edge = best.peak_lr in (points[0], points[-1])
        rows.append(best)
        default = runs(name, w.default_lr)
        if default is not None:
            rows.append(Row(f"{name} @ default", "default", name, w.default_lr, default, budget))
    for name in (*LR_FREE, *TUNERS):
        if (rs := runs(name, None)) is not None:
            kind = "tuner" if name in TUNERS else "lr-free"
            rows.append(Row(name, kind, name, None, rs, budget))
    tuned = [r for r in rows if r.kind == "tuned"]
    if not tuned:
        raise ValueError(f"{workload}: no tuned schedule finished; nothing to compare against")
    cosine = next((r for r in tuned if r.method == "cosine"), tuned[0])
    best = min(tuned, key=lambda r: r.iqm)
    return WorkloadAnalysis(workload, budget, seeds, points, rows, cosine, best, missing)
