"""The final hold of a val job stops when the model memorises: best model restored, then annealed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot_service.engine import advance, overfit_stop
from lrpilot_service.engine.budget import resolve
from lrpilot_service.engine.finish import planning_limit
from lrpilot_service.engine.state import State
from tests.engine.test_planner import exploit_with_val

TOTAL = 2000


def config(**fields: object) -> TunerConfig:
    return TunerConfig.model_validate(
        {"probe": "none", "warmup_steps": 0, "candidates": 3, "search_stages": 1, "objective": "val",
         "total_steps": TOTAL, "window_max": 50, **fields}
    )  # fmt: skip


def in_hold(cfg: TunerConfig, state: State) -> bool:
    limit = planning_limit(resolve(cfg))
    return state["phase"] == "exploit" and state["segment"]["end"] == limit


def to_hold(cfg: TunerConfig) -> tuple[State, Decision]:
    """Drive a job (flat losses, flat validation) to the first window of its final hold."""
    state, decision = advance(cfg, None, None)
    while not in_hold(cfg, state):
        vals = {s: 1.0 for s in decision.eval_at}
        report = WindowReport(start_step=decision.start_step, losses=[1.0] * decision.steps, val_losses=vals)
        state, decision = advance(cfg, state, report)
    return state, decision


def hold(cfg: TunerConfig, windows: list[tuple[float, float]]) -> Iterator[tuple[State, Decision]]:
    """Report (training loss, validation loss) hold windows; yield the state and decision after each."""
    state, decision = to_hold(cfg)
    for train, val in windows:
        last = decision.start_step + decision.steps - 1
        report = WindowReport(
            start_step=decision.start_step, losses=[train] * decision.steps, val_losses={last: val}
        )
        state, decision = advance(cfg, state, report)
        yield state, decision


# (the stage started at validation loss 1.0) validation falls to 0.9, then sits 5% above it while
# the training loss keeps falling: below the stage's start, so only the hold's rule can see it
MEMORISING = [(0.5, 0.95), (0.3, 0.9), (0.2, 0.945), (0.15, 0.95), (0.12, 0.945), (0.1, 0.95)]


def test_each_new_best_validation_loss_is_snapshotted() -> None:
    actions = [d.action for _, d in hold(config(), MEMORISING[:2])]
    assert actions == ["snapshot", "snapshot"]


def test_a_memorising_hold_restores_its_best_model_and_holds_lr_min() -> None:
    cfg = config()
    decisions = [d for _, d in hold(cfg, MEMORISING)]
    assert [d.action for d in decisions[2:5]] == ["evaluate"] * 3  # PATIENCE windows in a row
    decision = decisions[-1]
    assert decision.action == "restore" and "memorising" in decision.reason
    assert decision.phase == "anneal" and decision.lr == decision.lr_end == cfg.lr_min


def test_the_stop_can_anneal_from_the_restored_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overfit_stop, "ANNEAL_SHARE", 1.0)
    cfg = config()
    state, decision = to_hold(cfg)
    held = decision.lr
    *_, (state, decision) = hold(cfg, MEMORISING)
    assert decision.action == "restore" and decision.lr == pytest.approx(held) and decision.lr_end < held
    reserve = resolve(cfg).anneal_reserve
    assert state["segment"]["rise"] == decision.start_step + reserve  # the anneal spans the reserve
    assert state["segment"]["end"] == TOTAL and state["segment"]["lr"] == cfg.lr_min


def test_after_the_stop_the_job_holds_lr_min_to_its_budget() -> None:
    cfg = config()
    *_, (state, decision) = hold(cfg, MEMORISING)
    lrs, consumed = [], decision.start_step
    while decision.action != "done":
        lrs += [decision.lr_at(decision.start_step + i) for i in range(decision.steps)]
        consumed = decision.start_step + decision.steps
        report = WindowReport(start_step=decision.start_step, losses=[0.1] * decision.steps)
        state, decision = advance(cfg, state, report)
    assert consumed == TOTAL
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(cfg.lr_min)


def test_a_bouncing_validation_loss_with_a_flat_training_loss_is_not_memorising() -> None:
    # large data at a large LR: the validation loss bounces, the training loss does not fall
    windows = [(0.5, 0.95), (0.5, 0.9), *[(0.5, 0.95)] * 6]
    actions = [d.action for _, d in hold(config(), windows)]
    assert "restore" not in actions and all(d.phase == "exploit" for _, d in hold(config(), windows))


def test_a_window_back_near_the_best_restarts_the_count() -> None:
    windows = [(0.5, 0.95), (0.3, 0.9), (0.2, 0.945), (0.15, 0.945), (0.12, 0.91), (0.1, 0.945), (0.1, 0.95)]
    actions = [d.action for _, d in hold(config(), windows)]
    assert "restore" not in actions


def test_a_hold_above_the_stages_start_keeps_the_stages_snapshot() -> None:
    # a "best" worse than the stage's snapshot must not replace it: the stage's own overfitting
    # rule then restores the stage's snapshot (cancer and diabetes lost 3-4% when it did not)
    windows = [(0.5, 1.01), (0.3, 1.05), (0.2, 1.05)]
    decisions = [d for _, d in hold(config(), windows)]
    assert [d.action for d in decisions[:2]] == ["evaluate", "evaluate"]
    assert decisions[2].action == "restore" and "overfitting" in decisions[2].reason


def test_the_switch_turns_the_stop_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(overfit_stop, "STOP", False)
    actions = [d.action for _, d in hold(config(), MEMORISING)]
    assert "snapshot" not in actions and "restore" not in actions


def test_a_training_loss_job_never_stops_on_validation() -> None:
    cfg = config(objective="train")
    state, _ = to_hold(cfg)
    assert not overfit_stop.holding(state, cfg, resolve(cfg))


def end_of_first_exploit(cfg: TunerConfig, windows: list[tuple[float, float]]) -> list[Decision]:
    """Report (training, validation) windows, the last one repeated until the exploitation ends."""
    state, decision = exploit_with_val(cfg)
    decisions = []
    while decision.phase == "exploit" and decision.stage == 0 and len(decisions) < 50:
        train, val = windows[min(len(decisions), len(windows) - 1)]
        last = decision.start_step + decision.steps - 1
        report = WindowReport(
            start_step=decision.start_step, losses=[train] * decision.steps, val_losses={last: val}
        )
        state, decision = advance(cfg, state, report)
        decisions.append(decision)
    return decisions


# the exploitation's first window sets the stage's level (1.0); it then improves to 0.8 and
# memorises: validation 0.9, above its best, but below the stage's start, so no back-off fires
MEMORISING_STAGE = [(0.5, 1.0), (0.4, 0.8), (0.2, 0.9)]


def test_an_exploitation_that_ended_memorising_hands_on_its_best_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(overfit_stop, "EVERY_EXPLOIT", True)
    cfg = config(search_stages=2)
    decisions = end_of_first_exploit(cfg, MEMORISING_STAGE)
    assert decisions[1].action == "snapshot"  # the best so far
    rewind = decisions[-2]
    assert rewind.action == "restore" and "restore the best" in rewind.reason
    assert rewind.stage == 0 and rewind.phase == "exploit"  # the client's slot holds stage 0's best
    assert decisions[-1].action == "snapshot" and decisions[-1].stage == 1  # then the next stage


def test_by_default_an_exploitation_hands_on_its_last_model() -> None:
    decisions = end_of_first_exploit(config(search_stages=2), MEMORISING_STAGE)
    assert "snapshot" not in [d.action for d in decisions[:-1]]
    assert decisions[-1].action == "snapshot" and decisions[-1].stage == 1


def test_an_exploitation_whose_training_loss_did_not_fall_is_not_rewound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(overfit_stop, "EVERY_EXPLOIT", True)
    bouncing = [(0.5, 1.0), (0.5, 0.8), (0.5, 0.9)]  # large data at a large LR
    decisions = end_of_first_exploit(config(search_stages=2), bouncing)
    assert not any("restore the best" in d.reason for d in decisions)
    assert decisions[-1].action == "snapshot" and decisions[-1].stage == 1
