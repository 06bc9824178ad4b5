"""LRPilotScheduler, and the Lightning / Hugging Face callbacks driven by stand-in trainers."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import pytest
import torch

import lrpilot
from lrpilot import Tuner
from lrpilot.errors import WiringError
from lrpilot.integrations.huggingface import LRPilotHFCallback
from lrpilot.integrations.lightning import LRPilotCallback
from lrpilot.integrations.torch import LRPilotScheduler
from lrpilot.testing import ScriptedTransport, Window
from tests.client.integrations.models import LossModel

torch.set_num_threads(1)
PLAN = [Window(3, 0.1), Window(3, 0.2, action="snapshot", phase="search"), Window(3, 0.05, action="restore")]


def make() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    groups = [{"params": [model.weight]}, {"params": [model.bias], "lr": 7.0}]
    return model, torch.optim.SGD(groups, lr=1.0, momentum=0.9)


def loss_of(model: torch.nn.Module) -> torch.Tensor:
    return model(torch.ones(2, 4)).pow(2).mean()


def test_scheduler_reports_metrics_and_sets_every_group() -> None:
    model, optimizer = make()
    transport = ScriptedTransport(PLAN)
    tuner = Tuner("j", transport=transport, model=model, retry_deadline_s=0)
    calls = transport.network_calls
    scheduler = LRPilotScheduler(optimizer, tuner)
    assert transport.network_calls == calls  # the base constructor's step() stays local
    assert tuner.optimizer is optimizer
    assert scheduler.get_last_lr() == [0.1, 0.1]
    seen = []
    for _ in range(9):
        seen.append(scheduler.get_last_lr()[0])
        loss = loss_of(model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step(loss)  # a 0-dim tensor, like ReduceLROnPlateau's metrics
    assert seen == pytest.approx([0.1] * 3 + [0.2] * 3 + [0.05] * 3)
    assert [g["lr"] for g in optimizer.param_groups] == [tuner.lr] * 2
    scheduler.step()  # no metric: nothing reported
    assert tuner.step == 9


def test_scheduler_state_dict_is_plain_data() -> None:
    model, optimizer = make()
    tuner = Tuner("j", transport=ScriptedTransport(PLAN), retry_deadline_s=0)
    scheduler = LRPilotScheduler(optimizer, tuner, model=model)
    state = scheduler.state_dict()
    assert "tuner" not in state and state["job"] == "j"
    restored = pickle.loads(pickle.dumps(state))
    scheduler.load_state_dict(restored)
    assert scheduler.last_epoch == state["last_epoch"]


def test_lightning_callback_reports_optimizer_steps_only() -> None:
    model, optimizer = make()
    transport = ScriptedTransport(PLAN)
    tuner = Tuner("j", transport=transport, retry_deadline_s=0)
    callback = LRPilotCallback(tuner)
    trainer = SimpleNamespace(global_step=0, optimizers=[optimizer])
    callback.on_train_start(trainer, model)
    assert tuner.optimizer is optimizer and optimizer.param_groups[1]["lr"] == 0.1
    for batch_idx in range(12):
        loss = loss_of(model)
        loss.backward()
        if batch_idx % 2 == 1:  # accumulate two micro-batches per optimizer step
            callback.on_before_optimizer_step(trainer, model, optimizer)
            optimizer.step()
            optimizer.zero_grad()
            trainer.global_step += 1
        callback.on_train_batch_end(trainer, model, {"loss": loss}, None, batch_idx)
    assert tuner.step == 6
    assert transport.reports[0].grad_norms is not None and len(transport.reports[0].grad_norms) == 3
    callback.on_validation_end(trainer, model)  # any other hook is a harmless no-op
    callback.on_fit_end(trainer, model)
    assert transport.calls[-1] == "close"


def test_huggingface_callback_reads_each_steps_loss_from_the_model() -> None:
    model = LossModel()
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    transport = ScriptedTransport(PLAN)
    callback = LRPilotHFCallback(Tuner("j", transport=transport, retry_deadline_s=0))
    state, args, control = SimpleNamespace(global_step=0), SimpleNamespace(max_grad_norm=0), SimpleNamespace()
    callback.on_train_begin(args, state, control, model=model, optimizer=optimizer)
    x = torch.ones(2, 4)
    for step in range(6):
        for micro in range(2):  # gradient accumulation: the step's loss is the mean of its micro-batches
            model(x, labels=torch.full((2, 1), float(step + micro)))["loss"].backward()
        with torch.no_grad():
            model(x, labels=torch.zeros(2, 1))  # an evaluation forward: not a training loss
        callback.on_pre_optimizer_step(args, state, control, model=model)
        optimizer.param_groups[0]["lr"] = 123.0  # the Trainer's own scheduler fighting back
        callback.on_step_end(args, state, control, optimizer=optimizer, model=model)
        assert optimizer.param_groups[0]["lr"] == callback.tuner.lr
    first = transport.reports[0]
    assert len(set(first.losses)) == 3 and first.grad_norms is not None and len(first.grad_norms) == 3
    callback.on_train_end(args, state, control)
    assert transport.calls[-1] == "close"


def test_huggingface_callback_without_a_loss_says_how_to_fix_it() -> None:
    model, optimizer = make()  # a plain Linear: its output holds no loss
    callback = LRPilotHFCallback(Tuner("j", transport=ScriptedTransport(PLAN), retry_deadline_s=0))
    args, state, control = (
        SimpleNamespace(max_grad_norm=1.0),
        SimpleNamespace(global_step=0),
        SimpleNamespace(),
    )
    callback.on_train_begin(args, state, control, model=model, optimizer=optimizer)
    loss_of(model).backward()
    with pytest.raises(WiringError, match="record_loss"):
        callback.on_step_end(args, state, control, optimizer=optimizer)
    callback.record_loss(torch.tensor(0.5))  # what a compute_loss_func hands over
    callback.on_step_end(args, state, control, optimizer=optimizer)
    assert callback.tuner is not None and callback.tuner.step == 1


def test_scheduler_stepped_without_any_loss_is_an_error() -> None:
    model, optimizer = make()
    scheduler = LRPilotScheduler(optimizer, Tuner("j", transport=ScriptedTransport(PLAN), retry_deadline_s=0),
                                 model=model)  # fmt: skip
    scheduler.step()
    scheduler.step()  # a framework steps the scheduler just before its callback reports the loss
    with pytest.raises(WiringError, match=r"scheduler.step\(loss\)"):
        scheduler.step()


def test_lightning_callback_refuses_a_missing_loss_and_a_foreign_scheduler() -> None:
    model, optimizer = make()
    callback = LRPilotCallback(Tuner("j", transport=ScriptedTransport(PLAN), retry_deadline_s=0))
    foreign = SimpleNamespace(scheduler=torch.optim.lr_scheduler.StepLR(optimizer, 10))
    with pytest.raises(WiringError, match="return the optimizer alone"):
        callback.on_train_start(SimpleNamespace(global_step=0, optimizers=[optimizer],
                                                lr_scheduler_configs=[foreign]), model)  # fmt: skip
    trainer = SimpleNamespace(global_step=0, optimizers=[optimizer])
    callback.on_train_start(trainer, model)
    trainer.global_step = 1
    with pytest.raises(WiringError, match="'loss' key"):
        callback.on_train_batch_end(trainer, model, None, None, 0)


def test_importing_lrpilot_needs_no_framework() -> None:
    assert lrpilot.Tuner is Tuner
    assert "lightning" not in dir(lrpilot)
