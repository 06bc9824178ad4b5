"""bench/catapult.py: branches from one snapshot, with the guard's spikes counted."""

from __future__ import annotations

import math

from bench import catapult


def test_a_far_too_large_lr_spikes_past_the_guard_and_a_small_one_never_does() -> None:
    small, huge = catapult.branches(
        "friedman_mlp", 0, base=0.01, targets=[0.01, 50.0], rises=[0], branch_at=40, warmup=10, total=80
    )
    assert (small.spells, small.longest, small.peak) == (0, 0, 0.0) and math.isfinite(small.final_val)
    assert huge.spells >= 1 and huge.longest >= 1


def test_the_table_has_a_row_per_seed_target_and_rise(capsys) -> None:  # type: ignore[no-untyped-def]
    argv = ["--seeds", "0", "--base", "0.01", "--targets", "0.01,0.02", "--rises", "0,5", "--branch-at", "30"]
    assert catapult.main([*argv, "--warmup", "5", "--total", "60"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| 0 |")]
    assert len(rows) == 4
