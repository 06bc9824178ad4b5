"""Tenant rows shared by jobs and tokens: created on first use, quotas, and the database clock."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from lrpilot_service.store.errors import QuotaExceeded
from lrpilot_service.store.models import Job, Tenant


def ensure_tenant(session: Session, name: str) -> int:
    """The tenant's id, inserting it first if needed (safe against concurrent first jobs)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(Tenant).values(name=name).on_conflict_do_nothing(index_elements=["name"]))
    return session.scalars(select(Tenant.id).where(Tenant.name == name)).one()


def check_quota(session: Session, tenant_id: int, tenant: str, default_max: int | None) -> None:
    """Raise QuotaExceeded if the tenant has its quota of jobs already (its own, else ``default_max``).

    The tenant row is locked first, so concurrent creations in one tenant count one after another.
    """
    own = session.scalars(select(Tenant.max_jobs).where(Tenant.id == tenant_id).with_for_update()).one()
    limit = own if own is not None else default_max
    if limit is None:
        return
    count = session.scalars(select(func.count()).select_from(Job).where(Job.tenant_id == tenant_id)).one()
    if count >= limit:
        raise QuotaExceeded(tenant, limit)


def utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; the database clock (CURRENT_TIMESTAMP) is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
