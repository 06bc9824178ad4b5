"""The Tuner against a scripted transport: windows, boundaries, snapshot/restore, resume."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from lrpilot import JobConflictError, Tuner
from lrpilot.testing import ScriptedTransport, Window

torch.set_num_threads(1)

PLAN = [
    Window(4, 0.01, 0.04, phase="warmup", stage=-1),
    Window(3, 0.1, action="snapshot", phase="search", stage=0),
    Window(3, 0.3, action="restore", phase="search", stage=0),
    Window(5, 0.1, action="restore", phase="exploit", stage=0),
]


def run(tuner: Tuner, steps: int, loss: float = 1.0) -> list[float]:
    """The LR in effect at each step (what the loop trained with)."""
    used = []
    for step in range(steps):
        used.append(tuner.lr)
        tuner.next_lr(step, loss)
    return used


def test_posts_once_per_window_and_never_between() -> None:
    transport = ScriptedTransport(PLAN)
    tuner = Tuner("j", transport=transport, retry_deadline_s=0)
    assert transport.calls == ["create_or_attach"]
    boundaries = {3, 6, 9, 14}  # the step after which each window ends
    for step in range(15):
        before = transport.network_calls
        tuner.next_lr(step, 1.0)
        assert transport.network_calls - before == (1 if step in boundaries else 0), step
    assert tuner.done
    assert [r.start_step for r in transport.reports.values()] == [0, 4, 7, 10]
    tuner.next_lr(15, 1.0)  # after done: no I/O, LR kept
    assert transport.network_calls == 5


def test_lr_follows_decisions_including_ramps() -> None:
    tuner = Tuner("j", transport=ScriptedTransport(PLAN), retry_deadline_s=0)
    used = run(tuner, 15)
    assert used[:4] == pytest.approx([0.01, 0.0175, 0.025, 0.0325])
    assert used[4:] == pytest.approx([0.1] * 3 + [0.3] * 3 + [0.1] * 5)
    transport = tuner._transport
    assert isinstance(transport, ScriptedTransport)
    assert all(
        r.lrs == pytest.approx(used[r.start_step : r.start_step + len(r.losses)])
        for r in transport.reports.values()
    )
    assert tuner.lr == pytest.approx(0.1)  # done keeps the last LR


def test_snapshot_and_restore_where_decided_and_lr_set_after_restore() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    tuner = Tuner(
        "j", transport=ScriptedTransport(PLAN), model=model, optimizer=optimizer, retry_deadline_s=0
    )
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    weights: dict[int, torch.Tensor] = {}
    for step in range(15):
        weights[step] = model.weight.detach().clone()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(tuner.lr)
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        tuner.next_lr(step, loss)
    # the snapshot was taken before step 4; steps 7 and 10 start from it again (restores)
    assert torch.equal(weights[7], weights[4]) and torch.equal(weights[10], weights[4])
    assert not torch.equal(weights[5], weights[4]) and not torch.equal(weights[11], weights[4])
    # and the new LR was set after each restore (the restored optimizer state carried the old one)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1)


def test_early_stop_guard_posts_a_short_window() -> None:
    transport = ScriptedTransport([Window(10, 0.1, max_loss=5.0), Window(3, 0.05)])
    tuner = Tuner("j", transport=transport, retry_deadline_s=0)
    for step, loss in enumerate([1.0, 2.0, 9.0, 1.0]):
        tuner.next_lr(step, loss)
    assert transport.reports[0].losses == [1.0, 2.0, 9.0]
    assert tuner.decision.window == 1 and tuner.decision.start_step == 3
    tuner.next_lr(4, math.nan)  # NaN stops too (any decision's guard)
    assert len(transport.reports[1].losses) == 2


def test_val_fn_called_at_eval_steps_and_reported() -> None:
    transport = ScriptedTransport([Window(5, 0.1, eval_at=(1, 4)), Window(5, 0.1)])
    calls = []

    def val() -> float:
        calls.append(tuner.step)
        return 0.5

    tuner = Tuner("j", transport=transport, val_fn=val, retry_deadline_s=0)
    run(tuner, 5)
    assert transport.reports[0].val_losses == {1: 0.5, 4: 0.5}
    assert len(calls) == 2


def test_tensor_losses_grad_norms_and_close_flushes_partial_window() -> None:
    transport = ScriptedTransport([Window(10, 0.1)])
    with Tuner("j", transport=transport, retry_deadline_s=0) as tuner:
        for step in range(4):
            tuner.next_lr(step, torch.tensor(1.5), grad_norm=torch.tensor(2.0))
    assert transport.reports[0].losses == [1.5] * 4
    assert transport.reports[0].grad_norms == [2.0] * 4
    assert transport.calls[-1] == "close"


def test_resume_by_job_name_reattaches_where_the_job_stands() -> None:
    transport = ScriptedTransport(PLAN)
    first = Tuner("j", transport=transport, retry_deadline_s=0)
    run(first, 6)
    first.close()  # reports steps 4..5 of window 1 as a short window
    second = Tuner("j", transport=transport, retry_deadline_s=0)
    assert second.step == 6 and second.decision.window == 2
    assert second.lr == pytest.approx(0.3)
    for step in range(6, 9):
        second.next_lr(step, 1.0)
    assert transport.reports[2].start_step == 6


def test_step_mismatch_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    tuner = Tuner("j", transport=ScriptedTransport([Window(10, 0.1)]), retry_deadline_s=0)
    with caplog.at_level(logging.WARNING, logger="lrpilot"):
        for step in range(5):
            tuner.next_lr(step + 100, 1.0)
    assert len(caplog.records) == 1 and "authoritative" in caplog.text
    assert tuner.step == 5


def test_unknown_option_is_a_type_error_naming_the_valid_ones() -> None:
    with pytest.raises(TypeError, match="warmup_steps"):
        Tuner("j", transport=ScriptedTransport(PLAN), warmup_stpes=10)


def test_client_errors_at_construction_raise() -> None:
    def conflict(call: str) -> BaseException | None:
        return JobConflictError("different config") if call == "create_or_attach" else None

    with pytest.raises(JobConflictError):
        Tuner("j", transport=ScriptedTransport(PLAN, fail=conflict))
    with pytest.raises(ValueError, match="lr_min"):
        Tuner("j", transport=ScriptedTransport(PLAN), lr_min=1.0, lr_max=0.1)


def test_a_val_fn_makes_validation_loss_the_objective_unless_told_otherwise() -> None:
    tuner = Tuner("j", transport=ScriptedTransport(PLAN), val_fn=lambda: 1.0, retry_deadline_s=0)
    assert tuner.config.objective == "val"
    explicit = Tuner(
        "k", transport=ScriptedTransport(PLAN), val_fn=lambda: 1.0, objective="train", retry_deadline_s=0
    )
    assert explicit.config.objective == "train"
    assert Tuner("m", transport=ScriptedTransport(PLAN), retry_deadline_s=0).config.objective == "train"


def train_linear(
    tuner: Tuner, model: torch.nn.Linear, optimizer: torch.optim.Optimizer, steps: int
) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Train ``steps`` steps of a regression: the weights each step starts from, and those each
    step's update left (before the tuner acted on its decision)."""
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    start: dict[int, torch.Tensor] = {}
    trained: dict[int, torch.Tensor] = {}
    for step in range(steps):
        start[step] = model.weight.detach().clone()
        loss = torch.nn.functional.mse_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        trained[step] = model.weight.detach().clone()
        tuner.next_lr(step, loss)
    start[steps] = model.weight.detach().clone()
    return start, trained


KEEP_PLAN = [
    Window(4, 0.1, action="snapshot", phase="search", stage=0, eval_at=(3,)),
    Window(4, 0.3, action="restore", phase="search", stage=0, eval_at=(3,), keep="save"),  # try 1's end
    Window(4, 0.2, action="restore", phase="exploit", stage=0, eval_at=(3,)),
]


def keeping_tuner(vals: list[float]) -> tuple[Tuner, torch.nn.Linear, torch.optim.Optimizer]:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    measured = iter(vals)
    tuner = Tuner(
        "j",
        transport=ScriptedTransport(KEEP_PLAN, end_keep="load"),
        model=model,
        optimizer=optimizer,
        val_fn=lambda: next(measured),
        retry_deadline_s=0,
    )
    return tuner, model, optimizer


def test_the_best_model_is_saved_before_the_action_and_loaded_at_the_end() -> None:
    tuner, model, optimizer = keeping_tuner([0.5, 0.7, 0.9])
    start, trained = train_linear(tuner, model, optimizer, 12)
    assert torch.equal(start[4], start[0]) and torch.equal(start[8], start[0])  # the stage's restores
    assert torch.equal(start[12], trained[3])  # the end loaded the model try 1 ended with
    assert not torch.equal(trained[11], trained[3])
    assert optimizer.param_groups[0]["lr"] == pytest.approx(tuner.lr)  # the LR set after the load


def test_a_load_not_backed_by_the_clients_own_measurements_keeps_the_last_model(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tuner, model, optimizer = keeping_tuner([0.9, 0.7, 0.5])  # the kept model measured worse
    with caplog.at_level(logging.WARNING, logger="lrpilot"):
        start, trained = train_linear(tuner, model, optimizer, 12)
    assert torch.equal(start[12], trained[11])
    assert "keeping the last" in caplog.text


def test_a_val_fn_turns_keep_best_on_unless_told_otherwise() -> None:
    assert Tuner("j", transport=ScriptedTransport(PLAN), val_fn=lambda: 1.0).config.keep_best
    off = Tuner("k", transport=ScriptedTransport(PLAN), val_fn=lambda: 1.0, keep_best=False)
    assert not off.config.keep_best
    assert not Tuner("l", transport=ScriptedTransport(PLAN)).config.keep_best
