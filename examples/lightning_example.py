"""lrpilot tunes a Lightning run: one device, or ``--devices 2`` for ``strategy="ddp"`` on CPU.

    python examples/lightning_example.py              # one process
    python examples/lightning_example.py --devices 2  # two DDP processes: rank 0 talks to lrpilot

The callback gets the job's settings, not a Tuner: it builds the tuner once the DDP processes
exist, rank 0 alone talks to the service, and every rank applies the same LRs, snapshots and
restores. ``configure_optimizers`` returns the optimizer alone (lrpilot owns the LR).
Without ``LRPILOT_URL`` the job runs embedded on ``$LRPILOT_DATABASE_URL`` (default ./lrpilot.db).
"""

from __future__ import annotations

import argparse
import time

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from lrpilot.integrations.lightning import LRPilotCallback
from lrpilot.trace import StepTrace


class Regressor(L.LightningModule):
    """A small MLP on a noisy linear target."""

    def __init__(self, trace: bool = False) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
        self.trace: StepTrace | bool = trace

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)
        if self.trace:  # --trace: record what the optimizer really used (the tests read it)
            self.trace = StepTrace(self, optimizer)
        return optimizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--job", default=f"lightning-{int(time.time())}")
    parser.add_argument("--trace", default=None, help="write per-rank step traces into this directory")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)  # the same data and initial weights on every rank
    x = torch.randn(2048, 16)
    y = x @ torch.randn(16, 1) + 0.1 * torch.randn(2048, 1)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)

    callback = LRPilotCallback(
        args.job, lr_min=1e-3, lr_max=1.0, total_steps=args.steps, candidates=args.candidates
    )
    trainer = L.Trainer(
        max_steps=args.steps,
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        callbacks=[callback],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    model = Regressor(trace=args.trace is not None)
    trainer.fit(model, loader)
    if isinstance(model.trace, StepTrace):
        model.trace.save(args.trace, callback.tuner, rank=trainer.global_rank)
    if trainer.global_rank == 0 and callback.tuner is not None:
        print(f"job {args.job}: done={callback.tuner.done}, final lr {callback.tuner.lr:.4g}")


if __name__ == "__main__":
    main()
