"""Observation rows: one per reported step, first write wins, NaN stored without loss.

SQLite turns a bound NaN into NULL, and NULL already means "not reported" for the optional
columns, so each row carries a bit mask of which columns were NaN. Infinities need no help: both
SQLite and PostgreSQL store them natively.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lrpilot.protocol import Decision, WindowReport
from lrpilot_service.store.models import Observation

FLOAT_COLUMNS = ("loss", "grad_norm", "lr", "val_loss")
_BIT = {name: 1 << index for index, name in enumerate(FLOAT_COLUMNS)}


def encode_floats(values: dict[str, float | None]) -> dict[str, Any]:
    """Column values plus ``nan_mask`` for one row; NaN becomes NULL with its bit set."""
    row: dict[str, Any] = {}
    mask = 0
    for name in FLOAT_COLUMNS:
        value = values.get(name)
        if value is not None and math.isnan(value):
            mask |= _BIT[name]
            value = None
        row[name] = value
    row["nan_mask"] = mask
    return row


def decode_float(row: Observation, name: str) -> float | None:
    """A column's value as reported: NaN where the mask says so."""
    if row.nan_mask & _BIT[name]:
        return math.nan
    value: float | None = getattr(row, name)
    return value


def report_rows(job_id: int, window: int, report: WindowReport, decision: Decision) -> list[dict[str, Any]]:
    """The rows of one window's report; the LR is the one the loop used, else the planned one."""
    rows = []
    val_losses = report.val_losses or {}
    for index, loss in enumerate(report.losses):
        step = report.start_step + index
        lr = report.lrs[index] if report.lrs is not None else decision.lr_at(step)
        grad_norm = report.grad_norms[index] if report.grad_norms is not None else None
        values = {"loss": loss, "grad_norm": grad_norm, "lr": lr, "val_loss": val_losses.get(step)}
        rows.append({"job_id": job_id, "step": step, "window": window, **encode_floats(values)})
    return rows


#: Rows per INSERT statement: 8 bound parameters each stays under SQLite's 32,766 and PostgreSQL's
#: 65,535, so a window of up to 4,000 steps is one statement (an executemany of one statement per
#: row made 256 round trips of a 256-step window, 60% of a plain decision's time, measured).
ROWS_PER_STATEMENT = 4000


def insert_observations(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows as multi-row INSERTs, keeping the existing row for any (job, step) already stored."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    for first in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = list(rows[first : first + ROWS_PER_STATEMENT])
        statement = insert(Observation).values(chunk)
        session.execute(statement.on_conflict_do_nothing(index_elements=["job_id", "step"]))


def load_observations(
    session: Session, job_id: int, from_step: int = 0, limit: int | None = None
) -> list[Observation]:
    """A job's observations in step order, from ``from_step`` on, at most ``limit`` of them."""
    statement = (
        select(Observation)
        .where(Observation.job_id == job_id, Observation.step >= from_step)
        .order_by(Observation.step)
        .limit(limit)
    )
    return list(session.scalars(statement))
