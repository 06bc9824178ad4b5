"""lrpilot tunes a Hugging Face ``Trainer`` run: one process, or under ``torchrun``.

    python examples/huggingface_trainer.py
    torchrun --nproc-per-node 2 examples/huggingface_trainer.py

The callback gets the job's settings and builds the tuner when training begins (under torchrun:
rank 0 alone talks to the service, every rank follows). It reads each optimizer step's loss from
the model's output, so ``logging_steps`` stays whatever you like; after every step it puts the
tuner's LR back on the optimizer, after the Trainer's own scheduler. The model here is a tiny BERT
built from a config (no download) on a made-up task: is the token 7 in the sequence?
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from lrpilot.integrations.huggingface import LRPilotHFCallback
from lrpilot.trace import StepTrace


class Sequences(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self, count: int, length: int = 12, vocab: int = 32) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(1, vocab, (count, length), generator=generator)
        self.labels = (self.ids == 7).any(1).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--candidates", type=int, default=3)
    parser.add_argument("--job", default=f"hf-{int(time.time())}")
    parser.add_argument("--trace", default=None, help="write per-rank step traces into this directory")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=32, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=16, num_labels=2)  # fmt: skip
    model = BertForSequenceClassification(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    trace = StepTrace(model, optimizer) if args.trace else None
    callback = LRPilotHFCallback(
        args.job, lr_min=1e-4, lr_max=3e-2, total_steps=args.steps, candidates=args.candidates
    )
    training = TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="lrpilot-hf-"),
        max_steps=args.steps,
        per_device_train_batch_size=16,
        logging_steps=500,  # the default: lrpilot does not depend on it
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    trainer = Trainer(model=model, args=training, train_dataset=Sequences(4096), callbacks=[callback],
                      optimizers=(optimizer, None))  # fmt: skip
    trainer.train()
    tuner: Any = callback.tuner
    if trace is not None:
        trace.save(args.trace, tuner, rank=training.process_index)
    if training.process_index == 0:
        print(f"job {args.job}: done={tuner.done}, final lr {tuner.lr:.4g}")


if __name__ == "__main__":
    main()
