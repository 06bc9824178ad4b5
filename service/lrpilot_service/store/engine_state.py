"""A job's engine state in ``job_states``: one row per top-level key, only changed keys rewritten.

The state is 4-10 KB of JSON, most of it history (the stages so far, the running try's losses) that
a plain window leaves unchanged. Rewriting it whole on every window was most of what a decision
wrote to the database, and on PostgreSQL each rewrite leaves a dead copy for vacuum. Splitting it
by key needs nothing from the engine but that its state is a JSON object, so the engine may
change its format freely: a key it stops using is deleted, a new one inserted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lrpilot_service.store.models import JobState


def load_state(session: Session, job_id: int) -> dict[str, Any]:
    rows = session.execute(select(JobState.key, JobState.value).where(JobState.job_id == job_id))
    return {key: value for key, value in rows}


def save_state(session: Session, job_id: int, new: Mapping[str, Any], old: Mapping[str, Any]) -> None:
    """Write the keys of ``new`` that differ from ``old`` in one statement; drop keys it lost."""
    changed = [
        {"job_id": job_id, "key": key, "value": value}
        for key, value in new.items()
        if old.get(key, _MISSING) != value
    ]
    if changed:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        statement = insert(JobState).values(changed)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["job_id", "key"], set_={"value": statement.excluded.value}
            )
        )
    gone = [key for key in old if key not in new]
    if gone:
        session.execute(delete(JobState).where(JobState.job_id == job_id, JobState.key.in_(gone)))


_MISSING = object()
