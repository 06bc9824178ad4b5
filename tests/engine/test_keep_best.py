"""A val job with ``keep_best`` saves each best model it measures and ends with it (keep_best.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot_service.engine import advance

TOTAL = 1000


def config(**fields: object) -> TunerConfig:
    return TunerConfig.model_validate(
        {"probe": "none", "warmup_steps": 0, "candidates": 3, "search_stages": 1, "objective": "val",
         "keep_best": True, "total_steps": TOTAL, "window_max": 50, **fields}
    )  # fmt: skip


def run(cfg: TunerConfig, val_at: Callable[[int], float]) -> list[Decision]:
    """Drive a job to its end: flat training losses, ``val_at(step)`` at every step asked for."""
    state, decision = advance(cfg, None, None)
    decisions = [decision]
    while decision.action != "done":
        report = WindowReport(
            start_step=decision.start_step,
            losses=[1.0] * decision.steps,
            val_losses={s: val_at(s) for s in decision.eval_at},
        )
        state, decision = advance(cfg, state, report)
        decisions.append(decision)
    return decisions


def u_shaped(step: int) -> float:
    """Falls to its best at step 400, then rises by 20% by the end (small data, memorising slowly)."""
    return 1.0 - 0.3 * step / 400 if step <= 400 else 0.7 + 0.14 * (step - 400) / 600


def test_a_run_whose_last_model_is_worse_ends_with_its_best() -> None:
    decisions = run(config(), u_shaped)
    saved = [d.start_step for d in decisions if d.keep == "save"]
    assert saved and max(saved) <= 401  # nothing after the best is kept
    last = decisions[-1]
    assert last.action == "done" and last.keep == "load" and "best model" in last.reason


def test_the_anneal_measures_its_last_step() -> None:
    decisions = run(config(), u_shaped)
    anneal = [d for d in decisions if d.phase == "anneal"]
    assert anneal[-1].eval_at == [TOTAL - 1]


def test_a_run_that_ends_at_its_best_keeps_its_last_model() -> None:
    decisions = run(config(), lambda step: 1.0 - 0.5 * step / TOTAL)
    assert decisions[-1].action == "done" and decisions[-1].keep is None


def test_without_keep_best_no_decision_keeps_and_the_anneal_is_not_measured() -> None:
    decisions = run(config(keep_best=False), u_shaped)
    assert all(d.keep is None for d in decisions)
    assert all(not d.eval_at for d in decisions if d.phase == "anneal")


def test_only_a_loss_measured_at_the_windows_last_step_is_kept() -> None:
    """A validation loss from inside a window belongs to a model the client no longer holds."""
    cfg = config(try_cooldown=0.0)  # held tries measure at several steps inside their window
    decisions = run(cfg, u_shaped)
    state, decision = advance(cfg, None, None)
    assert decision.phase == "search" and len(decision.eval_at) > 1
    inside = {s: 0.5 for s in decision.eval_at[:-1]}
    report = WindowReport(start_step=decision.start_step, losses=[1.0] * decision.steps, val_losses=inside)
    _, after = advance(cfg, state, report)
    assert after.keep is None
    assert any(d.keep == "save" for d in decisions)


def test_keep_best_needs_the_validation_objective() -> None:
    with pytest.raises(ValueError, match="keep_best needs objective='val'"):
        config(objective="train")
