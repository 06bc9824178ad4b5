"""How a stage picks the LR to exploit from its scored tries.

A try that diverged, died or made no significant progress is a failure, not a tie; among the
rest the GP posterior mean decides, with a practical tie rule toward the larger LR. A stage in
which nothing learned falls back by why it searched, widens the range test's bracket and makes
the next stage search the whole range again. Kept apart from stage.py (which runs the tries) so
each rule and its lever sit beside the others it interacts with.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import rich_data, river
from lrpilot_service.engine.budget import lr_of, x_of
from lrpilot_service.engine.search import Choice, choose_best
from lrpilot_service.engine.stage import learned_scores, searching, stage_level
from lrpilot_service.engine.state import SearchState, State


def _uninformative(search: SearchState, previous: float | None) -> Choice:
    """The stage's LR when no try made significant progress: which depends on why it searched.

    - The first stage (or a re-search after a stall of every LR): a fresh network's plateau.
      Progress needs more steps than a try had, and the largest LR that neither diverged nor
      died (vanishing gradients count as dying) gets there fastest.
    - A re-search below an LR that stalled or failed: the middle LR that did not fail. The top of a
      wide range removes the easy part of a loss fastest and then learns nothing: "the largest LR
      among ties" took it and wrecked runs.
    - A refinement: the model has learnt what this stretch offers at any LR; the previous LR stays.

    The next stage searches again (also past ``search_stages``).
    """
    alive = sorted(x for x, y in zip(search["xs"], search["ys"], strict=True) if y is not None)
    if not alive:
        return Choice(min(search["xs"]), math.nan, "no try made progress, all diverged: the smallest LR")
    if search["kind"] == "refine" and previous is not None:
        x = x_of(previous, search["low"], search["high"])
        return Choice(min(1.0, max(0.0, x)), math.nan, "no try made significant progress: the LR stays")
    if search["kind"] == "below":
        return Choice(
            alive[(len(alive) - 1) // 2], math.nan, "no try made significant progress: the middle LR"
        )
    return Choice(alive[-1], math.nan, "no try made significant progress: the largest LR that did not fail")


#: Tries whose score is within this share of the best try's progress (stage level - best score)
#: also tie with it, and the largest of them wins: a difference that small is within what a short
#: try misjudges (python -m bench.forecasters: short tries rank LRs with a Spearman of 0.2-0.5).
#: Measured in docs/engine.md (levers tie-10, no-tie-tolerance, tie-25).
TIE_PROGRESS_SHARE = 0.1
#: ... or within this share of the best score itself: on the byte-level LM a stage's tries scored
#: within 0.6% of each other and the lowest moved the LR 10x down (docs/engine.md, round 6).
TIE_LOSS_SHARE = 0.005


def _practical_tie(level: tuple[float, float] | None, learned: Sequence[float | None]) -> float:
    """The score difference that counts as a tie: a share of what the best try gained on the level
    (on the worst scored try when the level is unknown: a first stage scored on validation loss)."""
    scores = [y for y in learned if y is not None]
    if not scores:
        return 0.0
    top = max(scores) if level is None else level[0]
    best = min(scores)
    return max(TIE_PROGRESS_SHARE * max(0.0, top - best), TIE_LOSS_SHARE * abs(best))


#: A refinement moves the LR only this share of the way (in log-LR) from the LR it refines to its
#: winner (lever ``shrink``, off: 1.0 goes all the way). A stage's pick is noisy; halfway between
#: two picks has half the variance of the last one.
SHRINK = 1.0
#: ... when fewer than MIN_SCORED_FOR_MOVE tries were scored (lever ``shrink-few``, off: 1.0): two
#: scores 0.8% apart moved lm_bytes seed 4's LR 4x down, where the rest of the run lost 15%.
#: Measured on 10 seeds (round 11): lm_bytes 1.048 -> 1.034, but teacher_cnn 1.016 -> 1.026 and
#: digits_mlp 0.981 -> 0.993; not kept.
SHRINK_FEW = 1.0
MIN_SCORED_FOR_MOVE = 3


def _shrink_share(scored: int) -> float:
    """How far a refinement moves toward its winner, given how many of its tries were scored."""
    return SHRINK_FEW if 0 < scored < MIN_SCORED_FOR_MOVE else SHRINK


def _shrunk(chosen: float, previous: float | None, share: float) -> float:
    if share >= 1.0 or previous is None or previous <= 0:
        return chosen
    return math.exp(math.log(previous) + share * (math.log(chosen) - math.log(previous)))


#: A search in which no try made progress widens the range test's bracket this many decades
#: down (0: off, lever ``no-widen``). The bracket's bottom is a guess: the best LR of a benchmark
#: workload lay as far as 1/300 of the range test's minimum, below a 2-decade bracket (probe.py).
#: A bracket that holds no LR that learns must not be searched again as it is.
WIDEN_DECADES = 1.0


def _widened(state: State, config: TunerConfig) -> str:
    """Lower the bracket's bottom (never below ``lr_min``); say so when it moved."""
    bracket = state["bracket"]
    if not WIDEN_DECADES or bracket is None or bracket[0] <= config.lr_min:
        return ""
    bracket[0] = max(config.lr_min, bracket[0] / 10**WIDEN_DECADES)
    return f", widened down to lr={bracket[0]:.3g}"


#: A stage whose only try that learned is its lowest, with a try above it that stalled (no
#: progress, no divergence), is searched again over the widened bracket, as one in which no try
#: learned (lever ``edge-research``; off). The LR that learns may lie below every try: on the
#: stalling-LM simulation a later stage kept its lowest try at 7x the best LR to the end, and
#: this left 2 of 16 seeds above 1.35x the oracle instead of 3. On the benchmark it fired only
#: where a late stage sits on its noise floor (the teacher CNN's seeds 1, 5 and 7), and the extra
#: stage took their search share from 8.5% to 18.5% for nothing (0-0.8% worse; docs/engine.md,
#: round 18).
EDGE_RESEARCH = False


def _only_the_lowest_learned(search: SearchState, learned: list[float | None]) -> bool:
    scored = [(x, y, z) for x, y, z in zip(search["xs"], search["ys"], learned, strict=True)]
    lowest = min(range(len(scored)), key=lambda i: scored[i][0])
    others = [s for i, s in enumerate(scored) if i != lowest]
    stalled = any(y is not None and z is None for _, y, z in others)
    return scored[lowest][2] is not None and all(z is None for _, _, z in others) and stalled


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
        level = stage_level(state, config)
        learned = learned_scores(search, level)
        if any(y is not None for y in learned):  # tries that learned nothing are failures, not ties
            tie = _practical_tie(level, learned)
            scores, forgone = river.charged(state, config, search, learned)
            choice = choose_best(search["xs"], scores, sds=search["sds"], tolerance=tie)
            stalled = sum(y is None for y in learned) - sum(y is None for y in search["ys"])
            why = choice.reason + forgone
            why += f"; {stalled} tries that made no progress excluded" if stalled else ""
            if EDGE_RESEARCH and _only_the_lowest_learned(search, learned):
                state["research"] = "all"
                why += (
                    "; only the lowest try learned (those above it stalled): the next stage searches "
                    "the whole range again" + _widened(state, config)
                )
        else:  # nothing learned yet: see _uninformative; search the whole range again next stage
            choice = _uninformative(search, state["best_lr"])
            state["research"] = "all"
            why = choice.reason + "; the next stage searches the whole range again" + _widened(state, config)
        chosen = lr_of(choice.x, search["low"], search["high"])
        share = _shrink_share(sum(y is not None for y in learned))
        lr = _shrunk(chosen, state["best_lr"] if search["kind"] == "refine" else None, share)
        if lr != chosen:
            why += f"; moved {share:.0%} of the way from lr={state['best_lr']:.3g} to lr={chosen:.3g}"
        lr, larger = rich_data.raised(state, config, search, learned, lr)
        why += larger
        last = search["try"]
        keep_going = last is not None and last["x"] == choice.x and learned[-1] is not None and lr == chosen
    summary["chosen_lr"] = lr
    summary["reason"] = why
    state["best_lr"] = lr
    state["search"] = None
    return lr, keep_going, f"chose lr={lr:.3g}: {why}"
