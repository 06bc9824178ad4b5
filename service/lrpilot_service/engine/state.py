"""The engine's state: plain JSON data, versioned, typed, never holding a non-finite float.

State is JSON so the store can keep it in one column and any process can continue a job; the
TypedDicts below give that JSON a checked shape (mypy sees ``st["search"]["try"]["lr"]``) without
changing a byte of it. Everything the planner needs is in it; nothing is cached elsewhere. NaN and
infinity are never stored (PostgreSQL's JSON rejects them): diverged tries are flagged instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, NotRequired, cast

from typing_extensions import TypedDict  # pydantic can validate these on Python 3.11

from lrpilot.protocol import Decision, Phase, Ramp, StageSummary, ramp_lr

Research = Literal["no", "all", "below"]
SearchKind = Literal["first", "refine", "all", "below"]
"""Why a stage searches: the first one, a refinement, or a re-search after a failure."""
"""After a failed stage: "all" (nothing learnt: search the whole range again) or "below" (the LR
was too large: search below it)."""

STATE_VERSION = 2
"""Version 2 added the range test (``probe``, ``bracket``, ``initial_level``), the segment's
``ramp``, ``shape`` and ``hold``, and the stage health keys (``research``, ``stage_level``);
:func:`copy_state` upgrades version-1 states."""


class StateVersionError(ValueError):
    """A state written by an engine this one cannot read."""


class Segment(TypedDict):
    """The stretch of steps the job is in: ``[start, end)``; the LR rises from ``lr_from`` to ``lr``
    until ``rise`` (when set), is ``lr`` until ``hold``, then moves to ``lr_end`` at ``end`` by
    ``ramp``, or along ``shape`` ("linear", "cosine", "sqrt").
    """

    start: int
    end: int
    lr: float
    lr_end: float
    ramp: Ramp
    shape: str
    hold: int
    rise: NotRequired[int]  # before this step the LR moves linearly from ``lr_from`` to ``lr``
    lr_from: NotRequired[float]


class TryState(TypedDict):
    """The candidate LR being tried: its point ``x`` in [0, 1], and its observations so far."""

    x: float
    lr: float
    start: int
    losses: list[float]
    grads: list[float]  # finite gradient norms, when the client reports them
    vals: dict[str, float]  # validation loss by absolute step (JSON keys are strings)
    note: NotRequired[str]  # the forecaster's reason, once scored


# "try" is a Python keyword, hence the functional form.
SearchState = TypedDict(
    "SearchState",
    {
        "low": float,
        "high": float,
        "n": int,
        "try_steps": int,
        "xs": list[float],
        "ys": list[float | None],  # forecast losses; None for a diverged try
        "sds": list[float],
        "starts": list[float],  # each scored try's first loss: where the stage started, seen by tries
        "kind": SearchKind,
        "voided": int,
        "from_lr": NotRequired[float],  # the LR the snapshot was trained at: where tries rise from
        "full_steps": NotRequired[int],  # successive halving: the finalists' length (tries screen shorter)
        "queue": NotRequired[list[float]],  # points to try next, in order (halving's finalists)
        "try": TryState | None,
    },
)


class CandidateRecord(TypedDict):
    """A scored try as the schedule shows it (``lrpilot.protocol.Forecast`` in JSON form)."""

    lr: float
    predicted: float
    uncertainty: float
    method: str
    steps: int


class StageRecord(TypedDict):
    """One stage as the schedule shows it (``lrpilot.protocol.StageSummary`` in JSON form)."""

    stage: int
    tau: int
    search_steps: int
    lr_low: float
    lr_high: float
    candidates: list[CandidateRecord]
    chosen_lr: float | None
    reason: str


class GradSummary(TypedDict):
    count: int
    mean: float
    max: float


class ProbeState(TypedDict):
    """The range test's observations so far (finite losses, in step order, and the LR of each)."""

    losses: list[float]
    lrs: list[float]  # one more than the losses when the test diverged: the LR it diverged at
    diverged_at: int | None
    locating: bool  # the quick pass that finds where the loss moves (range_test.py)


class River(TypedDict):
    """The model's own line (river.py): its LR area, the area at the last snapshot, and one
    [area, mean training loss] point per warmup, exploit or anneal window."""

    area: float
    snapshot: float
    points: list[list[float]]


class State(TypedDict):
    """A job's whole engine state (format version :data:`STATE_VERSION`)."""

    version: int
    window: int  # the window whose report is awaited
    next_step: int  # its first step
    decision: dict[str, Any] | None  # the awaited window's Decision, in JSON form
    phase: Phase
    segment: Segment
    stage: int
    tau: int
    best_lr: float | None
    ref_loss: float | None
    last_spike: int | None  # the step of the last loss spike the guard let pass (divergence.py)
    recent_losses: list[float]
    recent_grads: list[float]
    search: SearchState | None
    stages: list[StageRecord]
    grad_norms: GradSummary
    last_val: float | None
    stage_val: float | None
    stage_val_at_snapshot: bool
    probe: ProbeState | None
    bracket: list[float] | None  # [low, high] the first stage searches, from the range test
    initial_level: float | None  # the untrained model's loss (the range test's first losses)
    research: Research  # the last stage failed: the next one searches its whole range again
    stage_level: list[float] | None  # [mean, sd] of the losses just before the stage began
    overfit_windows: int  # exploit windows in a row above the stage's validation level
    best_val: list[float] | None  # the final hold's best model: [val, training loss, windows above]
    kept_val: float | None  # the validation loss of the model in the client's best slot (keep_best)
    reach: float | None  # the pick a reach raised (rich_data.py): held above it, fallen back to
    river: River | None  # None: a job begun before river.py, whose line is not known


def new_state(tau: int) -> State:
    return {
        "version": STATE_VERSION,
        "window": 0,
        "next_step": 0,
        "decision": None,
        "phase": "warmup",
        "segment": {
            "start": 0,
            "end": 0,
            "lr": 0.0,
            "lr_end": 0.0,
            "ramp": "linear",
            "shape": "linear",
            "hold": 0,
        },
        "stage": -1,
        "tau": tau,
        "best_lr": None,
        "ref_loss": None,
        "last_spike": None,
        "recent_losses": [],
        "recent_grads": [],
        "search": None,
        "stages": [],
        "grad_norms": {"count": 0, "mean": 0.0, "max": 0.0},
        "last_val": None,
        "stage_val": None,
        "stage_val_at_snapshot": False,
        "probe": None,
        "bracket": None,
        "initial_level": None,
        "research": "no",
        "stage_level": None,
        "overfit_windows": 0,
        "best_val": None,
        "kept_val": None,
        "reach": None,
        "river": {"area": 0.0, "snapshot": 0.0, "points": []},
    }


def _upgrade_v1(state: dict[str, Any]) -> dict[str, Any]:
    """Version 1 had no range test and only linear segments: fill the new keys with what it did."""
    segment = state["segment"]
    state["segment"] = {**segment, "ramp": "linear", "shape": "linear", "hold": segment["start"]}
    search = state.get("search")
    if search is not None:
        search["starts"] = []
        search["kind"] = "first" if state.get("stage", 0) == 0 else "refine"
        if search.get("try") is not None:
            search["try"]["grads"] = []
    state.update(probe=None, bracket=None, initial_level=None, research="no", stage_level=None, version=2)
    return state


def _upgrade_probe(state: dict[str, Any]) -> None:
    """A range test begun before the test located the loss first sweeps at one pace over its segment."""
    probe, seg = state["probe"], state["segment"]
    steps = len(probe["losses"]) + (probe["diverged_at"] is not None)
    span = max(1, seg["end"] - seg["start"])
    probe["lrs"] = [ramp_lr(seg["lr"], seg["lr_end"], i / span, "geometric") for i in range(steps)]
    probe["locating"] = False


def copy_state(state: Mapping[str, Any]) -> State:
    """A deep, JSON-checked copy: the caller's state is never mutated, and bad data fails here.

    Accepts any mapping (the store hands over the JSON column as loaded), checks its version and
    upgrades older versions, so a job started by an older engine continues on this one.
    """
    version = state.get("version")
    if version not in (1, STATE_VERSION):
        raise StateVersionError(
            f"engine state version {version!r} is not supported (expected {STATE_VERSION} or older)"
        )
    copied: dict[str, Any] = json.loads(json.dumps(state, allow_nan=False))
    if version == 1:
        copied = _upgrade_v1(copied)
    copied.setdefault("overfit_windows", 0)  # a version-2 state from before the count: none counted
    copied.setdefault("last_spike", None)  # ... from before spikes were told from divergences
    copied.setdefault("best_val", None)  # ... from before the hold stopped early
    copied.setdefault("kept_val", None)  # ... from before the job kept its best model
    copied.setdefault("reach", None)  # ... from before a stage could reach above its tries
    copied.setdefault("river", None)  # ... from before river.py: its line is not known, no charge
    if copied.get("probe") is not None and "lrs" not in copied["probe"]:
        _upgrade_probe(copied)  # ... from before the range test kept the LR of each step
    return cast(State, copied)


def dump_state(state: Mapping[str, Any]) -> str:
    """Canonical JSON text of a state (sorted keys), the form determinism is checked on."""
    return json.dumps(state, sort_keys=True, allow_nan=False, separators=(",", ":"))


def current_decision(state: Mapping[str, Any]) -> Decision:
    """The decision the job is waiting on: what the client should be doing now."""
    return Decision.model_validate(state["decision"])


def summarize(state: Mapping[str, Any]) -> list[StageSummary]:
    """Every stage so far with its candidates and chosen LR (for the schedule endpoint)."""
    return [StageSummary.model_validate(stage) for stage in state["stages"]]
