"""The runner trains each method as itself: an ablation's engine constants never leak.

A benchmark worker trains many runs in one process (so does the test suite). A lever's patches
(e.g. AutoLRS's "no health checks, no tie rule") once stayed set after its run, so every lrpilot
run after it in the same worker was silently measured as the ablation.
"""

from __future__ import annotations

import pytest

from bench.methods import AUTOLRS_PATCHES, RunSpec, tuner_method
from bench.runner import run_one, tuner_available
from lrpilot_service.engine import health, search

pytestmark = pytest.mark.skipif(tuner_available() is not None, reason="lrpilot.Tuner unavailable")


def test_an_ablations_patches_are_restored_after_its_run() -> None:
    originals = (search.TIE_SDS, health.no_progress, health.stalled)
    record = run_one(RunSpec("cancer_logreg", "autolrs", None, seed=0, budget=150))
    assert "error" not in record, record.get("error")
    assert (search.TIE_SDS, health.no_progress, health.stalled) == originals


def test_patches_hold_during_the_run_and_are_restored_after_a_failure() -> None:
    method = tuner_method("autolrs")
    assert method is not None and method.patches == AUTOLRS_PATCHES
    before = search.TIE_SDS
    with pytest.raises(RuntimeError), method.patched():
        assert search.TIE_SDS == 0.0 and health.no_progress(1.0, 0.0, (1.0, 0.0)) is False
        raise RuntimeError("a run that failed")
    assert before == search.TIE_SDS
