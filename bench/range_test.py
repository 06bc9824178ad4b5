"""How stable is the range test's bracket across seeds? ``python -m bench.range_test``.

The measurement behind the knee (docs/engine.md, round 15). For each workload and seed, the
engine itself runs its range test on the workload from the initial weights, decision by
decision: the locating pass, the restore, and the test proper (round 18; ``--fixed``: one sweep
of the whole range at one pace, the test before), stopping at the engine's loss guard
(``divergence_factor`` times the largest recent loss) or a non-finite loss. Its losses are then
read by ``probe.bracket`` four ways (``probe.TOP_AT``): at the minimum capped at the centre of the
curve's floor (the default since round 16; the floor is the LRs whose smoothed loss is within
``probe.FLOOR_SHARE`` of the drop of its minimum), at the floor's geometric centre (lever
``probe-centre``), at its first LR (the knee, lever ``probe-knee``), and at the minimum alone
(lever ``probe-minimum``).

Per workload it prints the median of the steps the test consumed, the geometric mean of the
bracket's top under each rule, its spread over seeds (the standard deviation of log10 of the top,
in decades), and the tuned cosine's peak LR for reference (the grid optimum of
docs/benchmarks.md). A bracket top that moves by decades from seed to seed moves the whole search
with it.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
from unittest import mock

import torch

from bench.catapult import train_step
from bench.methods import optimizer_for
from bench.workloads import WORKLOADS
from lrpilot.protocol import TunerConfig, WindowReport
from lrpilot_service.engine import advance, probe
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


def sweep(workload: str, seed: int, config: TunerConfig) -> tuple[list[float], list[float], int | None, int]:
    """The engine's range test on the workload from its initial weights, driven decision by
    decision (the locating pass, the restore, the test proper): its losses, the LR of each, where
    the guard stopped it, and the steps it consumed."""
    torch.set_num_threads(1)
    w = WORKLOADS[workload]
    model = w.model(seed)
    opt = optimizer_for(w, model.parameters(), config.lr_min)
    batches = w.batch_indices(seed, config.total_steps or 1)
    state, d = advance(config, None, None)
    snapshot = copy.deepcopy((model.state_dict(), opt.state_dict()))
    while d.phase == "probe":
        if d.action == "restore":
            model.load_state_dict(snapshot[0])
            opt.load_state_dict(snapshot[1])
        losses: list[float] = []
        for step in range(d.start_step, d.start_step + d.steps):
            losses.append(train_step(w, model, opt, batches[step], d.lr_at(step))[0])
            if d.should_stop(losses[-1]):
                break
        state, d = advance(config, state, WindowReport(start_step=d.start_step, losses=losses))
    found = state["probe"]
    assert found is not None
    return found["losses"], found["lrs"], found["diverged_at"], d.start_step


def tops(workload: str, seed: int) -> dict[str, float]:
    """The bracket's top for one seed, read by each rule, and the steps the test consumed."""
    config = TunerConfig(total_steps=WORKLOADS[workload].budget(quick=False))
    losses, lrs, stopped, consumed = sweep(workload, seed, config)
    steps = resolve(config).probe_steps
    found = {"steps": float(consumed)}
    for rule in RULES:
        with mock.patch.object(probe, "TOP_AT", rule):
            found[rule] = probe.bracket(
                losses, steps, config.lr_min, config.lr_max, diverged_at=stopped, lrs=lrs
            ).high
    return found


def spread(values: list[float]) -> tuple[float, float]:
    """Geometric mean and the standard deviation of log10 (decades)."""
    logs = [math.log10(v) for v in values]
    return 10 ** statistics.fmean(logs), statistics.pstdev(logs)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.range_test", description=__doc__.split("\n")[0])
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--fixed", action="store_true", help="no locating pass: one sweep at one pace")
    args = p.parse_args(argv)
    with mock.patch.object(probe, "LOCATE_BELOW", 0.0 if args.fixed else probe.LOCATE_BELOW):
        _table([w for w in args.workloads.split(",") if w], args.seeds)
    return 0


def _table(workloads: list[str], seeds: int) -> None:
    heads = " | ".join(f"top, {rule} (geo. mean) | spread, {rule} (decades)" for rule in RULES)
    print(f"| workload | tuned cosine LR | steps (median) | {heads} |")
    print("|---|---|---" + "|---|---" * len(RULES) + "|")
    for workload in workloads:
        found = [tops(workload, seed) for seed in range(seeds)]
        cells = " | ".join("{:.3g} | {:.2f}".format(*spread([t[rule] for t in found])) for rule in RULES)
        tuned = TUNED_COSINE.get(workload, "-")
        steps = statistics.median(t["steps"] for t in found)
        print(f"| {workload} | {tuned} | {steps:g} | {cells} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
