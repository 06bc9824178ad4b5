"""The job store's tables (SQLAlchemy 2 typed declarative); migrations/ must match them exactly.

Keys carry the invariants rather than code: (tenant, name) is unique per job, (job, step) per
observation so the first write wins, and (job, window) per decision so a retried report finds the
reply it got the first time. Timestamps come from the database clock so that several service
processes on different hosts agree on them (``jobs.updated_at`` is the heartbeat).

The engine state lives beside the job, one row per top-level key (``job_states``): a window rewrites
only the keys it changed (the awaited window, the recent losses), not the stages' history, which
kept every job row at 4-10 KB rewritten per window. Tokens are stored as SHA-256 hashes only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, MetaData, UniqueConstraint, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from lrpilot.protocol import NAME_MAX_LENGTH
from lrpilot_service.store.types import ExactJSON

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base; a naming convention so alembic can name and later drop constraints."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _now_column() -> Mapped[datetime]:
    return mapped_column(sa.DateTime(timezone=True), server_default=func.now(), nullable=False)


JOB_STATUSES = ("running", "stale", "done", "failed")


class Tenant(Base):
    """A namespace of jobs: a token's, or the ``X-Lrpilot-Tenant`` header's without auth."""

    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX_LENGTH), unique=True, nullable=False)
    created_at: Mapped[datetime] = _now_column()
    # Most jobs the tenant may hold; NULL: the service's max_jobs_per_tenant setting.
    max_jobs: Mapped[int | None] = mapped_column(nullable=True)


class Token(Base):
    """A bearer token of a tenant: only its SHA-256 is kept; ``revoked_at`` ends it at once."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    secret_hash: Mapped[str] = mapped_column(sa.String(64), unique=True, nullable=False)
    # The first characters of the token, enough for a person to tell tokens apart in a list.
    prefix: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    admin: Mapped[bool] = mapped_column(nullable=False)
    label: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    created_at: Mapped[datetime] = _now_column()
    revoked_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True), nullable=True)


class Job(Base):
    """One tuned training run: its config, the engine state, and the window it waits for."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_jobs_tenant_id_name"),
        sa.CheckConstraint("status IN ('running', 'stale', 'done', 'failed')", name="status"),
        sa.Index("ix_jobs_status_updated_at", "status", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX_LENGTH), nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(ExactJSON, nullable=False)
    # The engine's state format (state["version"]), so a later release can find states to upgrade.
    state_version: Mapped[int] = mapped_column(nullable=False)
    status: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    # "window" is a reserved word in PostgreSQL and SQLite, hence the column name.
    window: Mapped[int] = mapped_column("awaited_window", nullable=False)
    steps_reported: Mapped[int] = mapped_column(nullable=False)
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), nullable=False
    )
    # What the client said when it marked the job failed or done.
    status_reason: Mapped[str | None] = mapped_column(sa.String(500), nullable=True)


class JobState(Base):
    """One top-level key of a job's engine state (the state is the union of its job's rows)."""

    __tablename__ = "job_states"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(ExactJSON, nullable=True)


class Observation(Base):
    """One reported step. NaN is stored as NULL plus a bit in ``nan_mask`` (SQLite has no NaN)."""

    __tablename__ = "observations"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[int] = mapped_column(sa.BigInteger, primary_key=True, autoincrement=False)
    window: Mapped[int] = mapped_column("window_index", nullable=False)
    loss: Mapped[float | None] = mapped_column(sa.Double)
    grad_norm: Mapped[float | None] = mapped_column(sa.Double)
    lr: Mapped[float | None] = mapped_column(sa.Double)
    val_loss: Mapped[float | None] = mapped_column(sa.Double)
    nan_mask: Mapped[int] = mapped_column(sa.SmallInteger, nullable=False, server_default="0")


class DecisionRecord(Base):
    """The decision given for a window: the idempotent reply to every retry of the report before it."""

    __tablename__ = "decisions"

    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    window: Mapped[int] = mapped_column("window_index", primary_key=True, autoincrement=False)
    decision: Mapped[dict[str, Any]] = mapped_column(ExactJSON, nullable=False)
    created_at: Mapped[datetime] = _now_column()
