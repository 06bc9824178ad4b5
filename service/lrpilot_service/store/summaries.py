"""What a jobs list shows beside each job: its last reported step and that step's loss.

Steps are reported contiguously from 0, so a job's last step is ``steps_reported - 1``: one primary
key lookup per job, instead of a scan of every observation for its maximum step.
"""

from __future__ import annotations

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from lrpilot_service.store.models import Job, Observation, Tenant
from lrpilot_service.store.observations import decode_float


def last_losses(session: Session, tenant: str) -> dict[str, tuple[int, float | None]]:
    """Per job name of ``tenant`` that reported anything: (last step, its loss; NaN kept)."""
    statement = (
        select(Job.name, Observation)
        .join(Tenant, Tenant.id == Job.tenant_id)
        .join(Observation, and_(Observation.job_id == Job.id, Observation.step == Job.steps_reported - 1))
        .where(Tenant.name == tenant)
    )
    return {name: (row.step, decode_float(row, "loss")) for name, row in session.execute(statement)}
