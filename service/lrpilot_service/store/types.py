"""A JSON column type that round-trips NaN and infinities exactly, on every dialect.

Engine state and decisions are plain JSON data, but they may hold non-finite floats (a diverged
candidate's loss is data, not an error). JSON has no NaN: PostgreSQL's ``json`` rejects the
``NaN`` token and a naive encoder would either fail or silently change the value. So non-finite
floats are boxed as ``{"$float": "NaN"}`` on the way in and unboxed on the way out.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_BOX = "$float"
_NAMES = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def box_non_finite(value: Any) -> Any:
    """Replace every non-finite float inside ``value`` by its box (a pure copy)."""
    if isinstance(value, float) and not math.isfinite(value):
        name = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return {_BOX: name}
    if isinstance(value, dict):
        return {key: box_non_finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [box_non_finite(item) for item in value]
    return value


def unbox_non_finite(value: Any) -> Any:
    """Inverse of :func:`box_non_finite`."""
    if isinstance(value, dict):
        if len(value) == 1 and value.get(_BOX) in _NAMES:
            return _NAMES[value[_BOX]]
        return {key: unbox_non_finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unbox_non_finite(item) for item in value]
    return value


class ExactJSON(TypeDecorator[Any]):
    """``sa.JSON`` whose non-finite floats survive the database (see module docstring)."""

    impl = sa.JSON
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else box_non_finite(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else unbox_non_finite(value)
