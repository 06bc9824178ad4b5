"""Deciding one window, with no lock and no transaction open while the engine thinks.

Two short transactions on one connection (one checkout, one pre-ping): read the job, its awaited
decision and its state (a consistent snapshot: REPEATABLE READ on PostgreSQL); run the engine;
then claim the window with one conditional UPDATE, which takes the row lock and checks that the
window is still awaited at once (``BEGIN IMMEDIATE`` on SQLite), and store the observations, the
decision and the changed state keys. When another process decided the window meanwhile, its
stored decision is the reply: the engine is deterministic, so it is the one this process computed.
Running the engine under the row lock instead (on SQLite: under the database's write lock) let one
job's GP fit hold up every other job's decision (tests/store/test_lifecycle.py checks it does not).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Engine, Select, Table, and_, func, insert, select, update
from sqlalchemy.orm import Session

from lrpilot.protocol import Decision, TunerConfig, WindowReport
from lrpilot_service.engine import State, advance
from lrpilot_service.store.db import WRITE_OPTION
from lrpilot_service.store.engine_state import load_state, save_state
from lrpilot_service.store.errors import JobNotFound, WindowConflict
from lrpilot_service.store.models import DecisionRecord, Job, Tenant
from lrpilot_service.store.observations import insert_observations, report_columns

#: Core statements on the tables (not the ORM entities): a decision pays no ORM bulk machinery.
_JOBS = cast(Table, Job.__table__)
_DECISIONS = cast(Table, DecisionRecord.__table__)


@dataclass(frozen=True)
class Decided:
    """The decision for the next window, and (when this call decided it) the one the report followed."""

    decision: Decision
    planned: Decision | None  # None: a replayed reply, nothing new was learnt from the report


def decide(reads: Engine, tenant: str, name: str, window: int, report: WindowReport) -> Decided:
    """The decision for ``window + 1`` (see the module docstring); one attempt, the caller retries."""
    with reads.connect() as connection:
        with Session(connection) as session:
            row = session.execute(_awaited(tenant, name)).one_or_none()
            if row is None:
                raise JobNotFound(tenant, name)
            job_id, awaited, stored_config, current = row
            if window < awaited:
                return Decided(stored_decision(session, job_id, window + 1), None)
            if window > awaited:
                raise WindowConflict(name, window, awaited)
            state = load_state(session, job_id)
        # ReportRejected propagates from here, before anything was written.
        new_state, decision = advance(TunerConfig.model_validate(stored_config), state, report)
        decision = decision.model_copy(update={"job": name})
        connection.execution_options(**{WRITE_OPTION: True})  # SQLite: BEGIN IMMEDIATE from here on
        with Session(connection) as session:
            if not _claim(session, job_id, window, decision, new_state, len(report.losses)):
                session.rollback()  # decided meanwhile by another process: its decision is the reply
                return Decided(stored_decision(session, job_id, window + 1), None)
            planned = Decision.model_validate(current)
            insert_observations(session, report_columns(job_id, window, report, planned))
            session.connection().execute(
                insert(_DECISIONS).values(
                    job_id=job_id, window_index=decision.window, decision=decision.model_dump(mode="json")
                )
            )
            save_state(session, job_id, new_state, state)
            session.commit()
            return Decided(decision, planned)


def stored_decision(session: Session, job_id: int, window: int) -> Decision:
    record = session.get(DecisionRecord, (job_id, window))
    if record is None:
        raise LookupError(f"job {job_id} has no stored decision for window {window}")
    return Decision.model_validate(record.decision)


def status_of(decision: Decision) -> str:
    return "done" if decision.action == "done" else "running"


def state_version(state: State) -> int:
    return state["version"]


def _claim(session: Session, job_id: int, window: int, decision: Decision, state: State, steps: int) -> bool:
    """Move the job past ``window`` if it still awaits it: the row lock and the check in one statement."""
    jobs = _JOBS.c
    claimed = session.connection().execute(
        update(_JOBS)
        .where(jobs.id == job_id, jobs.awaited_window == window)
        .values(
            state_version=state_version(state),
            status=status_of(decision),
            status_reason=None,
            awaited_window=decision.window,
            steps_reported=jobs.steps_reported + steps,
            updated_at=func.now(),
        )
    )
    return claimed.rowcount == 1


def _awaited(tenant: str, name: str) -> Select[tuple[int, int, Any, Any]]:
    """The job's id, awaited window, config and awaited decision, in one query."""
    return (
        select(Job.id, Job.window, Job.config, DecisionRecord.decision)
        .join(Tenant, Tenant.id == Job.tenant_id)
        .join(DecisionRecord, and_(DecisionRecord.job_id == Job.id, DecisionRecord.window == Job.window))
        .where(Tenant.name == tenant, Job.name == name)
    )
