"""Tokens, tenant quotas, job lifecycle (stale, failed), the engine state beside the job, strict names.

- ``tokens``: bearer tokens of a tenant, stored as SHA-256 hashes; ``tenants.max_jobs``.
- ``jobs.status`` may also be ``stale`` and ``failed``; ``jobs.status_reason``; an index on
  (status, updated_at) for the stale sweep and ``lrpilot jobs prune``.
- ``job_states``: the engine state, one row per top-level key, moved out of ``jobs.state``.
- Names may no longer contain ``/`` or ``..``: existing ones are renamed (``/`` becomes ``:``, a run
  of dots becomes one dot, ``-<id>`` is appended where that name is taken) and each rename is
  printed, so an operator can tell users the new names (docs/operations.md, "Upgrades").

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-10
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_STATUS = "status IN ('running', 'done')"
_NEW_STATUS = "status IN ('running', 'stale', 'done', 'failed')"


def _timestamp(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.add_column("tenants", sa.Column("max_jobs", sa.Integer(), nullable=True))
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        _timestamp("created_at"),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name="fk_tokens_tenant_id_tenants", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("secret_hash", name="uq_tokens_secret_hash"),
    )
    op.create_table(
        "job_states",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.id"], name="fk_job_states_job_id_jobs", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "key", name="pk_job_states"),
    )
    _move_states_out()
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("state")
        batch.add_column(sa.Column("status_reason", sa.String(500), nullable=True))
        batch.drop_constraint("ck_jobs_status", type_="check")
        batch.create_check_constraint("ck_jobs_status", sa.text(_NEW_STATUS))
        batch.create_index("ix_jobs_status_updated_at", ["status", "updated_at"])
    _rename_bad_names("jobs", "tenant_id")
    _rename_bad_names("tenants", None)


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_status_updated_at")
        batch.drop_constraint("ck_jobs_status", type_="check")
        batch.drop_column("status_reason")
        batch.add_column(sa.Column("state", sa.JSON(), nullable=True))
    op.execute("UPDATE jobs SET status = 'running' WHERE status IN ('stale', 'failed')")
    _move_states_back()
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("state", existing_type=sa.JSON(), nullable=False)
        batch.create_check_constraint("ck_jobs_status", sa.text(_OLD_STATUS))
    op.drop_table("job_states")
    op.drop_table("tokens")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("max_jobs")


def _move_states_out() -> None:
    """Copy each job's state JSON into one ``job_states`` row per top-level key (text kept as is)."""
    bind = op.get_bind()
    states = sa.table("job_states", sa.column("job_id"), sa.column("key"), sa.column("value", sa.JSON()))
    for job_id, state in bind.execute(sa.text("SELECT id, state FROM jobs")):
        data = json.loads(state) if isinstance(state, str) else state
        rows = [{"job_id": job_id, "key": key, "value": value} for key, value in data.items()]
        if rows:
            bind.execute(states.insert(), rows)


def _move_states_back() -> None:
    bind = op.get_bind()
    states: dict[int, dict[str, object]] = {}
    for job_id, key, value in bind.execute(sa.text("SELECT job_id, key, value FROM job_states")):
        states.setdefault(job_id, {})[key] = json.loads(value) if isinstance(value, str) else value
    jobs = sa.table("jobs", sa.column("id"), sa.column("state", sa.JSON()))
    for job_id, state in states.items():
        bind.execute(jobs.update().where(jobs.c.id == job_id).values(state=state))


def _rename_bad_names(table: str, scope: str | None) -> None:
    """Give every name with ``/`` or ``..`` a valid one, unique within its scope (tenant or table)."""
    bind = op.get_bind()
    columns = f"id, name, {scope}" if scope else "id, name, 0"
    rows = list(bind.execute(sa.text(f"SELECT {columns} FROM {table}")))
    taken = {(row[2], row[1]) for row in rows}
    for row_id, name, group in rows:
        if "/" not in name and ".." not in name:
            continue
        new = re.sub(r"\.{2,}", ".", name.replace("/", ":"))
        if (group, new) in taken:
            new = f"{new[:180]}-{row_id}"
        taken.add((group, new))
        bind.execute(sa.text(f"UPDATE {table} SET name = :new WHERE id = :id"), {"new": new, "id": row_id})
        print(f"lrpilot migration 0002: renamed {table[:-1]} {name!r} to {new!r} (no more '/' or '..')")
