"""How stable is the range test's bracket across seeds? ``python -m bench.range_test``.

The measurement behind the knee (docs/engine.md, round 15). For each workload and seed, the
engine's range test is replayed from the initial weights: the LR rises geometrically from
``lr_min`` to ``lr_max`` over the probe's steps (``budget.resolve``'s length), and the sweep stops
at the engine's loss guard (``divergence_factor`` times the largest recent loss) or a non-finite
loss. Its losses are then read by ``probe.bracket`` four ways (``probe.TOP_AT``): at the minimum
capped at the centre of the curve's floor (the default since round 16; the floor is the LRs whose
smoothed loss is within ``probe.FLOOR_SHARE`` of the drop of its minimum), at the floor's
geometric centre (lever ``probe-centre``), at its first LR (the knee, lever ``probe-knee``), and at
the minimum alone (lever ``probe-minimum``).

Per workload it prints the geometric mean of the bracket's top under each rule, its spread over
seeds (the standard deviation of log10 of the top, in decades), and the tuned cosine's peak LR
for reference (the grid optimum of docs/benchmarks.md). A bracket top that moves by decades from
seed to seed moves the whole search with it.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from unittest import mock

import torch

from bench.catapult import train_step
from bench.methods import optimizer_for
from bench.workloads import WORKLOADS
from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import divergence, probe
from lrpilot_service.engine.budget import resolve

#: The rules compared, as ``probe.TOP_AT`` names them.
RULES = ("capped", "centre", "knee", "minimum")
#: The tuned cosine's peak LR per workload (docs/benchmarks.md, 5 seeds, wide range grid).
TUNED_COSINE = {
    "digits_mlp": 0.01,
    "digits_cnn": 0.01,
    "char_lm": 0.01,
    "cancer_logreg": 0.01,
    "diabetes_mlp": 0.000316,
    "lm_bytes": 0.01,
    "teacher_cnn": 0.03,
    "friedman_mlp": 0.316,
}


def sweep(workload: str, seed: int, config: TunerConfig) -> tuple[list[float], int, int | None]:
    """The range test's losses from the initial weights, its length, and where the guard stopped it."""
    torch.set_num_threads(1)
    w = WORKLOADS[workload]
    steps = resolve(config).probe_steps
    model = w.model(seed)
    opt = optimizer_for(w, model.parameters(), config.lr_min)
    batches = w.batch_indices(seed, steps)
    losses: list[float] = []
    for i in range(steps):
        value, _ = train_step(
            w, model, opt, batches[i], probe.probe_lr(i, steps, config.lr_min, config.lr_max)
        )
        reference = divergence.reference_level(losses)
        threshold = divergence.loss_threshold(reference, config.divergence_factor)
        if not math.isfinite(value) or (threshold is not None and value > threshold):
            return losses, steps, len(losses)
        losses.append(value)
    return losses, steps, None


def tops(workload: str, seed: int) -> dict[str, float]:
    """The bracket's top for one seed, read by each rule."""
    config = TunerConfig(total_steps=WORKLOADS[workload].budget(quick=False))
    losses, steps, stopped = sweep(workload, seed, config)
    found = {}
    for rule in RULES:
        with mock.patch.object(probe, "TOP_AT", rule):
            found[rule] = probe.bracket(losses, steps, config.lr_min, config.lr_max, diverged_at=stopped).high
    return found


def spread(values: list[float]) -> tuple[float, float]:
    """Geometric mean and the standard deviation of log10 (decades)."""
    logs = [math.log10(v) for v in values]
    return 10 ** statistics.fmean(logs), statistics.pstdev(logs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.range_test", description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--seeds", type=int, default=10)
    args = p.parse_args(argv)
    heads = " | ".join(f"top, {rule} (geo. mean) | spread, {rule} (decades)" for rule in RULES)
    print(f"| workload | tuned cosine LR | {heads} |")
    print("|---|---" + "|---|---" * len(RULES) + "|")
    for workload in (w for w in args.workloads.split(",") if w):
        found = [tops(workload, seed) for seed in range(args.seeds)]
        cells = " | ".join("{:.3g} | {:.2f}".format(*spread([t[rule] for t in found])) for rule in RULES)
        tuned = TUNED_COSINE.get(workload, "-")
        print(f"| {workload} | {tuned} | {cells} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
