"""The forecaster benchmark's continuations: a candidate's plan trained from the branch."""

from __future__ import annotations

import math
from typing import Any

from bench.forecasters import _continue
from bench.methods import RunSpec, build
from bench.workloads import WORKLOADS


def _branch(lr: float, workload: str = "cancer_logreg") -> tuple[Any, Any, Any, list[float]]:
    w = WORKLOADS[workload]
    model = w.model(0)
    opt = build(w, RunSpec(w.name, "constant", lr, 0, w.total_steps), model).optimizer
    return w, model, opt, [lr] * w.total_steps


def test_a_continuation_returns_its_final_and_its_best_checkpoint() -> None:
    w, model, opt, lrs = _branch(0.1)
    order = w.batch_indices(0, w.total_steps)
    final, best = _continue(w, model, opt, order, range(100, w.total_steps), lrs)
    assert math.isclose(final, w.val_loss(model))  # the model the plan ends with
    assert best <= final


def test_a_continuation_that_diverges_realises_infinity() -> None:
    w, model, opt, lrs = _branch(1e30, "diabetes_mlp")
    order = w.batch_indices(0, w.total_steps)
    assert _continue(w, model, opt, order, range(0, w.total_steps), lrs) == (math.inf, math.inf)
