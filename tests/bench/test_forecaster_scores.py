"""The forecaster benchmark's scores and summary: Spearman against the truth, against two
continuations' mean, the replicate's noise ceiling, and the derived scorers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from bench.forecaster_scores import (
    AREA,
    BEST,
    REPLICATE,
    RICH,
    SCORERS,
    TRY_LENGTHS,
    area_scores,
    branch_lrs,
    horizon_score,
    rich_scores,
    summarise,
    with_derived_scores,
)
from bench.workloads import WORKLOADS


def _case(
    finals: list[float], replicates: list[float], scores: list[float], bests: list[float] | None = None
) -> dict[str, Any]:
    rows = []
    for i, (final, replicate, score) in enumerate(zip(finals, replicates, scores, strict=True)):
        best = final if bests is None else bests[i]
        truths = {"final": final, REPLICATE: replicate, f"final{BEST}": best, f"{REPLICATE}{BEST}": best}
        rows.append({"lr": 10.0**i, **truths, **dict.fromkeys(SCORERS, score)})
    return {"case": {"workload": "w", "seed": 0, "branch_share": 0.1}, "rows": rows}


def _row(lines: list[str], scorer: str) -> list[str]:
    line = next(line for line in lines if line.startswith(f"| {scorer} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_the_replicate_row_measures_how_well_other_batches_rank_the_truth() -> None:
    # the replicate reverses the two candidates the truth nearly ties
    finals = [1.0, 1.01, 1.02, 2.0, 3.0]
    replicates = [1.02, 1.01, 1.0, 2.0, 3.0]
    lines = summarise([_case(finals, replicates, finals)])
    ceiling = _row(lines, REPLICATE)
    assert float(ceiling[1]) < 1.0  # batch noise alone breaks the truth's ranking
    assert ceiling[3].startswith("—")  # it is half of the mean: no fair score against it
    assert float(ceiling[5]) == 1.02  # picking by the replicate costs 2%


def test_a_scorer_that_ranks_the_mean_of_both_continuations_scores_one_against_it() -> None:
    finals = [1.0, 1.01, 1.02, 2.0, 3.0]
    replicates = [1.04, 1.01, 1.0, 2.0, 3.0]
    mean = [(f + r) / 2 for f, r in zip(finals, replicates, strict=True)]
    row = _row(summarise([_case(finals, replicates, mean)]), SCORERS[0])
    assert float(row[1]) < 1.0 and float(row[3]) == 1.0
    assert row[4] == "1/1"


def test_a_job_that_keeps_its_best_model_is_ranked_by_its_best_checkpoint() -> None:
    """Large LRs overfit by the end but pass through the best model: the truth a keep_best job realises."""
    finals, bests = [1.0, 1.1, 1.2, 1.3, 1.4], [1.0, 0.95, 0.9, 0.85, 0.8]
    scores = [5.0, 4.0, 3.0, 2.0, 1.0]  # a short try prefers the large LRs
    case = _case(finals, finals, scores, bests)
    assert float(_row(summarise([case]), SCORERS[0])[1]) == -1.0
    assert float(_row(summarise([case], best=True), SCORERS[0])[1]) == 1.0


def test_a_diverged_continuation_ranks_last_without_breaking_the_summary() -> None:
    finals = [1.0, 1.5, 2.0, 2.5, math.inf]
    lines = summarise([_case(finals, finals, finals)])
    assert float(_row(lines, REPLICATE)[1]) == 1.0


def test_the_horizon_score_ranks_a_still_falling_try_above_one_that_levelled_off() -> None:
    falling = {"cooldown-val@10": 1.0, "cooldown-val@20": 0.8, "cooldown-val@40": 0.6}
    level = {"cooldown-val@10": 0.6, "cooldown-val@20": 0.58, "cooldown-val@40": 0.57}
    assert falling["cooldown-val@40"] > level["cooldown-val@40"]  # the 40-step try prefers "level"
    assert horizon_score(falling, 1000) < horizon_score(level, 1000)
    assert math.isclose(horizon_score(level, 40), 0.57, abs_tol=0.01)  # at the try's length: the try


def test_the_horizon_score_of_a_try_that_diverged_is_infinite() -> None:
    row = {"cooldown-val@10": 1.0, "cooldown-val@20": math.inf, "cooldown-val@40": 0.6}
    assert horizon_score(row, 1000) == math.inf


def _tried(scores: list[float]) -> list[dict[str, float]]:
    return [{"lr": 10 ** (k / 2 - 3), f"cooldown-val@{max(TRY_LENGTHS)}": v} for k, v in enumerate(scores)]


def test_where_data_does_not_memorise_a_candidate_is_scored_by_the_try_below_it() -> None:
    """The engine holds RICH_FACTOR (2x) its pick there: the plan at x follows the try at x / 2."""
    rows = _tried([3.0, 1.0, 2.0, 4.0, math.inf])
    rich = rich_scores(rows, {"val": 1.0, "train": 1.0})
    assert min(range(5), key=rich.__getitem__) == 2  # the pick moves up one candidate (10**0.5 > 2)
    assert rich[4] == math.inf  # a try that diverged stays out
    assert rich_scores(rows, {"val": 2.0, "train": 1.0}) == [3.0, 1.0, 2.0, 4.0, math.inf]  # memorising


def _branched(scores: list[float], val: float, slope: float = 0.3) -> dict[str, Any]:
    """A case on lm_bytes (no memorising: val == train) whose history falls ``slope`` per log-area."""
    w = WORKLOADS["lm_bytes"]
    lrs = branch_lrs(w.grid_centre, w.total_steps, 200)
    history = list(3.0 - slope * np.log(np.cumsum(lrs)))
    rows = [{"lr": w.grid_centre * 10 ** (k / 2 - 1), RICH: v} for k, v in enumerate(scores)]
    case = {"workload": "lm_bytes", "seed": 0, "branch_share": 0.1}
    return {"case": case, "branch": {"val": val, "train": 2.0}, "rows": rows, "history": history}


def test_a_candidate_below_the_pick_pays_the_progress_it_forgoes_over_the_plan() -> None:
    """Tries nearly tie the two smallest LRs; over the plan the smallest makes far less progress."""
    scores = [2.30, 2.29, 2.32, 2.45, 2.90]
    case = _branched(scores, val=2.0)
    area = area_scores(case["rows"], case)
    assert area[1:] == scores[1:]  # the pick and everything above it keep the try's score
    assert area[0] > scores[2]  # the smallest LR now ranks below the larger one the try preferred less
    assert area_scores(case["rows"], _branched(scores, val=3.0)) == scores  # memorising data: the try
    flat = _branched(scores, val=2.0, slope=0.0)
    assert area_scores(flat["rows"], flat) == pytest.approx(scores)  # a flat loss forgoes nothing


def test_derived_scores_add_the_area_score_only_where_the_history_was_recorded() -> None:
    case = _branched([2.30, 2.29, 2.32, 2.45, math.inf], val=2.0)
    for row in case["rows"]:
        row.update({f"cooldown-val@{t}": row[RICH] for t in TRY_LENGTHS})
    scored = with_derived_scores(case)["rows"]
    assert scored[0][AREA] > scored[0][RICH] and scored[4][AREA] == math.inf
    del case["history"]
    assert all(math.isnan(row[AREA]) for row in with_derived_scores(case)["rows"])
