"""How stable is the range test's bracket across seeds? ``python -m bench.range_test``.

The measurement behind the knee (docs/engine.md, round 15). For each workload and seed, the
engine's range test is replayed from the initial weights: the LR rises geometrically from
``lr_min`` to ``lr_max`` over the probe's steps (``budget.resolve``'s length), and the sweep stops
at the engine's loss guard (``divergence_factor`` times the largest recent loss) or a non-finite
loss. Its losses are then read by ``probe.bracket`` twice: with the minimum (the default: the top
at twice the LR of the smoothed minimum) and with the knee (lever ``probe-knee``: twice the first
LR whose smoothed loss is within ``KNEE`` of the drop of its minimum).

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
from dataclasses import dataclass
from unittest import mock

import torch

from bench.catapult import train_step
from bench.methods import optimizer_for
from bench.workloads import WORKLOADS
from lrpilot.protocol import TunerConfig
from lrpilot_service.engine import divergence, probe
from lrpilot_service.engine.budget import resolve

#: The knee's share of the drop (lever ``probe-knee``).
KNEE = 0.1
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


@dataclass(frozen=True)
class Tops:
    """One range test's bracket top under each rule."""

    knee: float
    minimum: float


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


def tops(workload: str, seed: int) -> Tops:
    """The bracket's top for one seed, read with the knee and with the minimum."""
    config = TunerConfig(total_steps=WORKLOADS[workload].budget(quick=False))
    losses, steps, stopped = sweep(workload, seed, config)

    def top() -> float:
        return probe.bracket(losses, steps, config.lr_min, config.lr_max, diverged_at=stopped).high

    with mock.patch.object(probe, "KNEE_SHARE", None):
        minimum = top()
    with mock.patch.object(probe, "KNEE_SHARE", KNEE):
        knee = top()
    return Tops(knee=knee, minimum=minimum)


def spread(values: list[float]) -> tuple[float, float]:
    """Geometric mean and the standard deviation of log10 (decades)."""
    logs = [math.log10(v) for v in values]
    return 10 ** statistics.fmean(logs), statistics.pstdev(logs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.range_test", description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--seeds", type=int, default=10)
    args = p.parse_args(argv)
    print(
        "| workload | tuned cosine LR | top, knee (geo. mean) | spread, knee (decades) "
        "| top, minimum (geo. mean) | spread, minimum (decades) |"
    )
    print("|---|---|---|---|---|---|")
    for workload in (w for w in args.workloads.split(",") if w):
        found = [tops(workload, seed) for seed in range(args.seeds)]
        knee, knee_sd = spread([t.knee for t in found])
        low, low_sd = spread([t.minimum for t in found])
        tuned = TUNED_COSINE.get(workload)
        print(
            f"| {workload} | {tuned if tuned is not None else '-'} | {knee:.3g} | {knee_sd:.2f} "
            f"| {low:.3g} | {low_sd:.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
