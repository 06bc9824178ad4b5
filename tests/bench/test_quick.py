"""Quick mode's machinery on one tiny workload: every method runs, curves and accounting add up.

Not a quality check: budgets are far too short for any tuner to shine. It guards the benchmark's
honesty rules (every run consumes exactly T steps, curves are indexed by consumed steps) and that
the report can be written from the results.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.analysis import analyse
from bench.cli import main
from bench.methods import LR_FREE, TUNERS, RunSpec
from bench.report import write_report
from bench.runner import check, plan, run_all, tuner_available
from bench.schedules import SCHEDULES
from lrpilot.protocol import TunerConfig

pytestmark = pytest.mark.slow
WORKLOAD = "cancer_logreg"


def test_quick_machinery_on_one_workload(tmp_path: Path) -> None:
    with_tuners = tuner_available() is None
    specs = plan([WORKLOAD], seeds=1, quick=True, with_tuners=with_tuners)
    methods = {s.method for s in specs}
    assert methods == set(SCHEDULES) | set(LR_FREE) | (set(TUNERS) if with_tuners else set())
    results = run_all(specs, jobs=1, use_cache=False, verbose=False)
    assert check(specs, results) == []
    for spec in specs:
        r = results[spec]
        assert r["steps_consumed"] == spec.budget
        steps = [p[0] for p in r["curve"]]
        assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] == spec.budget
    wa = analyse(results, WORKLOAD, seeds=1, quick=True)
    assert not wa.missing
    assert wa.cosine.method == "cosine" and wa.cosine.charged_steps == 3 * wa.budget  # the grid's cost
    if with_tuners:
        lrpilot = results[RunSpec(WORKLOAD, "lrpilot", None, 0, wa.budget)]
        assert 0.0 < lrpilot["search_share"] <= 1.0
        assert len(lrpilot["lrs"]) == wa.budget
        wide = TunerConfig()  # "lrpilot" runs on the default range
        assert all(wide.lr_min * 0.999 <= lr <= wide.lr_max * 1.001 for lr in lrpilot["lrs"])
    out = tmp_path / "benchmarks.md"
    write_report([wa], out, seeds=1, quick=True, notes=[], overhead=None, wall_s=1.0)
    text = out.read_text()
    assert "QUICK MODE" in text and WORKLOAD in text and "cosine (tuned)" in text
    assert (tmp_path / "bench" / f"{WORKLOAD}.png").exists()


def test_check_catches_broken_accounting() -> None:
    spec = RunSpec(WORKLOAD, "constant", 0.1, 0, 10)
    good = {
        "curve": [[0, 1.0], [5, 0.5], [10, 0.4]],
        "steps_consumed": 10,
        "steps_trained": 10,
        "stopped_at": None,
        "lrs": [0.1] * 10,
    }
    assert check([spec], {spec: good}) == []
    assert check([spec], {spec: {**good, "steps_consumed": 9}})
    assert check([spec], {spec: {**good, "curve": [[0, 1.0], [5, 0.5], [5, 0.4]]}})
    assert check([spec], {spec: {**good, "lrs": [0.1] * 9}})
    assert check([spec], {})
    assert check([spec], {spec: {"error": "Traceback ...\nValueError: boom"}})


def test_cli_rejects_unknown_workloads() -> None:
    assert main(["--quick", "--workloads", "nope"]) == 2


def test_cli_rejects_unknown_methods() -> None:
    assert main(["--quick", "--workloads", WORKLOAD, "--methods", "cosine,nope", "--no-cache"]) == 2


def test_cli_runs_only_the_methods_asked_for(tmp_path: Path) -> None:
    out = tmp_path / "report.md"
    args = ["--quick", "--workloads", WORKLOAD, "--methods", "cosine", "--no-cache", "--jobs", "1"]
    assert main([*args, "--report", "--out", str(out)]) == 0
    text = out.read_text()
    assert "Methods run: cosine" in text and "Missing or failed runs" not in text
