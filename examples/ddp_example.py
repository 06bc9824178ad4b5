"""lrpilot with raw DistributedDataParallel: rank 0 talks to the service, every rank follows.

    torchrun --nproc-per-node 2 examples/ddp_example.py

Build a ``DistributedTuner`` (not a Tuner) on every rank after ``init_process_group``, with the
same arguments: rank 0 holds the one Tuner; the LR, the snapshots and the restores are broadcast,
so the replicas stay identical. Each rank reports its own loss; ``average_loss=True`` reports
their mean.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from lrpilot.integrations import grad_norm
from lrpilot.integrations.ddp import DistributedTuner
from lrpilot.trace import StepTrace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--job", default=f"ddp-{int(time.time())}")
    parser.add_argument("--trace", default=None, help="write per-rank step traces into this directory")
    args = parser.parse_args()

    torch.set_num_threads(1)
    dist.init_process_group("gloo")  # torchrun sets RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
    rank = dist.get_rank()
    torch.manual_seed(0)
    x = torch.randn(2048, 16)
    y = x @ torch.randn(16, 1) + 0.1 * torch.randn(2048, 1)
    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    model = DistributedDataParallel(net)  # broadcasts rank 0's initial weights
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    trace = StepTrace(net, optimizer) if args.trace else None

    tuner = DistributedTuner(args.job, net, optimizer, lr_min=1e-3, lr_max=1.0, total_steps=args.steps,
                             candidates=args.candidates, average_loss=True)  # fmt: skip
    order = torch.Generator().manual_seed(1 + rank)  # each rank its own batches
    for step in range(args.steps):
        batch = torch.randint(0, len(x), (32,), generator=order)
        loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
        optimizer.zero_grad()
        loss.backward()
        norm = grad_norm(net.parameters())  # before clipping, if you clip: the guard's signal
        optimizer.step()
        tuner.next_lr(step, loss.item(), norm)
    tuner.close()
    if trace is not None:
        trace.save(args.trace, tuner)
    if rank == 0:
        print(f"job {args.job}: done={tuner.done}, final lr {tuner.lr:.4g}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
