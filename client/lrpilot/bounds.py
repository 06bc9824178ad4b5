"""Every input's bounds, in one place: names, numbers, report sizes and the ranges of a job's config.

The service runs other people's numbers through an engine that takes logs, powers and ratios of
them, so anything it accepts must keep every derived size finite: ``tau_ratio = 1e-308`` made
``10 / tau_ratio`` overflow, ``lr_max / lr_min = 1e600`` made every candidate 1e300. The ranges
below are the envelope the engine is tested in (docs/operations.md lists them); a value outside
gets a 422 that names the field and its range. They are part of the wire contract, so the client
refuses the same values before any I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

MAX_REPORT_STEPS = 10_000
"""Most losses one window report may carry, whatever the job's ``window_max``: bounds the memory
and the time one request can cost the service (the body limit bounds its bytes)."""

NAME_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9_:@-]|\.[A-Za-z0-9_:@-])*\.?$"
"""Job and tenant names: a letter or digit, then letters, digits and ``._:@-``; never ``/`` (a name
is one path segment, so ``a/schedule`` cannot shadow a route) and never ``..``."""
NAME_HINT = "must start with a letter or digit, then only letters, digits and ._:@- (no '/', no '..')"
NAME_MAX_LENGTH = 200

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _number(value: Any) -> Any:
    """A JSON number stays a number; booleans and numeric strings are refused (``true`` is no loss)."""
    if isinstance(value, bool | str):
        raise ValueError(f"must be a number (got {value!r})")
    return value


def _number_or_non_finite_name(value: Any) -> Any:
    """A number, or one of the strings JSON needs for non-finite floats."""
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, bool | str):
        raise ValueError(f'must be a number, or "NaN", "Infinity" or "-Infinity" (got {value!r})')
    return value


Measurement = Annotated[float, BeforeValidator(_number_or_non_finite_name)]
"""A loss or a gradient norm: any float, NaN and infinities included (they are divergence signals)."""
StrictNumber = Annotated[float, BeforeValidator(_number)]


def _positive_finite(value: float) -> float:
    if not 0 < value < math.inf:
        raise ValueError(f"must be a finite, positive LR (got {value})")
    return value


UsedLR = Annotated[float, BeforeValidator(_number), AfterValidator(_positive_finite)]
"""An LR a training loop really used: finite and positive, or the report is refused."""

LR_LIMITS = (1e-10, 1e3)
LR_RATIO_LIMITS = (1.01, 1e10)
STEP_LIMIT = 100_000_000
#: field -> (lowest, highest) accepted value, both included. Fields absent here have no numeric range.
CONFIG_RANGES: dict[str, tuple[float, float]] = {
    "lr_min": LR_LIMITS,
    "lr_max": LR_LIMITS,
    "warmup_lr": LR_LIMITS,
    "total_steps": (10, STEP_LIMIT),
    "warmup_steps": (0, STEP_LIMIT),
    "tau": (10, STEP_LIMIT),
    "tau_max": (10, STEP_LIMIT),
    "tau_ratio": (0.01, 1.0),
    "candidates": (2, 64),
    "refine_candidates": (0, 64),
    "search_stages": (1, 1000),
    "probe_steps": (10, STEP_LIMIT),
    "try_cooldown": (0.0, 0.9),
    "try_ramp": (0.0, 0.5),
    "anneal_fraction": (0.0, 0.9),
    "divergence_factor": (1.01, 1e6),
    "window_max": (1, MAX_REPORT_STEPS),
    "seed": (0, 2**32 - 1),
}


def range_text(field: str) -> str:
    low, high = CONFIG_RANGES[field]
    return f"[{low:g}, {high:g}]"


def check_config_ranges(values: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first field outside its range, or any non-finite float."""
    for field, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{field} must be a finite number (got {value})")
        if field in CONFIG_RANGES and value is not None and not isinstance(value, str):
            low, high = CONFIG_RANGES[field]
            if not low <= value <= high:
                raise ValueError(f"{field} must lie in {range_text(field)} (got {value:g})")
    lr_min, lr_max = values.get("lr_min"), values.get("lr_max")
    if isinstance(lr_min, float | int) and isinstance(lr_max, float | int) and lr_min < lr_max:
        low, high = LR_RATIO_LIMITS
        if not low <= lr_max / lr_min <= high:
            raise ValueError(
                f"lr_max / lr_min must lie in [{low:g}, {high:g}] (got {lr_max / lr_min:g}): "
                "search a narrower range of LRs"
            )


def refuse_booleans(values: Any, numeric: frozenset[str]) -> Any:
    """A ``mode="before"`` check: ``true`` is not a number, even where Python would take it as 1."""
    if isinstance(values, Mapping):
        for field in numeric & set(values):
            if isinstance(values[field], bool):
                raise ValueError(f"{field} must be a number (got {values[field]!r})")
    return values


def add_ranges_to_schema(schema: dict[str, Any]) -> None:
    """Publish :data:`CONFIG_RANGES` in the JSON schema (OpenAPI clients and fuzzers read them)."""
    for field, prop in schema.get("properties", {}).items():
        if field in CONFIG_RANGES:
            low, high = CONFIG_RANGES[field]
            for target in [prop, *prop.get("anyOf", [])]:
                if target.get("type") in ("number", "integer"):
                    target["minimum"], target["maximum"] = low, high
                    target.pop("exclusiveMinimum", None)
                    target.pop("exclusiveMaximum", None)
