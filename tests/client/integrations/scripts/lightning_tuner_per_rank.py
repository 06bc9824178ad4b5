"""The recipe of issue 10 that failed silently: under strategy="ddp" every rank builds its own Tuner.

Run by tests/client/integrations/test_silent_failures.py with ``--trace DIR`` like the examples.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightning as L
import torch

from lrpilot import Tuner
from lrpilot.integrations.lightning import LRPilotCallback

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "examples"))
from lightning_example import Regressor

parser = argparse.ArgumentParser()
parser.add_argument("--job")
parser.add_argument("--trace")
args = parser.parse_args()
torch.manual_seed(0)
x = torch.randn(2048, 16)
y = x @ torch.randn(16, 1)
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
model = Regressor(trace=True)
tuner = Tuner(args.job, lr_min=1e-3, lr_max=1.0, total_steps=80, candidates=2, model=model)  # on every rank
trainer = L.Trainer(
    max_steps=80,
    accelerator="cpu",
    devices=2,
    strategy="ddp",
    callbacks=[LRPilotCallback(tuner)],
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)
trainer.fit(model, loader)
model.trace.save(args.trace, tuner, rank=trainer.global_rank)
