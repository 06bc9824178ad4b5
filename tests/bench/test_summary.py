"""The report's lrpilot section (bench/summary.py)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from bench.analysis import Row, WorkloadAnalysis
from bench.summary import to_best_checkpoint


def run(final: float, curve: list[list[float]] | None = None) -> dict[str, Any]:
    return {"final_val_loss": final, "initial_val_loss": 2.0, "curve": curve or [[0, 2.0], [10, final]]}


def test_the_tuned_cosines_best_checkpoint_is_the_lowest_point_of_its_curve() -> None:
    cosine = Row("cosine (tuned)", "tuned", "cosine", 0.1, [run(1.0, [[0, 2.0], [5, 0.8], [10, 1.0]])], 10)
    diverged = Row(
        "cosine (tuned)", "tuned", "cosine", 0.1, [run(1.0, [[0, 2.0], [5, float("nan")], [10, 1.0]])], 10
    )
    ours = Row("lrpilot", "tuner", "lrpilot", None, [run(0.9)], 10)
    wa = cast(WorkloadAnalysis, type("WA", (), {"cosine": cosine}))
    assert to_best_checkpoint(wa, ours) == pytest.approx([0.9 / 0.8])
    wa = cast(WorkloadAnalysis, type("WA", (), {"cosine": diverged}))  # NaN counts as the untrained loss
    assert to_best_checkpoint(wa, ours) == pytest.approx([0.9 / 1.0])
