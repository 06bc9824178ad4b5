"""Wire models shared by the client, the service and the engine: the one source of truth.

Every message that crosses the wire (or the in-process boundary of the embedded mode) is one of
these models. Non-finite losses are legal data (they are divergence signals), and JSON has no
NaN, so they travel as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from lrpilot.bounds import (
    CONFIG_RANGES,
    Measurement,
    UsedLR,
    add_ranges_to_schema,
    check_config_ranges,
    refuse_booleans,
)
from lrpilot.bounds import MAX_REPORT_STEPS as MAX_REPORT_STEPS  # re-exported: part of the contract
from lrpilot.bounds import NAME_MAX_LENGTH as NAME_MAX_LENGTH
from lrpilot.bounds import NAME_PATTERN as NAME_PATTERN

SCHEMA_VERSION = 1

Action = Literal["continue", "snapshot", "restore", "evaluate", "done"]
Phase = Literal["probe", "warmup", "search", "exploit", "anneal", "done"]
Ramp = Literal["linear", "geometric"]
Keep = Literal["save", "load"]
"""The job's best model (``keep_best``): "save" copies the model as it stands into the best-model
slot, before the decision's snapshot or restore; "load" puts that copy back, after them."""
JobStatus = Literal["running", "stale", "done", "failed"]
"""``running``: reports arrive; ``stale``: none for the service's ``stale_after_s`` (the next report
resumes it); ``done``: the plan ended, or the client said so; ``failed``: the client said so."""

Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN)]
TENANT_HEADER = "X-Lrpilot-Tenant"
"""The request header naming the caller's tenant (the namespace of job names)."""
DEFAULT_TENANT = "default"
PositiveFinite = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class WireModel(BaseModel):
    """Base: strict about unknown fields (typos must fail loudly) and NaN-safe JSON."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")


class TunerConfig(WireModel):
    """A job's configuration: everything the engine needs to plan, validated on arrival.

    Sizes left as ``None`` are derived from ``total_steps`` by the engine (docs/engine.md).
    """

    model_config = ConfigDict(frozen=True, json_schema_extra=add_ranges_to_schema)

    lr_min: PositiveFinite = Field(1e-6, description="Smallest LR the search may try (log scale).")
    lr_max: PositiveFinite = Field(1.0, description="Largest LR the search may try.")
    total_steps: int | None = Field(
        None, ge=10, le=100_000_000, description="Training budget in steps, search included; enables a plan."
    )
    probe: Literal["range_test", "none"] = Field(
        "range_test",
        description="Before the first stage, an LR range test from the initial weights (a quick pass "
        "from lr_min that finds where the loss starts to fall, then an exponential sweep from a decade "
        "below that toward lr_max, each followed by a restore) brackets the LRs that learn without "
        "diverging; 'none' searches the whole range. Needs total_steps.",
    )
    probe_steps: int | None = Field(
        None,
        ge=10,
        le=100_000,
        description="Length of the range test's sweep (its locating pass adds up to 2.5 steps a decade "
        "of the range); default 3% of the budget, 30 to 100.",
    )
    warmup_steps: int | None = Field(
        None,
        ge=0,
        description="Linear warmup before the first stage (kept, not searched); default 3% of the "
        "budget (0 without total_steps).",
    )
    warmup_lr: PositiveFinite | None = Field(
        None,
        description="LR reached at the end of warmup; default: the centre of the range test's bracket "
        "(or the geometric quarter point of the range without a range test).",
    )
    candidates: int = Field(5, ge=2, le=64, description="LRs tried in the first stage's search.")
    refine_candidates: int | None = Field(
        None, ge=0, le=64, description="LRs tried in later stages; default min(3, candidates)."
    )
    search_stages: int | None = Field(
        2,
        ge=1,
        le=1000,
        description="Most stages that search; after them the last LR is held, then annealed. "
        "None: as many as the budget pays for.",
    )
    refine: Literal["narrow", "bracket"] = Field(
        "bracket",
        description="Later stages search around the last LR ('narrow': x/÷ about 2), or the first "
        "stage's whole range again ('bracket').",
    )
    tau: int | None = Field(None, ge=10, description="First stage's exploitation length; default: budget.")
    tau_max: int | None = Field(None, ge=10, description="Cap on the exploitation length as it doubles.")
    tau_ratio: float = Field(0.1, gt=0, le=1, description="Search window per candidate as a share of tau.")
    try_cooldown: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="Share of each try spent annealing its LR toward zero; the try is then scored by "
        "its cooled-down loss (where the LR leads once annealed, not how noisy it is at full height). "
        "0: tries train at one LR and are scored by a forecast of their loss curve.",
    )
    try_ramp: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="Share of each try spent moving its LR linearly from the LR the model was trained "
        "at to the try's own (the exploitation that follows moves the same way): a jump to a much "
        "larger LR spikes an adaptive or momentum optimiser that a ramp would not.",
    )
    objective: Literal["train", "val"] = Field("train", description="Loss the search minimises.")
    keep_best: bool = Field(
        False,
        description="End with the best model by validation loss, not the last one (objective 'val'): "
        "the client keeps a second copy of the model and optimizer. The client sets it when it has "
        "a val_fn.",
    )
    search: Literal["bo", "space_filling"] = Field(
        "bo", description="'bo': GP + log expected improvement; 'space_filling': AutoLRS-like coverage."
    )
    anneal: Literal["linear", "cosine", "sqrt", "none"] = Field(
        "linear",
        description="Shape of the final decay to lr_min when budgeted: linear, half-cosine, 1-sqrt "
        "(WSD's cooldown), or none (hold the LR to the end).",
    )
    anneal_fraction: float = Field(0.2, ge=0, lt=1, description="Least share of the budget to anneal.")
    divergence_factor: float = Field(
        3.0, gt=1, allow_inf_nan=False, description="A try diverged above this multiple of recent losses."
    )
    window_max: int = Field(256, ge=1, le=1_000_000, description="Longest window between two reports.")
    seed: int = Field(
        0, ge=0, lt=2**32, description="Kept for stored jobs; the engine is deterministic without it."
    )

    @model_validator(mode="before")
    @classmethod
    def _no_booleans(cls, values: Any) -> Any:
        return refuse_booleans(values, frozenset(CONFIG_RANGES))

    @model_validator(mode="after")
    def _within_ranges(self) -> Self:
        check_config_ranges({field: getattr(self, field) for field in type(self).model_fields})
        return self

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.lr_min >= self.lr_max:
            raise ValueError(f"lr_min ({self.lr_min:g}) must be smaller than lr_max ({self.lr_max:g})")
        if self.total_steps is not None and (self.warmup_steps or 0) >= self.total_steps:
            raise ValueError(
                f"warmup_steps ({self.warmup_steps}) must be smaller than total_steps ({self.total_steps})"
            )
        if self.tau is not None and self.tau_max is not None and self.tau_max < self.tau:
            raise ValueError(f"tau_max ({self.tau_max}) must be at least tau ({self.tau})")
        if self.keep_best and self.objective != "val":
            raise ValueError(
                "keep_best needs objective='val' (pass a val_fn): the best model is chosen on it"
            )
        if self.warmup_lr is not None and not self.lr_min <= self.warmup_lr <= self.lr_max:
            raise ValueError(
                f"warmup_lr ({self.warmup_lr:g}) must lie in [lr_min, lr_max] = "
                f"[{self.lr_min:g}, {self.lr_max:g}]"
            )
        return self


def ramp_lr(start: float, end: float, fraction: float, ramp: Ramp) -> float:
    """The LR ``fraction`` of the way from ``start`` to ``end``: linear, or geometric (both > 0)."""
    if ramp == "geometric" and start > 0 and end > 0:
        return float(start * (end / start) ** fraction)
    return start + (end - start) * fraction


class Forecast(WireModel):
    """One candidate's outcome: the loss predicted at the end of the stage's exploitation."""

    lr: float
    predicted: float
    uncertainty: float
    method: Literal["exp", "level", "cooldown", "diverged"]
    steps: int = Field(ge=0, description="Steps the candidate trained before it was scored.")


class Decision(WireModel):
    """What the training loop does for the next window: no network until ``steps`` are done.

    The LR moves from ``lr`` at ``start_step`` toward ``lr_end`` at ``start_step + steps`` (equal for
    constant windows): linearly, or geometrically (``ramp="geometric"``, the range test's
    exponential sweep). The loop stops the window early, and reports what it has, when a loss is
    non-finite or above ``max_loss``, or a gradient norm is above ``max_grad_norm``. ``keep`` (jobs
    with ``keep_best``) saves the model as it stands as the job's best, or loads that best back.
    """

    job: str | None = None
    window: int = Field(ge=0)
    start_step: int = Field(ge=0)
    steps: int = Field(ge=0)
    lr: float
    lr_end: float
    action: Action
    phase: Phase
    stage: int = Field(ge=-1)
    ramp: Ramp = "linear"
    candidate: int | None = None
    reason: str
    forecast: Forecast | None = None
    eval_at: list[int] = Field(default_factory=list)
    #: Sent only when set: a client from before the field (the wire models forbid unknown fields)
    #: reads every decision of a job without ``keep_best`` as before.
    keep: Keep | None = Field(None, exclude_if=lambda keep: keep is None)
    max_loss: float | None = None
    max_grad_norm: float | None = None

    def lr_at(self, step: int) -> float:
        """The LR for absolute ``step`` inside this window (from lr toward lr_end, by ``ramp``)."""
        if self.steps <= 0 or self.lr_end == self.lr:
            return self.lr
        offset = min(max(step - self.start_step, 0), self.steps)
        return ramp_lr(self.lr, self.lr_end, offset / self.steps, self.ramp)

    def should_stop(self, loss: float, grad_norm: float | None = None) -> bool:
        """The window's early-stop guard, evaluated locally by the client (no network)."""
        if not math.isfinite(loss):
            return True
        if self.max_loss is not None and loss > self.max_loss:
            return True
        if grad_norm is None or self.max_grad_norm is None:
            return False
        return not math.isfinite(grad_norm) or grad_norm > self.max_grad_norm


class WindowReport(WireModel):
    """The observations of one window, posted when it ends (or when its guard stopped it)."""

    start_step: int = Field(ge=0, description="Absolute step of the first loss (steps consumed so far).")
    losses: list[Measurement] = Field(
        max_length=MAX_REPORT_STEPS, description="One training loss per step trained."
    )
    grad_norms: list[Measurement] | None = Field(
        None, max_length=MAX_REPORT_STEPS, description="Optional: one gradient norm per step."
    )
    lrs: list[UsedLR] | None = Field(
        None,
        max_length=MAX_REPORT_STEPS,
        description="Optional: the LR the loop really used per step (differs from plan in fallback).",
    )
    val_losses: dict[int, Measurement] | None = Field(
        None,
        max_length=MAX_REPORT_STEPS,
        description="Optional: validation loss keyed by the absolute step it was measured after.",
    )

    @model_validator(mode="after")
    def _lengths_match(self) -> Self:
        if self.grad_norms is not None and len(self.grad_norms) != len(self.losses):
            raise ValueError(
                f"grad_norms has {len(self.grad_norms)} values but losses has {len(self.losses)}: "
                "send one gradient norm per loss, or none"
            )
        if self.lrs is not None and len(self.lrs) != len(self.losses):
            raise ValueError(
                f"lrs has {len(self.lrs)} values but losses has {len(self.losses)}: "
                "send one LR per loss, or none"
            )
        return self

    def val_at_end(self) -> float | None:
        """The validation loss measured at the report's last step (finite), else None: the loss of
        the model the client holds when the window ends (``keep_best`` compares on it)."""
        value = (self.val_losses or {}).get(self.start_step + len(self.losses) - 1)
        return value if value is not None and math.isfinite(value) else None

    @field_validator("val_losses")
    @classmethod
    def _val_steps_non_negative(cls, value: dict[int, float] | None) -> dict[int, float] | None:
        if value is not None and any(step < 0 for step in value):
            raise ValueError("val_losses keys are absolute step numbers and must be >= 0")
        return value


class JobCreate(WireModel):
    """Create a job, or re-attach to the existing one with the same tenant and name."""

    name: Name
    config: TunerConfig = Field(default_factory=TunerConfig)  # type: ignore[arg-type]


class JobView(WireModel):
    """A job as the API shows it, with the decision the training loop should act on now."""

    name: str
    tenant: str
    status: JobStatus
    config: TunerConfig
    decision: Decision
    steps_reported: int
    created_at: datetime
    updated_at: datetime = Field(description="Last report or status change (the database clock).")
    reason: str | None = Field(None, description="Why the job is failed or done, as the client said.")


class JobPage(WireModel):
    """One page of ``GET /v1/jobs``, oldest job first; pass ``next`` as ``after`` for the next page."""

    jobs: list[JobView]
    next: str | None = None


class JobStatusUpdate(WireModel):
    """The client ends a job itself: ``failed`` (the run crashed) or ``done`` (it stopped early)."""

    status: Literal["done", "failed"]
    reason: str = Field("", max_length=500)


class ScheduleStep(WireModel):
    """The LR actually in effect for one reported step, and why."""

    step: int
    lr: float
    loss: float
    window: int
    phase: Phase
    stage: int
    candidate: int | None = None


class StageSummary(WireModel):
    """One stage: the range searched, every candidate with its forecast, and the LR chosen."""

    stage: int
    tau: int
    search_steps: int
    lr_low: float
    lr_high: float
    candidates: list[Forecast]
    chosen_lr: float | None = None
    reason: str = ""


class Schedule(WireModel):
    """Everything that happened to a job: per-step LRs, stages and candidates."""

    job: str
    steps: list[ScheduleStep]
    stages: list[StageSummary]
    search_share: float = Field(
        description="Share of reported steps spent searching: the range test and the tries."
    )
    next_step: int | None = Field(
        None, description="More steps follow: ask again with from_step set to this (one page per call)."
    )


class ErrorBody(WireModel):
    """Every 4xx carries one of these: what was wrong and what to do about it."""

    detail: str
    expected_window: int | None = None
    retry_after_s: float | None = Field(None, description="429 and 503: wait this long before retrying.")
