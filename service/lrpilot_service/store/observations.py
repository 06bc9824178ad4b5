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


def insert_observations(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, silently keeping the existing row for any (job, step) already stored."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(Observation).on_conflict_do_nothing(index_elements=["job_id", "step"])
    session.execute(statement, list(rows))


def load_observations(session: Session, job_id: int) -> list[Observation]:
    """All of a job's observations in step order."""
    statement = select(Observation).where(Observation.job_id == job_id).order_by(Observation.step)
    return list(session.scalars(statement))
