"""Engine levers, measured one at a time: ``python -m bench.levers --levers a,b --seeds 5``.

A lever is lrpilot with a few settings changed (an ablation of today's defaults, or a setting
that was tried and dropped). Each runs the whole protocol of the benchmark (same workloads, seeds,
budgets and tuned baselines, every step charged) and is scored the way the issue asks: its IQM
ratio to the tuned cosine over all workloads and seeds, and its worst workload, plus collapses
(final validation loss at or above 90% of the untrained model's) and the search share. Results
are cached like every tuner run (keyed by the lrpilot source fingerprint), so the table of
docs/engine.md is reproduced by one command.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.methods import NO_HEALTH, TunerMethod, doubled_choice, never_failing, never_stalled
from bench.stats import iqm, score
from bench.workloads import WORKLOADS

#: A run whose final validation loss is at least this share of the untrained model's collapsed.
COLLAPSE_SHARE = 0.9


@dataclass(frozen=True)
class Lever:
    """One setting change, and why it is worth measuring."""

    description: str
    method: TunerMethod = field(default_factory=TunerMethod)


def _ablation(description: str, config: dict[str, Any] | None = None, **method: Any) -> Lever:
    """lrpilot's defaults with a validation function (the benchmark's "lrpilot"), one thing changed."""
    return Lever(description, TunerMethod(config or {}, **{"val_fn": True, **method}))


LEVERS: dict[str, Lever] = {
    "defaults": _ablation("lrpilot's defaults, wide range, with a validation function"),
    "own-range": _ablation("the workload's own LR range instead of the wide default", lr_range="own"),
    "own-range-minimum": _ablation(
        "the workload's own LR range, and the bracket's top at the range test's minimum, not "
        "capped at the centre of its floor (round 16's own-range baseline)",
        lr_range="own",
        patches={"lrpilot_service.engine.probe.TOP_AT": "minimum"},
    ),
    "train-loss": _ablation("no validation function: tries scored on the training loss", val_fn=False),
    "no-probe": _ablation("no range test: the first stage searches the whole range", {"probe": "none"}),
    "no-warmup": _ablation("no warmup after the range test (one step)", {"warmup_steps": 0}),
    "no-cooldown": _ablation(
        "tries hold one LR, scored by a forecast of their curve (AutoLRS)", {"try_cooldown": 0.0}
    ),
    "no-health": _ablation("no stall, worse-than-start or dead-gradient checks", patches=NO_HEALTH),
    "no-stall": _ablation(
        "a stage that stalled (no significant progress on the training loss) is not searched again",
        patches={"lrpilot_service.engine.health.stalled": never_failing},
    ),
    "stall-all": _ablation(
        "a stall in any stage searches again (below the LR after the first stage)",
        patches={"lrpilot_service.engine.planner.STALL_RESEARCH_STAGES": None},
    ),
    "repeat-backoff": _ablation(
        "a stage backs off again each time a window is worse than its start (down to lr_min)",
        patches={"lrpilot_service.engine.planner._backed_off": never_stalled},
    ),
    "no-rebase": _ablation(
        "the stage's level is the losses before it only, not the snapshot's own when that is higher",
        patches={"lrpilot_service.engine.search_phase._rebase_level": never_failing},
    ),
    "no-tie-rule": _ablation(
        "the lowest posterior mean wins (no tie rule toward the larger LR)",
        patches={"lrpilot_service.engine.search.TIE_SDS": 0.0},
    ),
    "no-early-stop": _ablation(
        "a stage runs all its tries even when BO expects nothing more from them",
        patches={"lrpilot_service.engine.stage.EARLY_STOP_GAIN": 0.0},
    ),
    "narrow-refine": _ablation("later stages search x/÷2 around the last LR", {"refine": "narrow"}),
    "all-stages": _ablation("search every stage the budget pays for", {"search_stages": None}),
    "c10-r4": _ablation(
        "10 first-stage tries, 4 later (AutoLRS's k)", {"candidates": 10, "refine_candidates": 4}
    ),
    "c4-r2": _ablation(
        "4 first-stage tries, 2 later (fewer steps searching)", {"candidates": 4, "refine_candidates": 2}
    ),
    "ramp-30": _ablation(
        "each try (and its exploitation) rises linearly from the snapshot's LR over 30% of the try",
        {"try_ramp": 0.3},
    ),
    "try-20": _ablation("tries of 20% of tau instead of 10% (less short-horizon bias)", {"tau_ratio": 0.2}),
    "ramp-30-try-20": _ablation("ramp-30 and try-20 together", {"try_ramp": 0.3, "tau_ratio": 0.2}),
    "no-tie-tolerance": _ablation(
        "only statistical ties: no practical tolerance of 10% of the best try's progress",
        patches={"lrpilot_service.engine.pick.TIE_PROGRESS_SHARE": 0.0},
    ),
    "tie-25": _ablation(
        "tries within 25% of the best try's progress tie with it",
        patches={"lrpilot_service.engine.pick.TIE_PROGRESS_SHARE": 0.25},
    ),
    "tie-few": _ablation(
        "the tie rule also applies when fewer than 3 tries were scored (else the lowest one wins)",
        patches={"lrpilot_service.engine.search.TIE_FEW_POINTS": True},
    ),
    "ramp-tries": _ablation(
        "ramp-30 for the tries only (the exploitation jumps to the chosen LR)",
        {"try_ramp": 0.3},
        patches={"lrpilot_service.engine.next_stage.RISE_EXPLOITATION": False},
    ),
    "ramp-exploit": _ablation(
        "ramp-30 for the exploitation only (tries jump to their LR)",
        {"try_ramp": 0.3},
        patches={"lrpilot_service.engine.next_stage.RISE_TRIES": False},
    ),
    "early-stop-10": _ablation(
        "a stage stops once BO expects the next try to gain less than 10% of the tries' spread (not 1%)",
        patches={"lrpilot_service.engine.stage.EARLY_STOP_GAIN": 0.1},
    ),
    "no-tie-rel": _ablation(
        "no tie within 0.5% of the best score (only the progress share and the statistical tie)",
        patches={"lrpilot_service.engine.pick.TIE_LOSS_SHARE": 0.0},
    ),
    "tie-rel-1": _ablation(
        "a tie also within 1% of the best score",
        patches={"lrpilot_service.engine.pick.TIE_LOSS_SHARE": 0.01},
    ),
    "incumbent-first": _ablation(
        "a refinement's first try is the LR being trained (not the bracket's centre)",
        patches={"lrpilot_service.engine.stage.INCUMBENT_FIRST": True},
    ),
    "halving": _ablation(
        "successive halving: first-stage tries screened at half length, the best two run again at "
        "twice the screen (the final choice among them)",
        patches={"lrpilot_service.engine.halving.HALVING": True},
    ),
    "sized-stages": _ablation(
        "stages sized by how far their search moved the LR: half the stage if it moved 1.5x or "
        "more (search again sooner), twice if it stayed (search less)",
        patches={"lrpilot_service.engine.budget.SIZE_BY_MOVE": True},
    ),
    "shrink": _ablation(
        "a refinement moves the LR halfway (in log-LR) from the LR it refines to its winner",
        patches={"lrpilot_service.engine.pick.SHRINK": 0.5},
    ),
    "shrink-few": _ablation(
        "a refinement with fewer than 3 scored tries moves only halfway (log-LR) to its winner",
        patches={"lrpilot_service.engine.pick.SHRINK_FEW": 0.5},
    ),
    "refine-3x": _ablation(
        "later stages search x/÷3 around the last LR (the whole bracket by default)",
        {"refine": "narrow"},
        patches={"lrpilot_service.engine.budget.REFINE_WIDTH_SHARE": 1 / 12},
    ),
    "refine-5x": _ablation(
        "later stages search x/÷5.6 around the last LR: tries at the LR, 2.4x below and above",
        {"refine": "narrow"},
        patches={"lrpilot_service.engine.budget.REFINE_WIDTH_SHARE": 1 / 8},
    ),
    "refine-10x": _ablation(
        "later stages search x/÷10 around the last LR",
        {"refine": "narrow"},
        patches={"lrpilot_service.engine.budget.REFINE_WIDTH_SHARE": 1 / 6},
    ),
    "overfit-1": _ablation(
        "one exploit window above the stage's validation level is overfitting (two in a row by default)",
        patches={"lrpilot_service.engine.validation.OVERFIT_WINDOWS": 1},
    ),
    "no-overfit": _ablation(
        "no overfitting check in the exploitation",
        patches={"lrpilot_service.engine.validation.OVERFIT_WINDOWS": 10**9},
    ),
    "ramp-jumps": _ablation(
        "ramp-30, but only tries (and their exploitation) at 4x the snapshot's LR or more rise",
        {"try_ramp": 0.3},
        patches={"lrpilot_service.engine.next_stage.RISE_MIN_JUMP": 4.0},
    ),
    "tie-half": _ablation(
        "the tie rule moves halfway (log-LR) from the lowest GP mean to the largest tied try",
        patches={"lrpilot_service.engine.search.TIE_TOWARD": 0.5},
    ),
    "warmup-5": _ablation(
        "warmup over 5% of the budget (the tuned baselines' share) instead of 3%",
        patches={"lrpilot_service.engine.budget.WARMUP_SHARE": 0.05},
    ),
    "warmup-high": _ablation(
        "the warmup ends two thirds of the way up the range test's bracket (log scale), not at its centre",
        patches={"lrpilot_service.engine.phases.WARMUP_POINT": 2 / 3},
    ),
    "bracket-2.5": _ablation(
        "the range test's bracket spans 2.5 decades below its top (2 by default)",
        patches={"lrpilot_service.engine.probe.DECADES": 2.5},
    ),
    "bracket-3": _ablation(
        "the range test's bracket spans 3 decades below its top (2 by default)",
        patches={"lrpilot_service.engine.probe.DECADES": 3.0},
    ),
    "no-widen": _ablation(
        "a search in which no try made progress leaves the bracket as it is (by default its bottom "
        "drops a decade)",
        patches={"lrpilot_service.engine.pick.WIDEN_DECADES": 0.0},
    ),
    "no-spikes": _ablation(
        "every finite loss past the guard is a divergence (by default a lone spike passes)",
        patches={"lrpilot_service.engine.divergence.SPIKE_GAP": 0},
    ),
    "no-keep-best": _ablation(
        "the job ends with its last model (by default, with its best by validation loss: keep_best)",
        {"keep_best": False},
    ),
    "no-overfit-stop": _ablation(
        "the final hold runs to the anneal whatever its validation loss does (by default a "
        "memorising hold restores its best model and holds lr_min)",
        patches={"lrpilot_service.engine.overfit_stop.STOP": False},
    ),
    "overfit-stop-anneal": _ablation(
        "an overfit stop anneals from the restored best model over the whole anneal reserve "
        "(by default it holds lr_min at once)",
        patches={"lrpilot_service.engine.overfit_stop.ANNEAL_SHARE": 1.0},
    ),
    "overfit-stop-anneal-0.25": _ablation(
        "an overfit stop anneals over a quarter of the anneal reserve (by default it holds lr_min at once)",
        patches={"lrpilot_service.engine.overfit_stop.ANNEAL_SHARE": 0.25},
    ),
    "overfit-stop-patience-2": _ablation(
        "a hold memorises after 2 windows in a row above its best (4 by default)",
        patches={"lrpilot_service.engine.overfit_stop.PATIENCE": 2},
    ),
    "overfit-stop-tolerance-6": _ablation(
        "a hold memorises when its validation loss is 6% above its best (3% by default)",
        patches={"lrpilot_service.engine.overfit_stop.OVERFIT_TOLERANCE": 0.06},
    ),
    "overfit-below": _ablation(
        "an exploitation that overfits also keeps the next stage's search below its LR (by default "
        "the next stage searches the whole bracket again)",
        patches={"lrpilot_service.engine.planner.OVERFIT_RESEARCH": "below"},
    ),
    "grad-spikes": _ablation(
        "a lone finite gradient norm past its guard passes, like a lone loss spike (by default it "
        "diverges at once)",
        patches={"lrpilot_service.engine.divergence.GRAD_SPIKES": True},
    ),
    "best-every-stage": _ablation(
        "every exploitation snapshots its best validation model and hands it on when it ended "
        "memorising (by default only the final hold tracks its best)",
        patches={"lrpilot_service.engine.overfit_stop.EVERY_EXPLOIT": True},
    ),
    "r2": _ablation("2 tries in later stages instead of 3 (less search)", {"refine_candidates": 2}),
    "probe-knee": _ablation(
        "the bracket's top at twice the range test's knee (the first LR within 10% of the "
        "minimum's drop), not its minimum capped at the floor's centre",
        patches={"lrpilot_service.engine.probe.TOP_AT": "knee"},
    ),
    "probe-centre": _ablation(
        "the bracket's top at twice the centre of the range test's floor (the LRs within 10% of "
        "the minimum's drop), also where that lies above the minimum",
        patches={"lrpilot_service.engine.probe.TOP_AT": "centre"},
    ),
    "probe-fixed": _ablation(
        "the range test sweeps the whole range at one pace from lr_min (no locating pass; the test "
        "before round 18)",
        patches={"lrpilot_service.engine.probe.LOCATE_BELOW": 0.0},
    ),
    "locate-always": _ablation(
        "the range test's locating pass at any pace (by default only where one pace over the whole "
        "range would sweep fewer than 10 steps a decade: T < 2,000 on the wide range)",
        patches={"lrpilot_service.engine.probe.LOCATE_BELOW": math.inf},
    ),
    "edge-research": _ablation(
        "a stage whose only try that learned is its lowest (the tries above it stalled) is searched "
        "again over the widened bracket (by default it keeps that try)",
        patches={"lrpilot_service.engine.pick.EDGE_RESEARCH": True},
    ),
    "probe-minimum": _ablation(
        "the bracket's top at twice the range test's minimum, not capped at the centre of its "
        "floor (the rule before round 16)",
        patches={"lrpilot_service.engine.probe.TOP_AT": "minimum"},
    ),
    "r4": _ablation("4 tries in later stages instead of 3 (the 4th placed by BO)", {"refine_candidates": 4}),
    "r5": _ablation("5 tries in later stages instead of 3", {"refine_candidates": 5}),
    "exploit-x2": _ablation(
        "diagnostic: exploit at twice the stage's chosen LR (how much an LR-choice bias costs)",
        patches={"lrpilot_service.engine.search_phase.conclude": doubled_choice},
    ),
    "anneal-sqrt": _ablation("1-sqrt anneal (WSD's cooldown) instead of linear", {"anneal": "sqrt"}),
    "anneal-cosine": _ablation("half-cosine anneal instead of linear", {"anneal": "cosine"}),
    "anneal-30": _ablation("anneal over the last 30% instead of 20%", {"anneal_fraction": 0.3}),
    "anneal-50": _ablation("anneal over the last 50%", {"anneal_fraction": 0.5}),
    "warmup-val": _ablation(
        "the warmup's last step is measured on validation loss: the first stage judges its tries "
        "against it (by default against its worst try)",
        patches={"lrpilot_service.engine.validation.WARMUP_VAL": True},
    ),
    "no-rich": _ablation(
        "a later stage holds its pick as it is, also where validation tracks training (by default a "
        "stage that starts with validation loss <= 1.1x the training loss holds twice its pick, at "
        "most its largest try that learned)",
        patches={"lrpilot_service.engine.rich_data.RICH_GAP": None},
    ),
    "rich-x3": _ablation(
        "a later stage that tracks training holds three times its pick (by default twice), at most "
        "its largest try that learned",
        patches={"lrpilot_service.engine.rich_data.RICH_FACTOR": 3.0},
    ),
    "no-reach": _ablation(
        "a later stage whose pick is its largest try holds that pick (by default, where validation "
        "tracks training and nothing above the pick was tried, it holds twice the pick, rising to "
        "it over half the exploitation, with a guard that lets a catapult pass)",
        patches={"lrpilot_service.engine.rich_data.RICH_REACH": None},
    ),
    "reach-free-only": _ablation(
        "the reach only where nothing above the pick was tried (by default also below a try above "
        "it that diverged, at most halfway to it)",
        patches={"lrpilot_service.engine.rich_data.REACH_BELOW_DIVERGED": False},
    ),
    "no-river": _ablation(
        "a later stage's tries below its pick keep their scores (by default, where validation tracks "
        "training, each is charged the progress it forgoes over the plan by the job's own fall of "
        "the loss in log-LR-area: engine/river.py)",
        patches={"lrpilot_service.engine.river.RIVER": False},
    ),
    "refine-4": _ablation(
        "a refinement runs 4 tries, not 3: its fourth is BO's, where the river charge can steer it",
        {"refine_candidates": 4},
    ),
    "refine-4-no-river": _ablation(
        "refine-4 without the river charge (BO's fourth try sees the tries' own scores)",
        {"refine_candidates": 4},
        patches={"lrpilot_service.engine.river.RIVER": False},
    ),
    "own-range-no-river": _ablation(
        "no-river with the workload's own LR range (paired against lrpilot-own)",
        lr_range="own",
        patches={"lrpilot_service.engine.river.RIVER": False},
    ),
}


def collapsed(run: dict[str, Any]) -> bool:
    """Final validation loss >= 90% of the untrained model's (or no finite final loss at all)."""
    final, initial = run.get("final_val_loss"), run.get("initial_val_loss")
    if final is None or initial is None or not math.isfinite(final):
        return True
    return bool(final >= COLLAPSE_SHARE * initial)


def lever_table(
    names: Sequence[str], workloads: Sequence[str], seeds: int, results: dict[Any, dict[str, Any]]
) -> list[str]:
    """Markdown rows: per lever, aggregate IQM ratio to tuned cosine, worst workload, collapses."""
    from bench.analysis import analyse
    from bench.methods import RunSpec

    analyses = {w: analyse(results, w, seeds, quick=False) for w in workloads}
    head = " | ".join(workloads)
    lines = [
        "| lever | IQM ratio to tuned cosine | worst workload | worst run | collapses | search share | "
        f"{head} |",
        "|---" * (6 + len(workloads)) + "|",
    ]
    for name in names:
        ratios: dict[str, list[float]] = {}
        shares, collapses, runs = [], 0, 0
        worst_run = (-math.inf, "-")
        for w in workloads:
            wa = analyses[w]
            budget = WORKLOADS[w].budget(quick=False)
            for seed, ref in enumerate(wa.cosine.scores):
                run = results.get(RunSpec(w, name, None, seed, budget))
                if run is None or "error" in run:
                    continue
                runs += 1
                collapses += collapsed(run)
                shares.append(run.get("search_share") or 0.0)
                ratio = score(run.get("final_val_loss"), run.get("initial_val_loss")) / ref
                ratios.setdefault(w, []).append(ratio)
                worst_run = max(worst_run, (ratio, f"{w} s{seed}"))
        pooled = [x for values in ratios.values() for x in values]
        per = {w: iqm(v) for w, v in ratios.items()}
        worst = max(per, key=lambda w: per[w]) if per else "-"
        cells = " | ".join(f"{per[w]:.3f}" if w in per else "-" for w in workloads)
        lines.append(
            f"| {name} | {iqm(pooled):.3f} | {worst} {per.get(worst, math.nan):.3f} | "
            f"{worst_run[1]} {worst_run[0]:.2f} | {collapses}/{runs} | "
            f"{iqm(shares) if shares else math.nan:.2f} | {cells} |"
        )
    return lines


def paired_table(
    names: Sequence[str],
    against: str,
    workloads: Sequence[str],
    seeds: int,
    results: dict[Any, dict[str, Any]],
) -> list[str]:
    """Markdown rows: per lever, the IQM over seeds of its final validation loss over ``against``'s
    on the same workload and seed (paired: no tuned baseline needed), pooled and per workload,
    with the lever's own search share."""
    from bench.methods import RunSpec

    head = " | ".join(workloads)
    lines = [
        f"| lever | IQM ratio to {against}, paired | worst workload | runs that differ | search share "
        f"| {head} |",
        "|---" * (5 + len(workloads)) + "|",
    ]
    for name in names:
        ratios: dict[str, list[float]] = {}
        shares: list[float] = []
        for w in workloads:
            budget = WORKLOADS[w].budget(quick=False)
            for seed in range(seeds):
                run = results.get(RunSpec(w, name, None, seed, budget))
                base = results.get(RunSpec(w, against, None, seed, budget))
                if run is None or base is None or "error" in run or "error" in base:
                    continue
                top, bottom = (score(r.get("final_val_loss"), r.get("initial_val_loss")) for r in (run, base))
                ratios.setdefault(w, []).append(top / bottom)
                shares.append(run.get("search_share") or 0.0)
        pooled = [x for values in ratios.values() for x in values]
        per = {w: iqm(v) for w, v in ratios.items()}
        worst = max(per, key=lambda w: per[w]) if per else "-"
        cells = " | ".join(f"{per[w]:.3f}" if w in per else "-" for w in workloads)
        differ = sum(abs(x - 1) > 1e-12 for x in pooled)
        aggregate, share = (iqm(v) if v else math.nan for v in (pooled, shares))
        lines.append(
            f"| {name} | {aggregate:.3f} | {worst} {per.get(worst, math.nan):.3f} | "
            f"{differ}/{len(pooled)} | {share:.3f} | {cells} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    from bench.runner import load_cached, plan, run_all

    p = argparse.ArgumentParser(prog="python -m bench.levers", description=__doc__.split("\n")[0])
    p.add_argument("--levers", default=",".join(LEVERS), help=f"comma list of {', '.join(LEVERS)}")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument(
        "--against", help="also compare each lever with this lever or tuner method (lrpilot), run for run"
    )
    args = p.parse_args(argv)
    names = [n for n in args.levers.split(",") if n]
    if args.against and args.against not in names:
        names.append(args.against)
    from bench.methods import TUNER_METHODS, RunSpec, tuner_method

    unknown = [n for n in names if tuner_method(n) is None]
    if unknown:
        print(
            f"levers: unknown lever(s) {unknown}; choose from {list(LEVERS)} or {list(TUNER_METHODS)}",
            file=sys.stderr,
        )
        return 2
    workloads = [w for w in args.workloads.split(",") if w]

    # the table compares with the tuned cosine only: its grid is the one baseline needed
    baselines = [
        s for s in plan(workloads, args.seeds, quick=False, with_tuners=False) if s.method == "cosine"
    ]
    levers = [
        RunSpec(w, name, None, seed, WORKLOADS[w].budget(quick=False))
        for seed in range(args.seeds)
        for w in workloads
        for name in names
    ]
    results = run_all(levers, jobs=args.jobs)
    # baselines come from the cache (`lrpilot bench --report --methods cosine` computes them); a
    # workload whose grid is not complete yet is left out rather than compared to a partial grid
    missing = set()
    for spec in baselines:
        cached = load_cached(spec)
        if cached is None:
            missing.add(spec.workload)
        else:
            results[spec] = cached
    if missing:
        print(f"levers: baselines not cached yet for {sorted(missing)}; left out", file=sys.stderr)
    shown = [w for w in workloads if w not in missing]
    if shown:
        for line in lever_table(names, shown, args.seeds, results):
            print(line)
    if args.against:
        print()
        for line in paired_table(names, args.against, workloads, args.seeds, results):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
