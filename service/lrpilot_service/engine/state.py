"""The engine's state: plain JSON data, versioned, never holding a non-finite float.

State is a ``dict`` so the store can keep it as a JSON column and any process can continue a
job. Everything the planner needs is in it; nothing is cached elsewhere. NaN and infinity are
never stored (PostgreSQL's JSON rejects them): diverged tries are flagged instead.
"""

from __future__ import annotations

import json
from typing import Any

from lrpilot.protocol import Decision, StageSummary

STATE_VERSION = 1

State = dict[str, Any]


class StateVersionError(ValueError):
    """A state written by an engine this one cannot read."""


def new_state(tau: int) -> State:
    return {
        "version": STATE_VERSION,
        "window": 0,
        "next_step": 0,
        "decision": None,
        "phase": "warmup",
        "segment": {"start": 0, "end": 0, "lr": 0.0, "lr_end": 0.0},
        "stage": -1,
        "tau": tau,
        "best_lr": None,
        "ref_loss": None,
        "recent_losses": [],
        "recent_grads": [],
        "search": None,
        "stages": [],
        "grad_norms": {"count": 0, "mean": 0.0, "max": 0.0},
        "last_val": None,
        "stage_val": None,
        "stage_val_at_snapshot": False,
    }


def copy_state(state: State) -> State:
    """A deep, JSON-checked copy: the caller's state is never mutated, and bad data fails here."""
    if state.get("version") != STATE_VERSION:
        raise StateVersionError(
            f"engine state version {state.get('version')!r} is not supported (expected {STATE_VERSION})"
        )
    copied: State = json.loads(json.dumps(state, allow_nan=False))
    return copied


def dump_state(state: State) -> str:
    """Canonical JSON text of a state (sorted keys), the form determinism is checked on."""
    return json.dumps(state, sort_keys=True, allow_nan=False, separators=(",", ":"))


def current_decision(state: State) -> Decision:
    """The decision the job is waiting on: what the client should be doing now."""
    return Decision.model_validate(state["decision"])


def summarize(state: State) -> list[StageSummary]:
    """Every stage so far with its candidates and chosen LR (for the schedule endpoint)."""
    return [StageSummary.model_validate(stage) for stage in state["stages"]]
