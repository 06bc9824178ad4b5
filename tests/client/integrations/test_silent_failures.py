"""The three documented paths that failed silently (issue 10), with the real libraries.

Each test fails on the code before the fix: there, the Lightning DDP run finished with ranks of
different weights, the scheduler accepted a tuner with nothing to restore, and the Hugging Face
callback at the default ``logging_steps=500`` reported no loss at all.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from lrpilot import Tuner, embedded_transport
from lrpilot.errors import WiringError
from lrpilot.integrations.torch import LRPilotScheduler
from tests.client.integrations.models import LossModel
from tests.client.integrations.runs import check_run, run_script

SCRIPTS = Path(__file__).parent / "scripts"


def test_lightning_ddp_with_a_tuner_per_rank_is_refused_loudly(tmp_path: Path) -> None:
    pytest.importorskip("lightning")
    run = run_script(SCRIPTS / "lightning_tuner_per_rank.py", tmp_path, "--job", "per-rank")
    if run.returncode == 0:  # what the old code did: finish, with ranks that disagree
        check_run(run, "per-rank", ranks=2, steps=80)
    assert run.returncode != 0
    assert "each built its own Tuner" in run.stderr and "LRPilotCallback(job=" in run.stderr


def test_scheduler_without_a_model_is_refused(tmp_path: Path) -> None:
    model = torch.nn.Linear(4, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    tuner = Tuner("no-model", transport=embedded_transport(f"sqlite:///{tmp_path / 'j.db'}"), total_steps=40,
                  candidates=2)  # fmt: skip
    with pytest.raises(WiringError, match=r"LRPilotScheduler\(optimizer, tuner, model=model\)"):
        LRPilotScheduler(optimizer, tuner)  # the documented Hugging Face recipe, without model=
    tuner.close()


class _Data(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.x = torch.randn(1024, 8, generator=generator)
        self.y = self.x.sum(1, keepdim=True)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[index], "labels": self.y[index]}


@pytest.mark.parametrize("logging_steps", [500, 10])
def test_hf_callback_reports_every_step_whatever_logging_steps(logging_steps: int, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from transformers import Trainer, TrainingArguments

    from lrpilot.integrations.huggingface import LRPilotHFCallback

    torch.manual_seed(0)
    model = LossModel(features=8)
    transport = embedded_transport(f"sqlite:///{tmp_path / 'hf.db'}")
    tuner = Tuner("hf-logging", transport=transport, lr_min=1e-3, lr_max=0.3, total_steps=60, candidates=2,
                  model=model)  # fmt: skip
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=60, per_device_train_batch_size=16,
                             logging_steps=logging_steps, report_to=[], save_strategy="no", use_cpu=True,
                             disable_tqdm=True)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Trainer(model=model, args=args, train_dataset=_Data(),
                          callbacks=[LRPilotHFCallback(tuner, close_on_end=False)])  # fmt: skip
        trainer.train()
    assert tuner.step == 60 and tuner.done
    losses = [step.loss for step in tuner.schedule().steps]
    assert len(losses) == 60 and len(set(losses)) == 60  # one real loss per step, no copies of an average
    assert len({step.lr for step in tuner.schedule().steps}) > 2  # the LR moved: searched, then annealed
    tuner.close()
