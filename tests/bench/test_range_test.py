"""bench/range_test.py: the range test replayed, its bracket's top read by each rule."""

from __future__ import annotations

from bench import range_test


def test_the_knee_and_the_cap_never_top_the_bracket_above_the_minimum() -> None:
    found = range_test.tops("friedman_mlp", 0)
    assert set(found) == {"capped", "centre", "knee", "minimum"}
    assert 0 < found["knee"] <= found["capped"] == min(found["centre"], found["minimum"]) <= 1.0


def test_the_table_has_a_row_per_workload(capsys) -> None:  # type: ignore[no-untyped-def]
    assert range_test.main(["--workloads", "friedman_mlp,cancer_logreg", "--seeds", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| friedman_mlp")]
    assert len(rows) == 1 and rows[0].count("|") == 11
