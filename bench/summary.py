"""The report's lrpilot section: the goals of the benchmark, per workload, worst first.

Per workload: lrpilot's ratio to the tuned cosine, to the best tuned schedule and to the cosine at
its textbook LR (paired by seed); collapses with the wide default range and with the workload's own
range; the wide range's cost against the own range; steps to the tuned cosine's loss; search share
and the share of steps the final model kept; and the decomposition of its gap (bench/decompose.py).
lrpilot ends with the best model it measured (``keep_best``), so the tuned cosine's best checkpoint
(the lowest point of its validation curve) is shown beside its final loss: the fair reference for a
reader who would keep a best checkpoint by hand.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from bench.analysis import Row, WorkloadAnalysis
from bench.decompose import Decomposition
from bench.levers import collapsed
from bench.stats import bootstrap_ci, iqm, median_steps, score, stratified_bootstrap_ci

#: The run that makes the headline, and the one that shows what the wide range costs.
MAIN, OWN = "lrpilot", "lrpilot-own"


def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def to_best_checkpoint(wa: WorkloadAnalysis, row: Row) -> list[float]:
    """Per seed: ``row``'s final loss over the lowest validation loss the tuned cosine's run reached
    at any of its evaluations (every T/20 steps): its best checkpoint."""
    ratios = []
    for ours, ref in zip(row.scores, wa.cosine.runs, strict=True):
        start = ref.get("initial_val_loss")
        lowest = min((score(v, start) for _, v in ref["curve"]), default=math.nan)
        ratios.append(ours / lowest if lowest > 0 else math.nan)
    return ratios


def lrpilot_section(
    analyses: Sequence[WorkloadAnalysis], parts: Mapping[str, Decomposition | None]
) -> list[str]:
    """Markdown: the per-workload table (worst ratio first) and the aggregate line."""
    rows, pooled, pooled_best, pooled_kept, groups = [], [], [], [], []
    for wa in analyses:
        ours, own = wa.row("tuner", MAIN), wa.row("tuner", OWN)
        default = wa.row("default", "cosine")
        if ours is None:
            continue
        ratio = wa.ratio(ours)
        to_best = wa.ratio(ours, wa.best)
        to_kept = to_best_checkpoint(wa, ours)
        pooled += ratio
        pooled_best += to_best
        pooled_kept += to_kept
        groups.append(ratio)
        vs_default = iqm(wa.ratio(ours, default)) if default is not None else math.nan
        vs_own = iqm(wa.ratio(ours, own)) if own is not None else math.nan
        falls = sum(collapsed(r) for r in ours.runs)
        falls_own = sum(collapsed(r) for r in own.runs) if own is not None else 0
        reached = wa.steps_to_target(ours)
        shares = [r.get("search_share") or 0.0 for r in ours.runs]
        kept = [(r.get("kept_steps") or wa.budget) / wa.budget for r in ours.runs]
        d = parts.get(wa.workload)
        ci = bootstrap_ci(ratio)
        rows.append(
            (
                iqm(ratio),
                f"| {wa.workload} | {wa.budget} | {_f(iqm(ratio))} [{_f(ci[0])}, {_f(ci[1])}] | "
                f"{_f(iqm(to_best))} | {_f(iqm(to_kept))} | {_f(vs_default)} | {falls} / {falls_own} | "
                f"{_f(vs_own)} | "
                f"{_f(median_steps(reached), 5)} ({sum(s is not None for s in reached)}/{len(reached)}) | "
                f"{_f(iqm(shares), 2)} | {_f(iqm(kept), 2)} | "
                + (
                    f"{_f(d.choice)} | {_f(d.search)} | {_f(d.shape)} | {_f(d.held_lr)} |"
                    if d is not None
                    else "— | — | — | — |"
                ),
            )
        )
    if not rows:
        return ["lrpilot did not run."]
    ci = stratified_bootstrap_ci(groups)
    lines = [
        "| workload | T | lrpilot / tuned cosine [95% CI] | / best tuned | "
        "/ tuned cosine's best checkpoint | / cosine @ default | "
        "collapses (wide / own range) | wide / own range | steps to target (reached) | search share | "
        "kept share | LR choice | search cost | shape | held LR |",
        "|---" * 15 + "|",
        *(line for _, line in sorted(rows, key=lambda r: -r[0])),
        "",
        f"Aggregate: lrpilot / tuned cosine IQM {_f(iqm(pooled))} [{_f(ci[0])}, {_f(ci[1])}], / best tuned "
        f"{_f(iqm(pooled_best))}, / tuned cosine's best checkpoint {_f(iqm(pooled_kept))}; worst workload "
        f"{_f(max(r[0] for r in rows))}.",
    ]
    return lines
