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
the steps left), ``rich-val`` (read where the engine's rich-data raise takes the pick) and
``area-val`` (``rich-val``, plus the progress a candidate below the pick forgoes over the plan, by
the branch history's fall of the loss in log-area: the engine's own charge, engine/river.py, so
this is how the engine ranks a stage's candidates). The laws of bench/loss_laws.py fit the
branch's history and every try. Each case also stores the history's training losses and every
try's (``history``, ``curves``), so a new scorer can be measured without training again.

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
from pathlib import Path
from typing import Any

import torch

from bench.forecaster_scores import (
    ANNEAL_SHARE,
    BEST,
    COOLDOWN_SHARE,
    REPLICATE,
    TRY_LENGTHS,
    branch_lrs,
    summarise,
    with_derived_scores,
)
from bench.loss_laws import law_predictions, lr_aware_law_predictions
from bench.methods import RunSpec, build, eval_points
from bench.runner import RESULTS_DIR
from bench.workloads import WORKLOADS, Workload

OUT = RESULTS_DIR / "forecasters.json"

CANDIDATE_EXPONENTS = (-2, -1, 0, 1, 2)  # half-decade steps around the grid centre
RAMP_SHARE = 0.3  # ramped tries rise from the branch's LR to the candidate's over this share
#: Each candidate's plan is trained twice from the branch (see bench.forecaster_scores.REPLICATE).
REPLICATE_SEED = 1_000
#: The branch's training-loss level: the mean of its last steps (compared with its validation loss
#: to tell data that memorises from data that does not, as the engine's rich_data rule does).
BRANCH_LEVEL_STEPS = 20


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
    curves: dict[str, Any],
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
    curves[f"{lr!r}@{steps}"] = {"held": held, "cooled": cooled_losses}
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
    warmup = branch_lrs(centre, total, t0)
    history = (warmup, _train(w, model, opt, batches, range(t0), warmup.__getitem__))
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
    curves: dict[str, Any] = {}
    for k in CANDIDATE_EXPONENTS:
        lr = centre * 10 ** (k / 2)
        row: dict[str, float] = {"lr": lr}
        for steps in TRY_LENGTHS:
            row.update(
                _scores(w, model, opt, batches, t0, steps, lr, total, branch, cooled_try, centre, curves)
            )
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
    result = {"case": case.__dict__, "branch": level, "rows": rows, "history": history[1], "curves": curves}
    return with_derived_scores(result)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.forecasters", description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--first-seed", type=int, default=0, help="the first seed run")
    p.add_argument("--out", default=str(OUT), help="where the cases are written (and read by --summarise)")
    p.add_argument("--branches", default="0.1,0.4", help="branch points as shares of the budget")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument(
        "--summarise",
        nargs="*",
        metavar="FILE",
        help="run nothing: summarise the cases of these files pooled (none given: --out)",
    )
    args = p.parse_args(argv)
    if args.summarise is not None:
        files = args.summarise or [args.out]
        _print([with_derived_scores(r) for f in files for r in json.loads(Path(f).read_text())])
        return 0
    cases = [
        Case(w, seed, float(share))
        for w in args.workloads.split(",")
        for seed in range(args.first_seed, args.first_seed + args.seeds)
        for share in args.branches.split(",")
    ]
    results = []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for res in pool.map(run_case, cases):
            results.append(res)
            c = res["case"]
            print(f"{c['workload']} s{c['seed']} at {c['branch_share']:.0%}", file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results))
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
