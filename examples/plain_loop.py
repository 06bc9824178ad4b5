"""lrpilot in a plain PyTorch loop: ask for the LR after every step.

    python examples/plain_loop.py

``Tuner(model=..., optimizer=...)`` sets the LR on the optimizer and takes and restores the
snapshots of each search stage itself. Without ``LRPILOT_URL`` the job runs embedded on
``$LRPILOT_DATABASE_URL`` (default ./lrpilot.db); ``lrpilot show JOB`` shows what it chose.
"""

from __future__ import annotations

import argparse
import time

import torch

from lrpilot import Tuner
from lrpilot.trace import StepTrace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--job", default=f"plain-{int(time.time())}")
    parser.add_argument("--trace", default=None, help="write the step trace into this directory")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    x = torch.randn(2048, 16)
    y = x @ torch.randn(16, 1) + 0.1 * torch.randn(2048, 1)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    trace = StepTrace(model, optimizer) if args.trace else None

    tuner = Tuner(args.job, lr_min=1e-3, lr_max=1.0, total_steps=args.steps, candidates=args.candidates,
                  model=model, optimizer=optimizer)  # fmt: skip
    order = torch.Generator().manual_seed(0)
    for step in range(args.steps):
        batch = torch.randint(0, len(x), (32,), generator=order)
        loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tuner.next_lr(step, loss.item())  # reports this step, sets the next step's LR
    tuner.close()
    if trace is not None:
        trace.save(args.trace, tuner)
    print(f"job {args.job}: done={tuner.done}, final lr {tuner.lr:.4g}")


if __name__ == "__main__":
    main()
