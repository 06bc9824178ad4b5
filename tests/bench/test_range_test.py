"""bench/range_test.py: the engine's range test run on a workload, its bracket's top read by each rule."""

from __future__ import annotations

from bench import range_test


def test_the_knee_and_the_cap_never_top_the_bracket_above_the_minimum() -> None:
    found = range_test.tops("friedman_mlp", 0)
    assert set(found) == {"capped", "centre", "knee", "minimum", "steps"}
    assert 0 < found["knee"] <= found["capped"] == min(found["centre"], found["minimum"]) <= 1.0
    assert 30 < found["steps"] < 90 + 15  # the locating pass and the test proper (90 steps at T = 3,000)


def test_the_table_has_a_row_per_workload(capsys) -> None:  # type: ignore[no-untyped-def]
    assert range_test.main(["--workloads", "friedman_mlp,cancer_logreg", "--seeds", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| friedman_mlp")]
    assert len(rows) == 1 and rows[0].count("|") == 12


def test_the_fixed_sweep_is_the_whole_range_at_one_pace(capsys) -> None:  # type: ignore[no-untyped-def]
    assert range_test.main(["--workloads", "cancer_logreg", "--seeds", "1", "--fixed"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| cancer"))
    assert row.split("|")[3].strip() == "30"  # T = 1,000: 30 steps over [1e-6, 1], no locating pass
