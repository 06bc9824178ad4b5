"""The forecaster benchmark's continuations: a candidate's plan trained from the branch."""

from __future__ import annotations

import json
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


def test_summarise_reads_the_cases_written_to_out(tmp_path: Any, capsys: Any) -> None:
    """A held-out set of seeds (``--first-seed``) goes to its own file and is summarised from it."""
    from bench.forecaster_scores import BEST, REPLICATE, SCORERS
    from bench.forecasters import main

    rows = [
        {"lr": 10.0**k, **dict.fromkeys(SCORERS, float(k)), "final": 1.0 + k, REPLICATE: 1.0 + k}
        | {f"final{BEST}": 1.0 + k, f"{REPLICATE}{BEST}": 1.0 + k}
        for k in range(5)
    ]
    case = {"case": {"workload": "lm_bytes", "seed": 4, "branch_share": 0.1}, "rows": rows}
    out = tmp_path / "heldout.json"
    out.write_text(json.dumps([case]))
    assert main(["--summarise", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| cooldown-val@40 | 1.00 | 1/1 |" in printed
    other = tmp_path / "seeds-0-3.json"
    other.write_text(json.dumps([case | {"case": {**case["case"], "seed": 0}}]))
    assert main(["--summarise", str(out), str(other)]) == 0  # files pooled: one table of both
    assert "| cooldown-val@40 | 1.00 | 2/2 |" in capsys.readouterr().out
