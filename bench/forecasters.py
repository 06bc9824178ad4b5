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

import torch
from scipy.stats import spearmanr

from bench.methods import RunSpec, build
from bench.runner import RESULTS_DIR
from bench.workloads import WORKLOADS, Workload

OUT = RESULTS_DIR / "forecasters.json"

CANDIDATE_EXPONENTS = (-2, -1, 0, 1, 2)  # half-decade steps around the grid centre
COOLDOWN_SHARE = 0.3  # the engine's default try_cooldown
RAMP_SHARE = 0.3  # ramped tries rise from the branch's LR to the candidate's over this share
ANNEAL_SHARE = 0.2


TRY_LENGTHS = (10, 20, 40)


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


LAW_MOMENTUM = 0.99  # lambda of the annealing law, per step (short runs: a short memory)


def _areas(lrs: Any) -> tuple[Any, Any]:
    """S1 (the LR's running sum) and S2 (the momentum-smoothed sum of LR decreases), per step."""
    import numpy as np

    lrs = np.asarray(lrs, dtype=np.float64)
    s1 = np.cumsum(lrs)
    m, s2, prev, out = 0.0, 0.0, lrs[0], []
    for lr in lrs:
        m = LAW_MOMENTUM * m + max(prev - lr, 0.0)
        s2 += m
        prev = lr
        out.append(s2)
    return s1, np.asarray(out)


def _complete(lrs: Any, losses: Any) -> bool:
    """Did a try report a finite loss for every LR it was given (the laws fit only such tries)?"""
    return len(losses) == len(lrs) and all(math.isfinite(v) for v in losses)


def law_predictions(history: Any, tries: dict[float, Any], plan: Any) -> dict[float, float]:
    """Tissue et al.'s LR-annealing law fitted on the branch's history and every try, then evaluated
    at the end of each candidate's plan: L = L0 + A * S1^-alpha - C * S2 (see docs/references.md).

    ``history`` is (lrs, losses) up to the branch point, ``tries`` per candidate LR (lrs, losses)
    after it, ``plan(lr)`` the LRs from the branch point to the end of the budget.
    """
    import numpy as np
    from scipy.optimize import least_squares

    h_lrs, h_losses = (np.asarray(x, dtype=np.float64) for x in history)
    rows = []  # (S1, S2, loss) for every observed step
    s1, s2 = _areas(h_lrs)
    rows += list(zip(s1, s2, h_losses, strict=True))
    for t_lrs, t_losses in tries.values():
        if not _complete(t_lrs, t_losses):
            continue
        ts1, ts2 = _areas(np.concatenate([h_lrs, t_lrs]))
        n = len(t_lrs)
        rows += list(zip(ts1[-n:], ts2[-n:], t_losses, strict=True))
    data = np.asarray(rows)
    data = data[np.isfinite(data[:, 2]) & (data[:, 0] > 0)]
    scale = float(np.median(data[:, 2]))

    def residual(p: Any) -> Any:
        l0, log_a, alpha, c = p
        return (l0 + np.exp(log_a) * data[:, 0] ** (-alpha) - c * data[:, 1] - data[:, 2]) / scale

    fit = least_squares(
        residual,
        x0=[0.5 * scale, math.log(scale), 0.5, 0.0],
        bounds=([-np.inf, -50, 0.0, 0.0], [np.inf, 50, 3.0, np.inf]),
    )
    l0, log_a, alpha, c = fit.x
    out = {}
    for lr, (t_lrs, t_losses) in tries.items():
        if not _complete(t_lrs, t_losses):
            out[lr] = math.inf
            continue
        s1, s2 = _areas(np.concatenate([h_lrs, plan(lr)]))
        out[lr] = float(l0 + math.exp(log_a) * s1[-1] ** (-alpha) - c * s2[-1])
    return out


#: The LR-aware law's noise memory, per step: the loss sits above its noise-free level in
#: proportion to the recent LR, which an anneal removes.
NOISE_MOMENTUM = 0.9


def _lr_aware_features(lrs: Any, eta_c: float) -> tuple[Any, Any]:
    """E (the running sum of LR * exp(-LR / eta_c): progress per step peaks at eta_c and falls
    beyond it) and the momentum-smoothed LR (the noise an anneal removes), per step."""
    import numpy as np
    from scipy.signal import lfilter

    lrs = np.asarray(lrs, dtype=np.float64)
    efficiency = np.cumsum(lrs * np.exp(-lrs / eta_c))
    noise = lfilter([1 - NOISE_MOMENTUM], [1, -NOISE_MOMENTUM], lrs)
    return efficiency, noise


def lr_aware_law_predictions(history: Any, tries: dict[float, Any], plan: Any) -> dict[float, float]:
    """A law that can rank peak LRs: L = L0 + A * E^-alpha + D * m, with E the LR's area counted at
    an efficiency that peaks at eta_c, and m the smoothed LR (the noise level an anneal removes).

    The annealing laws (Tissue et al.; the multi-power law) make the loss fall with the LR's area,
    so a larger peak LR always predicts lower: they rank LRs backwards past the optimum. Here the
    efficiency eta * exp(-eta / eta_c) gives progress an optimum that the tries locate, and the
    noise term lets a cooled try and a held one disagree by how much the LR still costs.
    Fitted on the branch's history and every try; evaluated at the end of each candidate's plan.
    """
    import numpy as np
    from scipy.optimize import least_squares

    h_lrs, h_losses = (np.asarray(x, dtype=np.float64) for x in history)
    series = [(h_lrs, h_losses, len(h_lrs))]
    for t_lrs, t_losses in tries.values():
        if _complete(t_lrs, t_losses):
            series.append((np.concatenate([h_lrs, t_lrs]), np.asarray(t_losses), len(t_lrs)))
    observed = np.concatenate([losses for _, losses, _ in series])
    keep = np.isfinite(observed)
    scale = float(np.median(observed[keep]))
    top = float(max(max(t) for t, _ in tries.values()))

    def predict(p: Any, lrs: Any) -> Any:
        l0, log_a, alpha, log_eta_c, d = p
        efficiency, noise = _lr_aware_features(lrs, math.exp(log_eta_c))
        return l0 + np.exp(log_a) * np.maximum(efficiency, 1e-12) ** (-alpha) + d * noise

    def residual(p: Any) -> Any:
        fitted = np.concatenate([predict(p, lrs)[-n:] for lrs, _, n in series])
        return (fitted - observed)[keep] / scale

    fit = least_squares(
        residual,
        x0=[0.5 * scale, math.log(scale), 0.5, math.log(top), 0.0],
        bounds=([-np.inf, -50, 0.0, math.log(top) - 12, 0.0], [np.inf, 50, 3.0, math.log(top) + 5, np.inf]),
    )
    out = {}
    for lr, (t_lrs, t_losses) in tries.items():
        complete = _complete(t_lrs, t_losses)
        out[lr] = float(predict(fit.x, np.concatenate([h_lrs, plan(lr)]))[-1]) if complete else math.inf
    return out


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
    warm = max(1, round(0.05 * total))

    def warmup(s: int) -> float:
        return centre * min(1.0, (s + 1) / warm)

    history = ([warmup(s) for s in range(t0)], _train(w, model, opt, batches, range(t0), warmup))
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
        branch()
        lrs = plan(lr)
        _train(w, model, opt, batches, range(t0, total), lambda s, lrs=lrs: lrs[s - t0])
        final = w.val_loss(model)
        row["final"] = final if math.isfinite(final) else math.inf
        rows.append(row)
    law = law_predictions(history, cooled_try, plan)
    lr_aware = lr_aware_law_predictions(history, cooled_try, plan)
    for row in rows:
        row[f"law@{max(TRY_LENGTHS)}"] = law.get(row["lr"], math.inf)
        row[f"law-lr@{max(TRY_LENGTHS)}"] = lr_aware.get(row["lr"], math.inf)
    return {"case": case.__dict__, "rows": rows}


SCORERS = (
    *(
        f"{name}@{steps}"
        for name in ("exp", "mean10", "cooldown", "val", "cooldown-val", "ramped")
        for steps in TRY_LENGTHS
    ),
    f"law@{max(TRY_LENGTHS)}",
    f"law-lr@{max(TRY_LENGTHS)}",
)


def summarise(results: list[dict[str, Any]], title: str = "all workloads") -> list[str]:
    """Per scorer: median Spearman, share of cases >= 0.8, median regret of its pick, median |rel err|."""
    lines = [
        f"{title}:",
        "",
        "| scorer | median Spearman | cases with Spearman >= 0.8 | median regret of the pick | "
        "median relative error of the predicted final loss |",
        "|---|---|---|---|---|",
    ]
    for scorer in SCORERS:
        rhos, regrets, errors = [], [], []
        for res in results:
            rows = res["rows"]
            finals = [r["final"] for r in rows]
            scores = [r[scorer] for r in rows]
            rho = spearmanr(scores, finals).statistic
            rhos.append(0.0 if rho is None or math.isnan(rho) else float(rho))
            pick = min(range(len(rows)), key=lambda i: scores[i])
            best = min(f for f in finals if math.isfinite(f))
            regrets.append(finals[pick] / best if math.isfinite(finals[pick]) else math.inf)
            if scorer.startswith(("exp@", "law")):  # the scorers that predict the final loss itself
                errors += [
                    abs(r[scorer] / r["final"] - 1) for r in rows if math.isfinite(r[scorer] + r["final"])
                ]
        err = f"{statistics.median(errors):.1%}" if errors else "— (a rank score, not a loss)"
        lines.append(
            f"| {scorer} | {statistics.median(rhos):.2f} | {sum(r >= 0.8 for r in rhos)}/{len(rhos)} | "
            f"{statistics.median(regrets):.3f} | {err} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.forecasters", description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--branches", default="0.1,0.4", help="branch points as shares of the budget")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)
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
    for line in summarise(results):
        print(line)
    for name in dict.fromkeys(r["case"]["workload"] for r in results):
        print()
        for line in summarise([r for r in results if r["case"]["workload"] == name], name):
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
