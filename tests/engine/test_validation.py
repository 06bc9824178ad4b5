"""Tests for engine/validation.py: where a val job measures, and the first stage's level."""

from __future__ import annotations

import pytest

from lrpilot.protocol import TunerConfig, WindowReport
from lrpilot_service.engine import advance, validation


def _after_warmup(val: float) -> tuple[list[int], object]:
    """The warmup's measurement points, and the first stage's level once it reported ``val``."""
    cfg = TunerConfig(total_steps=1000, probe="none", warmup_steps=20, objective="val")
    state, warmup = advance(cfg, None, None)
    assert warmup.phase == "warmup"
    report = WindowReport(
        start_step=0, losses=[2.0] * warmup.steps, val_losses={s: val for s in warmup.eval_at}
    )
    state, first_try = advance(cfg, state, report)
    assert first_try.phase == "search"
    return warmup.eval_at, state["stage_val"]


def test_the_first_stage_has_no_level_by_default() -> None:
    assert _after_warmup(2.5) == ([], None)


def test_a_measured_warmup_end_is_the_first_stages_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(validation, "WARMUP_VAL", True)  # lever warmup-val
    assert _after_warmup(2.5) == ([19], 2.5)
