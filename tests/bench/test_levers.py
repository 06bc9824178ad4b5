"""The lever benchmark's tables: every lever patches real engine constants; paired ratios."""

from __future__ import annotations

import math

import pytest

from bench.levers import LEVERS, collapsed, paired_table
from bench.methods import RunSpec
from bench.workloads import WORKLOADS


@pytest.mark.parametrize("name", sorted(LEVERS))
def test_every_lever_patches_constants_that_exist(name: str) -> None:
    with LEVERS[name].method.patched():  # mock.patch raises on a misspelt target
        pass


def _run(final: float, share: float = 0.1) -> dict[str, float]:
    return {"final_val_loss": final, "initial_val_loss": 4.0, "search_share": share}


def test_the_paired_table_compares_each_seed_with_the_same_seed() -> None:
    w = "lm_bytes"
    budget = WORKLOADS[w].budget(quick=False)
    results = {}
    for seed, (base, lever) in enumerate([(2.0, 1.9), (1.0, 1.1), (3.0, 3.0)]):
        results[RunSpec(w, "lrpilot", None, seed, budget)] = _run(base)
        results[RunSpec(w, "no-river", None, seed, budget)] = _run(lever, share=0.2)
    header, _, row = paired_table(["no-river"], "lrpilot", [w], 3, results)
    assert "IQM ratio to lrpilot, paired" in header
    cells = [c.strip() for c in row.split("|")]
    assert cells[1] == "no-river"
    assert float(cells[2]) == pytest.approx((0.95 + 1.1 + 1.0) / 3, abs=1e-3)  # three runs: their mean
    assert cells[4] == "2/3"  # one seed made the same decisions
    assert cells[5] == "0.200"  # the lever's own search share


def test_a_diverged_run_counts_as_the_untrained_model_and_collapses() -> None:
    assert collapsed({"final_val_loss": math.nan, "initial_val_loss": 4.0})
    assert not collapsed(_run(1.0))
