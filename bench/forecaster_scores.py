"""The forecaster benchmark's scores and summary: scorers derived from a case's tries, and how
well every scorer ranks the candidates (``python -m bench.forecasters`` runs the cases).

A case is a branch point and five candidate LRs; each candidate row holds every scorer's value
and the truths (each continuation's final validation loss and best checkpoint, and the same for
the replicate continuation on other batches).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from bench.workloads import WORKLOADS
from lrpilot_service.engine import rich_data, river

TRY_LENGTHS = (10, 20, 40)
#: The branch's history: a linear warmup over this share of the budget, then the grid centre held.
WARMUP_SHARE = 0.05
COOLDOWN_SHARE = 0.3  # the engine's default try_cooldown
#: The plan that follows a choice: hold, then a linear anneal to zero over this share of the budget.
ANNEAL_SHARE = 0.2
#: Each candidate's plan is trained twice from the branch: on the case's batches (the truth the
#: scorers rank) and on another shuffle (the replicate). How well the replicate ranks the truth is
#: the ceiling set by batch noise alone: a scorer cannot be expected to rank a realised final loss
#: better than the same plan on other batches does.
REPLICATE = "replicate"
#: Suffix of a continuation's best checkpoint ("final-best", "replicate-best"): the truth for a
#: job that ends with its best validation model (``keep_best``).
BEST = "-best"
#: The cooled validation loss extrapolated along the try's length to the steps left (horizon_score).
HORIZON = "horizon-val"
#: The cooled validation score read where the engine's rich-data raise would take the pick (rich_scores).
RICH = "rich-val"
#: RICH, plus the progress a candidate below the pick forgoes over the plan (area_scores): the
#: engine's ranking since river.py.
AREA = "area-val"


SCORERS = (
    *(
        f"{name}@{steps}"
        for name in ("exp", "mean10", "cooldown", "val", "cooldown-val", "ramped")
        for steps in TRY_LENGTHS
    ),
    HORIZON,
    RICH,
    AREA,
    f"law@{max(TRY_LENGTHS)}",
    f"law-lr@{max(TRY_LENGTHS)}",
)


def horizon_score(row: dict[str, float], horizon: int) -> float:
    """The cooled try's validation loss, extrapolated along the try's length to the steps left.

    A try of t steps whose last 30% anneals is a small copy of the plan that follows a choice
    (hold, then anneal), so the plan's final loss is the cooled loss at t = ``horizon``. Across
    the tries of 10, 20 and 40 steps the cooled loss is fitted as ``c + m * ln(t)`` (least
    squares) and read at the horizon: an LR whose cooled loss still falls fast with t ranks above
    one that reached its level early (short-horizon bias, Wu et al. 2018).
    """
    values = [row[f"cooldown-val@{t}"] for t in TRY_LENGTHS]
    if not all(math.isfinite(v) for v in values):
        return math.inf
    slope, intercept = np.polyfit(np.log(TRY_LENGTHS), values, 1)
    return float(intercept + slope * math.log(horizon))


def _does_not_memorise(branch: dict[str, float]) -> bool:
    """The engine's rich-data rule at the branch: validation at most RICH_GAP times training."""
    gap = rich_data.RICH_GAP
    return gap is not None and branch["val"] <= gap * branch["train"]


def rich_scores(rows: list[dict[str, float]], branch: dict[str, float]) -> list[float]:
    """The cooled try's validation score as the engine acts on it: where the branch's validation
    loss is at most ``RICH_GAP`` times its training loss (data that does not memorise), a later
    stage holds ``RICH_FACTOR`` times its pick (rich_data.py), so the plan at LR x follows the try
    at x / RICH_FACTOR: its score is read there, by linear interpolation in log-LR between the
    candidates (the lowest candidate's below them). Elsewhere it is the try's own score.
    """
    scores = [row[f"cooldown-val@{max(TRY_LENGTHS)}"] for row in rows]
    if not _does_not_memorise(branch):
        return scores
    logs = np.log10([row["lr"] for row in rows])
    finite = np.isfinite(scores)
    if finite.sum() < 2:
        return scores
    at = logs - math.log10(rich_data.RICH_FACTOR)
    read = np.interp(at, logs[finite], np.asarray(scores)[finite])
    return [float(v) if ok else math.inf for v, ok in zip(read, finite, strict=True)]


def branch_lrs(centre: float, total: int, steps: int) -> list[float]:
    """The LRs of a branch's history: a linear warmup to ``centre`` over WARMUP_SHARE, then held."""
    warm = max(1, round(WARMUP_SHARE * total))
    return [centre * min(1.0, (s + 1) / warm) for s in range(steps)]


def area_scores(rows: list[dict[str, float]], result: dict[str, Any]) -> list[float]:
    """RICH, with each candidate below the pick charged what it forgoes over the plan that follows:
    the engine's river charge (lrpilot_service/engine/river.py, where the law is explained), from
    the branch's history. The branch's area ``S0`` and its training losses give the slope ``b``;
    the plan is held to the anneal, then half the anneal (ANNEAL_SHARE); the try held, then half its
    cooldown. Like the engine, only where data do not memorise (the branch's validation loss at most
    RICH_GAP times its training loss).
    """
    scores = [row[RICH] for row in rows]
    finite = [i for i, v in enumerate(scores) if math.isfinite(v)]
    if not _does_not_memorise(result["branch"]) or not finite:
        return scores
    case = result["case"]
    w = WORKLOADS[case["workload"]]
    total = w.total_steps
    t0 = round(case["branch_share"] * total)
    lrs = branch_lrs(w.grid_centre, total, t0)
    b = river.river_slope(np.cumsum(lrs).tolist(), result["history"])
    try_area = river.full_lr_steps(max(TRY_LENGTHS), COOLDOWN_SHARE)
    plan_area = total - t0 - ANNEAL_SHARE * total / 2
    charged = river.charge([row["lr"] for row in rows], scores, b, sum(lrs), plan_area, try_area)
    return [math.inf if v is None else v for v in charged]


def with_derived_scores(result: dict[str, Any]) -> dict[str, Any]:
    """Add the scores derived from a case's tries: HORIZON; RICH where the branch was recorded; AREA
    where its history was too."""
    case = result["case"]
    total = WORKLOADS[case["workload"]].total_steps
    horizon = total - round(case["branch_share"] * total)
    rows = result["rows"]
    rich = rich_scores(rows, result["branch"]) if "branch" in result else [math.nan] * len(rows)
    for row, value in zip(rows, rich, strict=True):
        row[HORIZON] = horizon_score(row, horizon)
        row[RICH] = value
    area = area_scores(rows, result) if "history" in result else [math.nan] * len(rows)
    for row, value in zip(rows, area, strict=True):
        row[AREA] = value
    return result


#: The issue's target for a scorer's rank correlation.
TARGET = 0.8


def _on_target(rhos: list[float]) -> str:
    """How many cases reach TARGET (a Spearman of 5 candidates is exactly 0.8 at one swap of
    neighbours, which floating point may compute a hair below)."""
    return f"{sum(r >= TARGET - 1e-9 for r in rhos)}/{len(rhos)}"


def _rho(scores: list[float], truth: list[float]) -> float:
    rho = spearmanr(scores, truth).statistic
    return 0.0 if rho is None or math.isnan(rho) else float(rho)


def summarise(
    results: list[dict[str, Any]], title: str = "all workloads", *, best: bool = False
) -> list[str]:
    """Per scorer: median Spearman against the realised loss and against the mean of both
    continuations (less batch noise), the share of cases >= 0.8, the median regret of its pick,
    and the median |relative error| of a predicted loss. The ``replicate`` row is the noise ceiling.

    The realised loss is each continuation's final one, or with ``best`` its best checkpoint: the
    model a job that keeps its best (lrpilot with a ``val_fn``) ends with.
    """
    truth, replicate = ("final", REPLICATE) if not best else (f"final{BEST}", f"{REPLICATE}{BEST}")
    lines = [
        f"{title}, truth = {'the best checkpoint' if best else 'the final loss'}:",
        "",
        "| scorer | median Spearman | cases >= 0.8 | median Spearman, truth = mean of 2 continuations | "
        "cases >= 0.8 | median regret of the pick | median relative error of the predicted final loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for scorer in (replicate, *SCORERS):
        rhos, mean_rhos, regrets, errors = [], [], [], []
        for res in results:
            rows = res["rows"]
            finals = [r[truth] for r in rows]
            scores = [r[scorer] for r in rows]
            rhos.append(_rho(scores, finals))
            mean_rhos.append(_rho(scores, [(r[truth] + r[replicate]) / 2 for r in rows]))
            pick = min(range(len(rows)), key=lambda i: scores[i])
            low = min(f for f in finals if math.isfinite(f))
            regrets.append(finals[pick] / low if math.isfinite(finals[pick]) else math.inf)
            if scorer.startswith(("exp@", "law")):  # the scorers that predict the final loss itself
                errors += [abs(r[scorer] / r[truth] - 1) for r in rows if math.isfinite(r[scorer] + r[truth])]
        err = f"{statistics.median(errors):.1%}" if errors else "— (a rank score, not a loss)"
        against_mean = (
            "— (part of that mean) | —"
            if scorer == replicate
            else f"{statistics.median(mean_rhos):.2f} | {_on_target(mean_rhos)}"
        )
        lines.append(
            f"| {scorer} | {statistics.median(rhos):.2f} | {_on_target(rhos)} | "
            f"{against_mean} | {statistics.median(regrets):.3f} | {err} |"
        )
    return lines
