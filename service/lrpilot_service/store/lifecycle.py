"""A job's life after its reports: stale when they stop, failed or done when the client says so, pruned.

Every report sets ``jobs.updated_at`` from the database clock (the heartbeat), so "no report for
``stale_after_s``" is one indexed comparison that every service process may run (it is idempotent)
and that no two hosts' clocks can disagree on. A stale job is running again on its next report.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, func, literal_column, select, update
from sqlalchemy.orm import Session

from lrpilot_service.store.models import DecisionRecord, Job, JobState, Observation, Tenant

#: Jobs deleted per transaction by a prune, so a large prune never holds locks for long.
PRUNE_BATCH = 200


def older_than(session: Session, seconds: float) -> ColumnElement[bool]:
    """``jobs.updated_at`` is more than ``seconds`` before the database's now."""
    if session.get_bind().dialect.name == "postgresql":
        return Job.updated_at < func.now() - literal_column("interval '1 second'") * float(seconds)
    # SQLite keeps CURRENT_TIMESTAMP as 'YYYY-MM-DD HH:MM:SS' text, which compares in time order.
    return Job.updated_at < func.datetime(literal_column("'now'"), f"-{float(seconds)} seconds")


def mark_stale(session: Session, stale_after_s: float) -> int:
    """Running jobs without a report for ``stale_after_s`` become ``stale``; their heartbeat is kept."""
    result: Any = session.execute(
        update(Job)
        .where(Job.status == "running", older_than(session, stale_after_s))
        .values(status="stale", updated_at=Job.updated_at)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def set_status(session: Session, job_id: int, status: str, reason: str) -> None:
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(status=status, status_reason=reason or None, updated_at=func.now())
    )


def delete_jobs(session: Session, job_ids: list[int]) -> None:
    """Delete jobs with every row that belongs to them (children first: no reliance on cascades)."""
    for table in (Observation, DecisionRecord, JobState):
        session.execute(delete(table).where(table.job_id.in_(job_ids)))
    session.execute(delete(Job).where(Job.id.in_(job_ids)))


def prunable(
    session: Session, older_than_s: float, tenant: str | None, statuses: list[str] | None
) -> list[int]:
    """Up to :data:`PRUNE_BATCH` ids of jobs whose last report is older than ``older_than_s``."""
    statement = select(Job.id).where(older_than(session, older_than_s)).order_by(Job.id).limit(PRUNE_BATCH)
    if tenant is not None:
        statement = statement.join(Tenant, Tenant.id == Job.tenant_id).where(Tenant.name == tenant)
    if statuses:
        statement = statement.where(Job.status.in_(statuses))
    return list(session.scalars(statement))
