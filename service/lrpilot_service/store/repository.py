"""The job repository: the one code path (service and embedded mode) from reports to decisions.

Every mutation is one transaction that first locks the job row, so any number of processes can
serve the same database: on PostgreSQL ``SELECT ... FOR UPDATE``, on SQLite ``BEGIN IMMEDIATE``
(see db.py). Idempotency lives in the keys: a decision row per (job, window) is the stored reply to
every retry of the report before it, and observations keep their first write.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, sessionmaker

from lrpilot.protocol import Decision, JobCreate, JobView, Schedule, TunerConfig, WindowReport
from lrpilot_service.engine import State, advance, summarize
from lrpilot_service.store.db import create_db_engine, retry_transaction, write_engine
from lrpilot_service.store.errors import JobConflict, JobNotFound, WindowConflict
from lrpilot_service.store.migrate import upgrade_engine
from lrpilot_service.store.models import DecisionRecord, Job, Observation, Tenant
from lrpilot_service.store.observations import insert_observations, load_observations, report_rows
from lrpilot_service.store.schedule import build_schedule


class JobRepository:
    """Jobs of all tenants in one database; methods are thread-safe (one session per call)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
        self._write: sessionmaker[Session] = sessionmaker(write_engine(engine), expire_on_commit=False)

    def close(self) -> None:
        """Release pooled connections (the database itself is untouched)."""
        self.engine.dispose()

    def ping(self) -> None:
        """Raise if the database cannot answer a trivial query (used by ``/healthz``)."""
        with self._read() as session:
            session.execute(text("SELECT 1"))

    def create_or_attach(self, tenant: str, body: JobCreate) -> JobView:
        """Create the job, or return the existing one when its config is the same (a resume)."""
        return self.open_job(tenant, body)[0]

    def open_job(self, tenant: str, body: JobCreate) -> tuple[JobView, bool]:
        """``create_or_attach`` that also says whether the job was created (the API's 201 vs 200)."""
        existing = retry_transaction(lambda: self._attach(tenant, body))
        if existing is not None:
            return existing, False
        # Plan window 0 before taking any lock: the engine's first call may import for seconds.
        state, decision = advance(body.config, None, None)
        try:
            return retry_transaction(lambda: self._insert_job(tenant, body, state, decision))
        except IntegrityError:
            # Another process inserted the same (tenant, name) between our read and our insert.
            attached = retry_transaction(lambda: self._attach(tenant, body))
            if attached is None:
                raise
            return attached, False

    def report_window(self, tenant: str, name: str, window: int, report: WindowReport) -> Decision:
        """The decision for ``window + 1``: computed once under the job's lock, then replayed."""
        return retry_transaction(lambda: self._report(tenant, name, window, report))

    def get_job(self, tenant: str, name: str) -> JobView:
        with self._read() as session:
            return self._view(session, self._job(session, tenant, name, lock=False), tenant)

    def list_jobs(self, tenant: str) -> list[JobView]:
        statement = (
            select(Job, DecisionRecord)
            .join(Tenant, Tenant.id == Job.tenant_id)
            .join(DecisionRecord, and_(DecisionRecord.job_id == Job.id, DecisionRecord.window == Job.window))
            .where(Tenant.name == tenant)
            .options(defer(Job.state))
            .order_by(Job.id)
        )
        with self._read() as session:
            return [_job_view(job, tenant, _decision(record)) for job, record in session.execute(statement)]

    def schedule(self, tenant: str, name: str) -> Schedule:
        with self._read() as session:
            job = self._job(session, tenant, name, lock=False)
            records = session.scalars(select(DecisionRecord).where(DecisionRecord.job_id == job.id))
            decisions = {record.window: _decision(record) for record in records}
            observations = load_observations(session, job.id)
            return build_schedule(name, observations, decisions, summarize(job.state))

    def delete_job(self, tenant: str, name: str) -> None:
        """Remove the job with its observations and decisions (the tenant stays)."""

        def work() -> None:
            with self._write() as session:
                job = self._job(session, tenant, name, lock=True)
                session.execute(delete(Observation).where(Observation.job_id == job.id))
                session.execute(delete(DecisionRecord).where(DecisionRecord.job_id == job.id))
                session.execute(delete(Job).where(Job.id == job.id))
                session.commit()

        retry_transaction(work)

    def job_counts(self) -> dict[str, int]:
        """Number of jobs per status over all tenants (for ``/metrics``)."""
        with self._read() as session:
            rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
            return {status: count for status, count in rows}

    def _report(self, tenant: str, name: str, window: int, report: WindowReport) -> Decision:
        with self._write() as session:
            job = self._job(session, tenant, name, lock=True)
            if window < job.window:
                return self._stored_decision(session, job.id, window + 1)
            if window > job.window:
                raise WindowConflict(name, window, job.window)
            current = self._stored_decision(session, job.id, window)
            # ReportRejected propagates from here; leaving the block rolls the transaction back.
            state, decision = advance(TunerConfig.model_validate(job.config), job.state, report)
            decision = decision.model_copy(update={"job": name})
            insert_observations(session, report_rows(job.id, window, report, current))
            session.add(DecisionRecord(job_id=job.id, window=decision.window, decision=_dump(decision)))
            session.execute(
                update(Job)
                .where(Job.id == job.id)
                .values(
                    state=state,
                    state_version=_state_version(state),
                    status=_status(decision),
                    window=decision.window,
                    steps_reported=Job.steps_reported + len(report.losses),
                    updated_at=func.now(),
                )
            )
            session.commit()
            return decision

    def _attach(self, tenant: str, body: JobCreate) -> JobView | None:
        with self._read() as session:
            job = self._find(session, tenant, body.name, lock=False)
            return None if job is None else self._attached(session, job, tenant, body)

    def _insert_job(
        self, tenant: str, body: JobCreate, state: State, decision: Decision
    ) -> tuple[JobView, bool]:
        with self._write() as session:
            existing = self._find(session, tenant, body.name, lock=True)
            if existing is not None:
                return self._attached(session, existing, tenant, body), False
            decision = decision.model_copy(update={"job": body.name})
            job = Job(
                tenant_id=_ensure_tenant(session, tenant),
                name=body.name,
                config=body.config.model_dump(mode="json"),
                state=state,
                state_version=_state_version(state),
                status=_status(decision),
                window=decision.window,
                steps_reported=0,
            )
            session.add(job)
            session.flush()
            session.add(DecisionRecord(job_id=job.id, window=decision.window, decision=_dump(decision)))
            session.flush()
            view = _job_view(job, tenant, decision)
            session.commit()
            return view, True

    def _attached(self, session: Session, job: Job, tenant: str, body: JobCreate) -> JobView:
        differences = _config_differences(TunerConfig.model_validate(job.config), body.config)
        if differences:
            raise JobConflict(body.name, differences)
        return self._view(session, job, tenant)

    def _find(self, session: Session, tenant: str, name: str, *, lock: bool) -> Job | None:
        statement = select(Job).join(Tenant, Tenant.id == Job.tenant_id)
        statement = statement.where(Tenant.name == tenant, Job.name == name)
        if lock:
            statement = statement.with_for_update(of=Job)
        return session.scalars(statement).one_or_none()

    def _job(self, session: Session, tenant: str, name: str, *, lock: bool) -> Job:
        job = self._find(session, tenant, name, lock=lock)
        if job is None:
            raise JobNotFound(tenant, name)
        return job

    def _view(self, session: Session, job: Job, tenant: str) -> JobView:
        return _job_view(job, tenant, self._stored_decision(session, job.id, job.window))

    def _stored_decision(self, session: Session, job_id: int, window: int) -> Decision:
        record = session.get(DecisionRecord, (job_id, window))
        if record is None:
            raise LookupError(f"job {job_id} has no stored decision for window {window}")
        return _decision(record)


def open_repository(database_url: str) -> JobRepository:
    """A repository on ``database_url`` with its schema upgraded to the newest migration."""
    engine = create_db_engine(database_url)
    upgrade_engine(engine)
    return JobRepository(engine)


def _ensure_tenant(session: Session, name: str) -> int:
    """The tenant's id, inserting it first if needed (safe against concurrent first jobs)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(Tenant).values(name=name).on_conflict_do_nothing(index_elements=["name"]))
    return session.scalars(select(Tenant.id).where(Tenant.name == name)).one()


def _config_differences(stored: TunerConfig, given: TunerConfig) -> list[str]:
    return [
        f"{field}: stored {getattr(stored, field)!r}, given {getattr(given, field)!r}"
        for field in type(stored).model_fields
        if getattr(stored, field) != getattr(given, field)
    ]


def _job_view(job: Job, tenant: str, decision: Decision) -> JobView:
    return JobView(
        name=job.name,
        tenant=tenant,
        status="done" if job.status == "done" else "running",
        config=TunerConfig.model_validate(job.config),
        decision=decision,
        steps_reported=job.steps_reported,
        created_at=_utc(job.created_at),
        updated_at=_utc(job.updated_at),
    )


def _decision(record: DecisionRecord) -> Decision:
    return Decision.model_validate(record.decision)


def _dump(decision: Decision) -> dict[str, Any]:
    return decision.model_dump(mode="json")


def _status(decision: Decision) -> str:
    return "done" if decision.action == "done" else "running"


def _state_version(state: State) -> int:
    return state["version"]


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; the database clock (CURRENT_TIMESTAMP) is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
