"""bench/range_test.py: the range test replayed, its bracket read at the floor, the knee and the minimum."""

from __future__ import annotations

from bench import range_test


def test_the_knee_never_tops_the_bracket_above_the_floor_or_the_minimum() -> None:
    found = range_test.tops("friedman_mlp", 0)
    assert set(found) == {"floor", "knee", "minimum"}
    assert 0 < found["knee"] <= min(found["floor"], found["minimum"]) <= 1.0


def test_the_table_has_a_row_per_workload(capsys) -> None:  # type: ignore[no-untyped-def]
    assert range_test.main(["--workloads", "friedman_mlp,cancer_logreg", "--seeds", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| friedman_mlp")]
    assert len(rows) == 1 and rows[0].count("|") == 9
