"""lrpilot as a ``torch.optim.lr_scheduler``: ``scheduler.step(loss)`` after ``optimizer.step()``.

    python examples/torch_scheduler.py

For code written around a scheduler object. ``LRPilotScheduler`` needs the model (for the
snapshots of each search stage): pass it to the Tuner or as ``model=``; without it the
constructor raises rather than search with restores that restore nothing.
"""

from __future__ import annotations

import argparse
import time

import torch

from lrpilot import Tuner
from lrpilot.integrations.torch import LRPilotScheduler
from lrpilot.trace import StepTrace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--job", default=f"scheduler-{int(time.time())}")
    parser.add_argument("--trace", default=None, help="write the step trace into this directory")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(2048, 16)
    y = (x[:, :4].sum(1) > 0).long()
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    trace = StepTrace(model, optimizer) if args.trace else None

    tuner = Tuner(args.job, lr_min=1e-4, lr_max=1e-1, total_steps=args.steps, candidates=args.candidates)
    scheduler = LRPilotScheduler(optimizer, tuner, model=model)
    order = torch.Generator().manual_seed(0)
    for _ in range(args.steps):
        batch = torch.randint(0, len(x), (64,), generator=order)
        loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step(loss)  # like ReduceLROnPlateau: the metric is this step's loss
    tuner.close()
    if trace is not None:
        trace.save(args.trace, tuner)
    print(f"job {args.job}: done={tuner.done}, final lr {scheduler.get_last_lr()[0]:.4g}")


if __name__ == "__main__":
    main()
