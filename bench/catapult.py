"""Does an LR above every try pay, and what do its loss spikes look like? ``python -m bench.catapult``.

The measurement behind the reach (docs/engine.md, round 14). A model is trained to a branch point
(a linear warmup to the base LR, then the base LR held), and from that one snapshot each target
LR is trained for the rest of the budget: a rise to it from the base LR (none, or over ``--rise``
steps), the target held, then a linear anneal to zero over the last ``ANNEAL_SHARE``. For every
branch it prints the final validation loss and the loss spikes the engine's guard would see: a
step whose loss passes ``divergence_factor`` (3) times the largest of the 16 losses before the
branch, or whose gradient norm passes 10x their median (the engine's two guards). A spell is a
run of such steps; a catapult is a spell after which the loss comes back down.

Every branch sees the same batches (the workload's fixed order), so the differences are the LR's.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
from dataclasses import dataclass

import torch
from torch import nn

from bench.methods import optimizer_for
from bench.workloads import WORKLOADS, Workload
from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import divergence

#: The last share of the budget anneals linearly to zero (as lrpilot's finish does by default).
ANNEAL_SHARE = 0.2


@dataclass(frozen=True)
class Branch:
    """One target LR from the snapshot: how it ended, and how its loss spiked."""

    target: float
    rise: int
    final_val: float
    spells: int  # runs of steps past a guard
    longest: int  # the longest such run, in steps
    peak: float  # the highest loss among them (0 when none)


def train_step(
    workload: Workload, model: nn.Module, opt: torch.optim.Optimizer, idx: torch.Tensor, lr: float
) -> tuple[float, float]:
    """One optimiser step at ``lr``; returns the minibatch loss before it and the gradient norm."""
    data = workload.data()
    for group in opt.param_groups:
        group["lr"] = lr
    loss = workload.loss(model, data.train_x[idx], data.train_y[idx])
    opt.zero_grad(set_to_none=True)
    loss.backward()  # type: ignore[no-untyped-call]
    norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf")))
    opt.step()
    return float(loss.detach()), norm


def branches(
    workload_name: str,
    seed: int,
    base: float,
    targets: list[float],
    rises: list[int],
    branch_at: int,
    warmup: int,
    total: int | None = None,
) -> list[Branch]:
    """Train to ``branch_at`` at ``base`` (after ``warmup`` steps of rise), then every target x rise
    to ``total`` steps (default: the workload's budget)."""
    torch.set_num_threads(1)
    workload = WORKLOADS[workload_name]
    total = total or workload.budget(quick=False)
    batches = workload.batch_indices(seed, total)
    model = workload.model(seed)
    opt = optimizer_for(workload, model.parameters(), base)
    losses, grads = [], []
    for i in range(branch_at):
        loss, norm = train_step(workload, model, opt, batches[i], base * min(1.0, (i + 1) / max(1, warmup)))
        losses.append(loss)
        grads.append(norm)
    # the engine's own guards, from the losses and gradient norms it keeps before a stage
    max_loss = divergence.loss_threshold(divergence.reference_level(losses), TunerConfig().divergence_factor)
    max_grad = divergence.grad_threshold(grads[-divergence.HISTORY :])
    remaining = total - branch_at
    anneal_from = remaining - round(ANNEAL_SHARE * remaining)
    out = []
    for target in targets:
        for rise in rises:
            m = copy.deepcopy(model)
            o = optimizer_for(workload, m.parameters(), base)
            o.load_state_dict(opt.state_dict())  # the optimizer's state too (momentum, moments)
            spells = longest = run = 0
            peak = 0.0
            for j in range(remaining):
                if j < rise:
                    lr = base + (target - base) * (j + 1) / rise
                elif j < anneal_from:
                    lr = target
                else:
                    lr = target * (remaining - j) / (remaining - anneal_from)
                loss, norm = train_step(workload, m, o, batches[branch_at + j], lr)
                past = not (loss <= (max_loss or math.inf) and norm <= (max_grad or math.inf))  # NaN: past
                run = run + 1 if past else 0
                spells += run == 1
                longest = max(longest, run)
                peak = max(peak, loss) if past and math.isfinite(loss) else peak
            m.eval()
            out.append(Branch(target, rise, workload.val_loss(m), spells, longest, peak))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.catapult", description=__doc__.split("\n")[0])
    p.add_argument("--workload", default="friedman_mlp")
    p.add_argument("--seeds", default="0,1", help="comma list of seeds")
    p.add_argument("--base", type=float, default=0.1, help="the LR trained to the branch point")
    p.add_argument("--targets", default="0.1,0.2,0.316", help="comma list of LRs held after the branch")
    p.add_argument("--rises", default="0,141", help="comma list of rise lengths (steps) to each target")
    p.add_argument("--branch-at", type=int, default=500, help="the branch point (step)")
    p.add_argument("--warmup", type=int, default=100, help="linear warmup to the base LR (steps)")
    p.add_argument("--total", type=int, default=None, help="steps in all (default: the workload's budget)")
    args = p.parse_args(argv)
    targets = [float(t) for t in args.targets.split(",")]
    rises = [int(r) for r in args.rises.split(",")]
    columns = ["seed", "target LR", "rise (steps)", "final validation", "spells past a guard"]
    print("| " + " | ".join([*columns, "longest spell", "highest loss"]) + " |")
    print("|---|---|---|---|---|---|---|")
    for seed in (int(s) for s in args.seeds.split(",")):
        for b in branches(
            args.workload, seed, args.base, targets, rises, args.branch_at, args.warmup, args.total
        ):
            rise = "-" if b.rise == 0 else str(b.rise)
            peak = f"{b.peak:.3g}" if b.spells else "-"
            print(
                f"| {seed} | {b.target:g} | {rise} | {b.final_val:.4f} | {b.spells} | {b.longest} | {peak} |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
