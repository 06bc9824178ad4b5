"""The typed state is the JSON state: every state a real job goes through matches the TypedDicts.

mypy checks the engine against ``engine/state.py``; this checks ``state.py`` against the JSON the
engine really writes (and the store really keeps), so the types cannot drift from the data.
"""

from __future__ import annotations

import json

import pytest
from pydantic import TypeAdapter

from lrpilot.protocol import TunerConfig
from lrpilot_service.engine.state import STATE_VERSION, State, StateVersionError, copy_state, new_state
from tests.engine.simulation import LinearRegressionSGD, drive

STATE = TypeAdapter(State)


@pytest.mark.parametrize("objective", ["train", "val"])
def test_every_state_of_a_job_matches_the_typed_state(objective: str) -> None:
    config = TunerConfig(total_steps=600, lr_min=1e-4, lr_max=10.0, objective=objective, candidates=4)
    result = drive(config, LinearRegressionSGD(seed=0))
    assert len(result.states) > 10
    for state in result.states:
        as_stored = json.loads(json.dumps(state))  # what the database hands back
        STATE.validate_python(as_stored, strict=True)
        assert set(as_stored) == set(State.__annotations__)


def test_new_state_has_every_key_and_copies_refuse_other_versions() -> None:
    assert set(new_state(100)) == set(State.__annotations__)
    with pytest.raises(StateVersionError, match="not supported"):
        copy_state({**new_state(100), "version": STATE_VERSION + 1})


def test_a_state_written_before_the_overfit_count_loads_with_none_counted() -> None:
    older = {k: v for k, v in new_state(100).items() if k != "overfit_windows"}
    assert copy_state(older)["overfit_windows"] == 0


def test_a_state_written_before_the_reach_loads_with_none_reached() -> None:
    older = {k: v for k, v in new_state(100).items() if k != "reach"}
    assert copy_state(older)["reach"] is None
