"""Tests for engine/river.py: a try below the pick is charged what it forgoes over the plan."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lrpilot.protocol import Action, TunerConfig
from lrpilot_service.engine import pick, river, stage
from lrpilot_service.engine.budget import lr_of
from lrpilot_service.engine.state import River, Segment, State, copy_state, new_state
from tests.engine.test_stage import state_with_tries

CONFIG = TunerConfig(total_steps=2000, objective="val")


def _river(state: State) -> River:
    river = state["river"]
    assert river is not None
    return river


def test_the_river_slope_is_the_fall_of_the_loss_per_unit_of_log_area() -> None:
    area = np.cumsum(np.full(400, 0.01))
    assert river.river_slope(list(area), list(3.0 - 0.25 * np.log(area))) == pytest.approx(0.25)
    assert river.river_slope(list(area), list(1.0 + 0.1 * np.log(area))) == 0.0  # a rising loss
    assert river.river_slope([1.0, 2.0], [2.0, 1.0]) == 0.0  # too few points to fit


def test_only_tries_below_the_pick_are_charged_and_more_the_smaller_they_are() -> None:
    lrs, scores = [0.01, 0.03, 0.1, 0.3], [2.30, 2.29, 2.28, 2.40]
    charged = river.charge(lrs, scores, 0.3, 10.0, 1000, 30)
    assert charged[2:] == scores[2:]  # the pick and above keep their scores
    assert charged[0] > charged[1] > scores[1]  # the smallest forgoes the most
    assert min(range(4), key=lambda i: charged[i] or math.inf) == 2  # never moves the pick
    assert river.charge(lrs, [2.3, None, 2.2, 2.4], 0.3, 10.0, 1000, 30)[1] is None  # a failure stays one
    assert river.charge(lrs, scores, 0.0, 10.0, 1000, 30) == scores  # a flat history: nothing forgone


def _train(state: State, action: Action, steps: int = 0, lr: float = 0.1, loss: float = 1.0) -> None:
    """Train ``steps`` steps at ``lr`` on the model's line, then act."""
    if steps:
        segment: Segment = {
            "start": 0,
            "end": 10**6,
            "lr": lr,
            "lr_end": lr,
            "ramp": "linear",
            "shape": "linear",
            "hold": 10**6,
        }
        river.note_window(state, segment, 0, [loss] * steps)
    river.follow(state, action)


def test_a_restore_returns_the_area_to_the_snapshot_and_forgets_what_came_after() -> None:
    state = state_with_tries([], [])
    _train(state, "continue", 100)
    _train(state, "snapshot", 100)
    assert _river(state)["area"] == pytest.approx(20.0) and _river(state)["snapshot"] == pytest.approx(20.0)
    _train(state, "continue", 50, loss=9.0)  # a stretch that failed
    _train(state, "restore")
    assert _river(state)["area"] == pytest.approx(20.0)
    assert [p[1] for p in _river(state)["points"]] == [1.0, 1.0]


def test_a_long_history_is_thinned_not_grown() -> None:
    state = state_with_tries([], [])
    for _ in range(3 * river.MAX_POINTS):
        _train(state, "continue", 10)
    points = _river(state)["points"]
    assert len(points) <= river.MAX_POINTS
    assert points[-1][0] == pytest.approx(_river(state)["area"])  # the newest point is kept


def _rich_refinement(memorises: bool = False) -> State:
    """A refinement whose tries nearly tie its two lowest LRs, after a history that fell 0.3 per
    log-area; validation tracks training unless ``memorises``."""
    state = state_with_tries([0.5, 0.2, 0.8], [2.28, 2.29, 2.40])
    search = stage.searching(state)
    search["kind"], search["sds"] = "refine", [0.0] * 3
    for k in range(1, 41):
        area = 0.1 * 10 * k
        _river(state)["points"].append([area, 3.0 - 0.3 * math.log(area)])
    _river(state).update(area=40.0, snapshot=40.0)
    state.update(  # type: ignore[typeddict-item]
        {
            "stage_level": [2.2, 0.0],
            "stage_val": 3.0 if memorises else 2.35,
            "best_lr": 1e-2,
            "research": "no",
        }
    )
    state["next_step"] = 400
    return state


def test_a_refinement_charges_its_low_tries_where_data_track_training(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = _rich_refinement()
    search = stage.searching(state)
    charged, why = river.charged(state, CONFIG, search, search["ys"])
    assert charged[0] == search["ys"][0] and charged[2] == search["ys"][2]  # the pick (x=0.5) and above
    assert charged[1] is not None and charged[1] > 2.29 + 0.05  # x=0.2 forgoes far more than the tries differ
    assert "forgo" in why
    lr, _, reason = pick.conclude(state, CONFIG, fallback_lr=1e-3)
    assert "river slope" in reason
    memorising = _rich_refinement(memorises=True)
    search = stage.searching(memorising)
    assert river.charged(memorising, CONFIG, search, search["ys"]) == (search["ys"], "")
    monkeypatch.setattr(river, "RIVER", False)  # lever no-river
    search = stage.searching(state := _rich_refinement())
    assert river.charged(state, CONFIG, search, search["ys"]) == (search["ys"], "")
    assert lr >= lr_of(0.5, search["low"], search["high"])


def test_the_charge_steers_the_next_try_away_from_small_lrs(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refinement that tried its centre, its low and high ends: BO's next try moves up."""
    ys: list[float | None] = [2.279, 2.280, 2.300, 2.281]
    proposals = {}
    for on in (False, True):
        monkeypatch.setattr(river, "RIVER", on)
        state = _rich_refinement()
        search = stage.searching(state)
        search["xs"], search["ys"], search["sds"], search["n"] = [0.5, 0.2, 0.8, 0.35], list(ys), [0.0] * 4, 6
        opened, _ = stage.next_try(state, CONFIG, start=400)
        assert opened is not None
        proposals[on] = opened["x"]
    assert proposals[True] > proposals[False]


def test_a_job_begun_before_the_river_has_no_line_and_is_never_charged() -> None:
    old = dict(new_state(100))
    del old["river"]
    state = copy_state(old)
    assert state["river"] is None
    _train(state, "snapshot", 100)  # nothing to follow: no error, still no line
    assert state["river"] is None
    charging = _rich_refinement()
    charging["river"] = None
    search = stage.searching(charging)
    assert river.charged(charging, CONFIG, search, search["ys"]) == (search["ys"], "")


def test_losses_near_the_largest_float_leave_a_finite_line_and_no_slope() -> None:
    state = state_with_tries([], [])
    _train(state, "continue", 3, loss=1e308)  # a plain mean of these overflows
    assert all(math.isfinite(v) for p in _river(state)["points"] for v in p)
    huge = [1e308, 1e300, 1e308, 1e290]
    assert math.isfinite(river.river_slope([1.0, 2.0, 3.0, 4.0], huge))
