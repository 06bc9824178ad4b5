"""The benchmark's lineage accounting follows the client's two slots (bench/methods.py)."""

from __future__ import annotations

from types import SimpleNamespace

from bench.methods import TunerDriver
from lrpilot.protocol import Action, Keep
from lrpilot.testing import make_decision


def follow(driver: TunerDriver, step: int, action: Action, keep: Keep | None = None) -> None:
    """Train up to ``step`` (each step joins the lineage), then follow a decision starting there."""
    driver._lineage += step - driver.tuner.step
    driver.tuner.step = step
    driver._follow(make_decision(start_step=step, action=action, keep=keep))


def test_a_load_goes_back_to_the_lineage_of_the_best_model_saved_before_a_restore() -> None:
    driver = TunerDriver.__new__(TunerDriver)  # only the accounting: no model, no service
    driver.tuner = SimpleNamespace(step=0)
    driver._lineage = driver._at_snapshot = driver._at_best = 0
    follow(driver, 10, "snapshot")  # a stage snapshot after 10 steps
    follow(driver, 15, "restore", keep="save")  # a try's end is the best: saved, then rewound
    assert driver._lineage == 10
    follow(driver, 40, "continue")
    assert driver._lineage == 35
    follow(driver, 50, "done", keep="load")
    assert driver._lineage == 15  # the final model is the one saved at step 15
