"""Successive halving inside a stage (a lever, off by default: docs/engine.md, lever ``halving``).

A try of ``s`` steps misjudges where its LR leads (short-horizon bias; the forecaster benchmark
ranks LRs with a Spearman of 0.25-0.5 from 10-40 steps). Halving screens every try at ``s / 2``
steps, then runs the best ``FINALISTS`` again from the snapshot at twice that, the best last (it
goes straight on into the exploitation if it wins again), and the stage picks among those. A stage
of ``n`` tries then costs ``(n / 2 + FINALISTS) s`` steps instead of ``n s``: less for n >= 5 (a
first stage), more for the 3 tries of a refinement, so only searches of ``MIN_TRIES`` halve.
Where ``s / 2`` is shorter than a curve needs (``MIN_TRY_STEPS``), the screen keeps ``s`` and the
finalists run ``2 s``: the final round then buys a longer horizon, not fewer steps.
"""

from __future__ import annotations

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine.budget import MIN_TRY_STEPS
from lrpilot_service.engine.stage import learned_scores, searching, stage_level
from lrpilot_service.engine.state import SearchState, State

#: Off by default: measured in docs/engine.md (lever ``halving``).
HALVING = False
#: Searches with fewer tries do not halve (they would cost more, not less).
MIN_TRIES = 5
#: How many screened tries run again at full length.
FINALISTS = 2


def lengths(n: int, try_steps: int) -> tuple[int, int | None]:
    """(screen, finalists' length) for a search of ``n`` tries of ``try_steps``; (try_steps, None)
    when it does not halve. The finalists run twice the screen: ``try_steps`` itself, or twice
    ``MIN_TRY_STEPS`` where half a try would be shorter than a curve needs."""
    if not HALVING or n < MIN_TRIES:
        return try_steps, None
    screen = max(MIN_TRY_STEPS, try_steps // 2)
    return screen, 2 * screen


def begin_final_round(state: State, config: TunerConfig) -> str | None:
    """After the screen, queue the finalists at full length; None when there is no final round.

    There is none when the search did not halve, when the final round already ran, or when fewer
    than ``FINALISTS`` tries learned anything (nothing to tell apart: the stage concludes as is).
    The screen's scores stay in the stage's record; the final choice is among the finalists only.
    """
    search: SearchState = searching(state)
    full = search.get("full_steps")
    if full is None or full <= search["try_steps"]:
        return None
    learned = learned_scores(search, stage_level(state, config))
    ranked = sorted((y, -x) for x, y in zip(search["xs"], learned, strict=True) if y is not None)
    if len(ranked) < FINALISTS:
        return None
    finalists = [-x for _, x in ranked[:FINALISTS]][::-1]  # the best last
    search["xs"], search["ys"], search["sds"], search["voided"] = [], [], [], 0
    search["n"], search["try_steps"], search["queue"], search["try"] = FINALISTS, full, finalists, None
    return f"{len(ranked)} screened tries: the best {FINALISTS} run again at {full} steps"
