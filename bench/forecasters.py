"""How well does a short try rank candidate LRs by where they really lead? ``python -m bench.forecasters``.

For each workload and seed, a model is trained to a branch point (5% warmup, then the workload's
grid-centre LR held) and snapshotted. From that snapshot, every candidate LR of a two-decade grid
is (a) tried for a short window, as the tuner tries it, and (b) trained to the end of the budget
under the plan that would follow a choice (hold the LR, then a linear anneal over the last 20%):
its final validation loss is the truth a score should rank. Each scorer turns the try into a
number; we report the Spearman rank correlation between scores and realised final losses across
the candidates, the regret of the scorer's pick (its realised loss over the best), and for scorers
that predict a loss, the relative error of that prediction. Every branch sees the same batches.

Scorers on the training losses the tuner sees: ``exp`` (AutoLRS: fit a*exp(-b*t)+c to the held
try, predict at the far horizon), ``mean10`` (the mean of the try's last 10 losses), ``cooldown``
(the same try length, its last 30% annealed toward zero, scored by the mean of its last cooled
losses: lrpilot's default). With a validation function: ``val`` (the validation loss at the end of
the held try) and ``cooldown-val`` (at the end of the cooled try: lrpilot with ``val_fn``).
Derived from the cooled tries: ``horizon-val`` (their loss extrapolated along the try's length to
the steps left) and ``rich-val`` (read where the engine's rich-data raise takes the pick). The
laws of bench/loss_laws.py fit the branch's history and every try.

Two truths: each continuation's final validation loss, and its best checkpoint (every T/20 steps:
the model a job that keeps its best, lrpilot with a ``val_fn``, ends with). Each plan is trained
a second time on another shuffle of the data (the ``replicate``): how well it ranks the first is
the ceiling that batch noise sets.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from bench.loss_laws import law_predictions, lr_aware_law_predictions
from bench.methods import RunSpec, build, eval_points
from bench.runner import RESULTS_DIR
from bench.workloads import WORKLOADS, Workload
from lrpilot_service.engine import rich_data

OUT = RESULTS_DIR / "forecasters.json"

CANDIDATE_EXPONENTS = (-2, -1, 0, 1, 2)  # half-decade steps around the grid centre
COOLDOWN_SHARE = 0.3  # the engine's default try_cooldown
RAMP_SHARE = 0.3  # ramped tries rise from the branch's LR to the candidate's over this share
ANNEAL_SHARE = 0.2


TRY_LENGTHS = (10, 20, 40)
#: Each candidate's plan is trained twice from the branch: on the case's batches (the truth the
#: scorers rank) and on another shuffle (the replicate). How well the replicate ranks the truth is
#: the ceiling set by batch noise alone: a scorer cannot be expected to rank a realised final loss
#: better than the same plan on other batches does.
REPLICATE = "replicate"
REPLICATE_SEED = 1_000
#: Suffix of a continuation's best checkpoint ("final-best", "replicate-best"): the truth for a
#: job that ends with its best validation model (``keep_best``).
BEST = "-best"
#: The branch's training-loss level: the mean of its last steps (compared with its validation loss
#: to tell data that memorises from data that does not, as the engine's rich_data rule does).
BRANCH_LEVEL_STEPS = 20
#: The cooled validation loss extrapolated along the try's length to the steps left (horizon_score).
HORIZON = "horizon-val"
#: The cooled validation score read where the engine's rich-data raise would take the pick (rich_scores).
RICH = "rich-val"


@dataclass(frozen=True)
class Case:
    workload: str
    seed: int
    branch_share: float  # where the snapshot is taken, as a share of the budget


def _train(w: Workload, model: Any, opt: Any, batches: Any, steps: range, lr_of: Any) -> list[float]:
    data, losses = w.data(), []
    for step in steps:
        for group in opt.param_groups:
            group["lr"] = lr_of(step)
        idx = batches[step]
        loss = w.loss(model, data.train_x[idx], data.train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        value = float(loss.detach())
        losses.append(value if math.isfinite(value) else math.nan)
        if not math.isfinite(value):
            break
    return losses


def _continue(
    w: Workload, model: Any, opt: Any, order: Any, steps: range, lrs: list[float]
) -> tuple[float, float]:
    """Train a candidate's plan from the branch: its final validation loss, and the lowest one at
    the benchmark's evaluation points (every T/20 steps, and the last): the model a job that keeps
    its best checkpoint ends with. A run that diverges realises ``inf``."""
    points = [p for p in eval_points(w.total_steps) if steps.start < p <= steps.stop]
    start, values = steps.start, []
    for point in points:
        losses = _train(w, model, opt, order, range(start, point), lambda s: lrs[s - steps.start])
        if len(losses) < point - start or not all(math.isfinite(v) for v in losses):
            return math.inf, math.inf
        value = w.val_loss(model)
        values.append(value if math.isfinite(value) else math.inf)
        start = point
    return values[-1], min(values)


def _scores(
    w: Workload,
    model: Any,
    opt: Any,
    batches: Any,
    start: int,
    steps: int,
    lr: float,
    total: int,
    branch: Any,
    cooled_try: dict[float, Any],
    from_lr: float,
) -> dict[str, float]:
    """Every scorer's value for one candidate LR tried for ``steps`` from the branch point."""
    from lrpilot_service.engine.cooldown import cooldown_steps, cooled_score
    from lrpilot_service.engine.forecast import forecast_loss

    branch()
    held = _train(w, model, opt, batches, range(start, start + steps), lambda s: lr)
    held_val = w.val_loss(model)
    cooled = cooldown_steps(steps, COOLDOWN_SHARE)
    knee = start + steps - cooled
    branch()

    def cooling(s: int) -> float:
        return lr if s < knee else lr * (1 - (s - knee) / cooled)  # the engine's try segment

    cooled_losses = _train(w, model, opt, batches, range(start, start + steps), cooling)
    if steps == max(TRY_LENGTHS):
        cooled_try[lr] = ([cooling(s) for s in range(start, start + len(cooled_losses))], cooled_losses)
    ramp_end = start + round(RAMP_SHARE * steps)

    def ramped(s: int) -> float:  # from the branch's LR to the candidate's, then hold, then cool down
        if s < ramp_end:
            return from_lr + (lr - from_lr) * (s - start + 1) / (ramp_end - start)
        return cooling(s)

    branch()
    ramped_losses = _train(w, model, opt, batches, range(start, start + steps), ramped)
    ramped_ok = len(ramped_losses) == steps and all(math.isfinite(v) for v in ramped_losses)
    cooled_val = w.val_loss(model)
    ok = len(held) == steps and all(math.isfinite(v) for v in held)
    cool_ok = len(cooled_losses) == steps and all(math.isfinite(v) for v in cooled_losses)
    inf = math.inf
    return {
        f"exp@{steps}": forecast_loss(held, total - start).predicted if ok else inf,
        f"mean10@{steps}": statistics.fmean(held[-10:]) if ok else inf,
        f"cooldown@{steps}": cooled_score(cooled_losses, cooled).predicted if cool_ok else inf,
        f"val@{steps}": held_val if ok and math.isfinite(held_val) else inf,
        f"cooldown-val@{steps}": cooled_val if cool_ok and math.isfinite(cooled_val) else inf,
        f"ramped@{steps}": cooled_score(ramped_losses, cooled).predicted if ramped_ok else inf,
    }


def run_case(case: Case) -> dict[str, Any]:
    """Branch point, then per candidate: the tries (each length, held and cooled) and the continuation."""
    torch.set_num_threads(1)
    w = WORKLOADS[case.workload]
    total = w.total_steps
    t0 = round(case.branch_share * total)
    centre = w.grid_centre
    model = w.model(case.seed)
    opt = build(w, RunSpec(case.workload, "constant", centre, case.seed, total), model).optimizer
    batches = w.batch_indices(case.seed, total + max(TRY_LENGTHS))
    replicate_batches = w.batch_indices(case.seed + REPLICATE_SEED, total)
    warm = max(1, round(0.05 * total))

    def warmup(s: int) -> float:
        return centre * min(1.0, (s + 1) / warm)

    history = ([warmup(s) for s in range(t0)], _train(w, model, opt, batches, range(t0), warmup))
    finite = [v for v in history[1][-BRANCH_LEVEL_STEPS:] if math.isfinite(v)]
    level = {"val": w.val_loss(model), "train": statistics.fmean(finite) if finite else math.inf}
    snapshot = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()))

    def branch() -> None:
        model.load_state_dict(snapshot[0])
        opt.load_state_dict(copy.deepcopy(snapshot[1]))

    hold_until = total - round(ANNEAL_SHARE * total)

    def plan(lr: float) -> list[float]:
        return [lr if s < hold_until else lr * (total - s) / (total - hold_until) for s in range(t0, total)]

    rows: list[dict[str, float]] = []
    cooled_try: dict[float, Any] = {}
    for k in CANDIDATE_EXPONENTS:
        lr = centre * 10 ** (k / 2)
        row: dict[str, float] = {"lr": lr}
        for steps in TRY_LENGTHS:
            row.update(_scores(w, model, opt, batches, t0, steps, lr, total, branch, cooled_try, centre))
        lrs = plan(lr)
        for key, order in (("final", batches), (REPLICATE, replicate_batches)):
            branch()
            row[key], row[f"{key}{BEST}"] = _continue(w, model, opt, order, range(t0, total), lrs)
        rows.append(row)
    law = law_predictions(history, cooled_try, plan)
    lr_aware = lr_aware_law_predictions(history, cooled_try, plan)
    for row in rows:
        row[f"law@{max(TRY_LENGTHS)}"] = law.get(row["lr"], math.inf)
        row[f"law-lr@{max(TRY_LENGTHS)}"] = lr_aware.get(row["lr"], math.inf)
    return with_derived_scores({"case": case.__dict__, "branch": level, "rows": rows})


SCORERS = (
    *(
        f"{name}@{steps}"
        for name in ("exp", "mean10", "cooldown", "val", "cooldown-val", "ramped")
        for steps in TRY_LENGTHS
    ),
    HORIZON,
    RICH,
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


def rich_scores(rows: list[dict[str, float]], branch: dict[str, float]) -> list[float]:
    """The cooled try's validation score as the engine acts on it: where the branch's validation
    loss is at most ``RICH_GAP`` times its training loss (data that does not memorise), a later
    stage holds ``RICH_FACTOR`` times its pick (rich_data.py), so the plan at LR x follows the try
    at x / RICH_FACTOR: its score is read there, by linear interpolation in log-LR between the
    candidates (the lowest candidate's below them). Elsewhere it is the try's own score.
    """
    scores = [row[f"cooldown-val@{max(TRY_LENGTHS)}"] for row in rows]
    gap = rich_data.RICH_GAP
    if gap is None or not branch["val"] <= gap * branch["train"]:
        return scores
    logs = np.log10([row["lr"] for row in rows])
    finite = np.isfinite(scores)
    if finite.sum() < 2:
        return scores
    at = logs - math.log10(rich_data.RICH_FACTOR)
    read = np.interp(at, logs[finite], np.asarray(scores)[finite])
    return [float(v) if ok else math.inf for v, ok in zip(read, finite, strict=True)]


def with_derived_scores(result: dict[str, Any]) -> dict[str, Any]:
    """Add the scores derived from a case's tries: HORIZON, and RICH where the branch was recorded."""
    case = result["case"]
    total = WORKLOADS[case["workload"]].total_steps
    horizon = total - round(case["branch_share"] * total)
    rows = result["rows"]
    rich = rich_scores(rows, result["branch"]) if "branch" in result else [math.nan] * len(rows)
    for row, value in zip(rows, rich, strict=True):
        row[HORIZON] = horizon_score(row, horizon)
        row[RICH] = value
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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.forecasters", description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--branches", default="0.1,0.4", help="branch points as shares of the budget")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--summarise", action="store_true", help=f"summarise {OUT.name}, run nothing")
    args = p.parse_args(argv)
    if args.summarise:
        _print([with_derived_scores(r) for r in json.loads(OUT.read_text())])
        return 0
    cases = [
        Case(w, seed, float(share))
        for w in args.workloads.split(",")
        for seed in range(args.seeds)
        for share in args.branches.split(",")
    ]
    results = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for res in pool.map(run_case, cases):
            results.append(res)
            c = res["case"]
            print(f"{c['workload']} s{c['seed']} at {c['branch_share']:.0%}", file=sys.stderr)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results))
    _print(results)
    return 0


def _print(results: list[dict[str, Any]]) -> None:
    """Both truths (the best checkpoint only where the run recorded it), all workloads, then each."""
    truths = [False, *([True] if all(f"final{BEST}" in r["rows"][0] for r in results) else [])]
    groups = [("all workloads", results)] + [
        (name, [r for r in results if r["case"]["workload"] == name])
        for name in dict.fromkeys(r["case"]["workload"] for r in results)
    ]
    for title, group in groups:
        for best in truths:
            print("\n".join(summarise(group, title, best=best)), end="\n\n")


if __name__ == "__main__":
    raise SystemExit(main())
