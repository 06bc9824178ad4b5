"""A job's engine state in ``job_states``: one row per top-level key, only changed keys rewritten.

The state is 4-10 KB of JSON, most of it history (the stages so far, the running try's losses) that
a plain window leaves unchanged. Rewriting it whole on every window was most of what a decision
wrote to the database, and on PostgreSQL each rewrite leaves a dead copy for vacuum. Splitting it
by key needs nothing from the engine but that its state is a JSON object, so the engine may
change its format freely: a key it stops using is deleted, a new one inserted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lrpilot_service.store.models import JobState

#: Core statements on the table (not the ORM entity): a decision pays no ORM bulk machinery.
_TABLE = cast(Table, JobState.__table__)


def load_state(session: Session, job_id: int) -> dict[str, Any]:
    rows = session.connection().execute(select(_TABLE.c.key, _TABLE.c.value).where(_TABLE.c.job_id == job_id))
    return {key: value for key, value in rows}


def save_state(session: Session, job_id: int, new: Mapping[str, Any], old: Mapping[str, Any]) -> None:
    """Write the keys of ``new`` that differ from ``old`` in one statement; drop keys it lost."""
    changed = [
        {"job_id": job_id, "key": key, "value": value}
        for key, value in new.items()
        if old.get(key, _MISSING) != value
    ]
    connection = session.connection()
    if changed:  # one prepared upsert, executed for the few changed keys
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        statement = insert(_TABLE)
        upsert = statement.on_conflict_do_update(
            index_elements=["job_id", "key"], set_={"value": statement.excluded.value}
        )
        connection.execute(upsert, changed)
    gone = [key for key in old if key not in new]
    if gone:
        connection.execute(delete(_TABLE).where(_TABLE.c.job_id == job_id, _TABLE.c.key.in_(gone)))


_MISSING = object()
