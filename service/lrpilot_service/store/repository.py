"""The job repository: the one code path (service and embedded mode) from reports to decisions.

Every mutation is one short transaction that locks the job row first, so any number of processes
can serve the same database: on PostgreSQL a row lock, on SQLite ``BEGIN IMMEDIATE`` (see db.py).
A report is decided by :mod:`lrpilot_service.store.decide`, with no lock held while the engine
thinks. Idempotency lives in the keys: a decision row per (job, window) is the stored reply to
every retry of the report before it, and observations keep their first write. Every transaction is
retried on transient failures (db.TRANSACTION_RETRY), dropped connections included.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, and_, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from lrpilot.protocol import Decision, JobCreate, JobView, Schedule, TunerConfig, WindowReport
from lrpilot_service.engine import State, advance, summarize
from lrpilot_service.store import lifecycle
from lrpilot_service.store.access import AccessStore
from lrpilot_service.store.db import (
    DEFAULT_POOL_SIZE,
    create_db_engine,
    retry_transaction,
    write_engine,
)
from lrpilot_service.store.decide import Decided, decide, state_version, status_of, stored_decision
from lrpilot_service.store.engine_state import load_state, save_state
from lrpilot_service.store.errors import JobConflict, JobNotFound
from lrpilot_service.store.migrate import upgrade_engine
from lrpilot_service.store.models import DecisionRecord, Job, Tenant
from lrpilot_service.store.schedule import load_schedule
from lrpilot_service.store.summaries import last_losses
from lrpilot_service.store.tenants import check_quota, ensure_tenant, utc


class JobRepository:
    """Jobs of all tenants in one database; methods are thread-safe (one session per call)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # Reads see one snapshot (PostgreSQL's default would let a job row and its state differ).
        self._reads = (
            engine.execution_options(isolation_level="REPEATABLE READ") if _postgres(engine) else engine
        )
        self._read: sessionmaker[Session] = sessionmaker(self._reads, expire_on_commit=False)
        self._write: sessionmaker[Session] = sessionmaker(write_engine(engine), expire_on_commit=False)
        self.access = AccessStore(engine)

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

    def open_job(self, tenant: str, body: JobCreate, max_jobs: int | None = None) -> tuple[JobView, bool]:
        """``create_or_attach`` that also says whether the job was created (the API's 201 vs 200).

        ``max_jobs`` is the tenant quota unless the tenant has its own (QuotaExceeded beyond it).
        """
        existing = retry_transaction(lambda: self._attach(tenant, body))
        if existing is not None:
            return existing, False
        state, decision = advance(body.config, None, None)  # no lock held while the engine plans
        try:
            return retry_transaction(lambda: self._insert_job(tenant, body, state, decision, max_jobs))
        except IntegrityError:
            # Another process inserted the same (tenant, name) between our read and our insert.
            attached = retry_transaction(lambda: self._attach(tenant, body))
            if attached is None:
                raise
            return attached, False

    def report_window(self, tenant: str, name: str, window: int, report: WindowReport) -> Decision:
        """The decision for ``window + 1``: computed once, stored under the job's lock, then replayed."""
        return self.decide(tenant, name, window, report).decision

    def decide(self, tenant: str, name: str, window: int, report: WindowReport) -> Decided:
        """``report_window``, also returning the decision the report followed (for the metrics)."""
        return retry_transaction(lambda: decide(self._reads, tenant, name, window, report))

    def get_job(self, tenant: str, name: str) -> JobView:
        def read() -> JobView:
            with self._read() as session:
                return self._view(session, self._job(session, tenant, name, lock=False), tenant)

        return retry_transaction(read)

    def last_losses(self, tenant: str) -> dict[str, tuple[int, float | None]]:
        """Each of the tenant's jobs that reported: its last step and that step's loss (the dashboard)."""

        def read() -> dict[str, tuple[int, float | None]]:
            with self._read() as session:
                return last_losses(session, tenant)

        return retry_transaction(read)

    def list_jobs(self, tenant: str) -> list[JobView]:
        """Every job of the tenant, in creation order."""
        return self.list_page(tenant)[0]

    def list_page(
        self, tenant: str, limit: int | None = None, after: int | None = None
    ) -> tuple[list[JobView], int | None]:
        """Up to ``limit`` jobs created after the cursor ``after``, and the cursor of the next page."""
        statement = (
            select(Job, DecisionRecord)
            .join(Tenant, Tenant.id == Job.tenant_id)
            .join(DecisionRecord, and_(DecisionRecord.job_id == Job.id, DecisionRecord.window == Job.window))
            .where(Tenant.name == tenant)
            .order_by(Job.id)
            .limit(None if limit is None else limit + 1)
        )
        if after is not None:
            statement = statement.where(Job.id > after)

        def read() -> list[Any]:
            with self._read() as session:
                return list(session.execute(statement))

        rows = retry_transaction(read)
        more = limit is not None and len(rows) > limit
        rows = rows[:limit] if more else rows
        views = [_job_view(job, tenant, _decision(record)) for job, record in rows]
        return views, (rows[-1][0].id if more else None)

    def schedule(self, tenant: str, name: str, *, from_step: int = 0, limit: int | None = None) -> Schedule:
        """The job's schedule; with ``limit``, one page of steps from ``from_step`` on."""

        def read() -> Schedule:
            with self._read() as session:
                job = self._job(session, tenant, name, lock=False)
                stages = summarize(load_state(session, job.id))
                return load_schedule(session, job.id, name, stages, from_step, limit)

        return retry_transaction(read)

    def delete_job(self, tenant: str, name: str) -> None:
        """Remove the job with its observations, decisions and state (the tenant stays)."""
        found: list[int] = []

        def work() -> None:
            with self._write() as session:
                job = self._find(session, tenant, name, lock=True)
                if job is None:
                    if found:  # a retry after a commit whose reply was lost: the job is gone, as asked
                        return
                    raise JobNotFound(tenant, name)
                found.append(job.id)
                lifecycle.delete_jobs(session, [job.id])
                session.commit()

        retry_transaction(work)

    def set_status(self, tenant: str, name: str, status: str, reason: str = "") -> JobView:
        """The client ends the job itself (``failed``, ``done``); a later report resumes it."""

        def work() -> JobView:
            with self._write() as session:
                job = self._job(session, tenant, name, lock=True)
                lifecycle.set_status(session, job.id, status, reason)
                session.commit()
            return self.get_job(tenant, name)

        return retry_transaction(work)

    def mark_stale(self, stale_after_s: float) -> int:
        """Running jobs with no report for ``stale_after_s`` become stale; returns how many."""

        def work() -> int:
            with self._write() as session:
                count = lifecycle.mark_stale(session, stale_after_s)
                session.commit()
                return count

        return retry_transaction(work)

    def prune(self, older_than_s: float, tenant: str | None = None, statuses: list[str] | None = None) -> int:
        """Delete jobs whose last report (or status change) is older than ``older_than_s``."""

        def batch() -> int:
            with self._write() as session:
                ids = lifecycle.prunable(session, older_than_s, tenant, statuses)
                if ids:
                    lifecycle.delete_jobs(session, ids)
                session.commit()
                return len(ids)

        deleted = 0
        while count := retry_transaction(batch):
            deleted += count
        return deleted

    def job_counts(self) -> dict[str, int]:
        """Number of jobs per status over all tenants (for ``/metrics``)."""

        def read() -> dict[str, int]:
            with self._read() as session:
                rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
                return {status: count for status, count in rows}

        return retry_transaction(read)

    def _attach(self, tenant: str, body: JobCreate) -> JobView | None:
        with self._read() as session:
            job = self._find(session, tenant, body.name, lock=False)
            return None if job is None else self._attached(session, job, tenant, body)

    def _insert_job(
        self, tenant: str, body: JobCreate, state: State, decision: Decision, max_jobs: int | None
    ) -> tuple[JobView, bool]:
        with self._write() as session:
            existing = self._find(session, tenant, body.name, lock=True)
            if existing is not None:
                return self._attached(session, existing, tenant, body), False
            tenant_id = ensure_tenant(session, tenant)
            check_quota(session, tenant_id, tenant, max_jobs)
            decision = decision.model_copy(update={"job": body.name})
            job = Job(
                tenant_id=tenant_id,
                name=body.name,
                config=body.config.model_dump(mode="json"),
                state_version=state_version(state),
                status=status_of(decision),
                window=decision.window,
                steps_reported=0,
            )
            session.add(job)
            session.flush()
            session.add(
                DecisionRecord(
                    job_id=job.id, window=decision.window, decision=decision.model_dump(mode="json")
                )
            )
            save_state(session, job.id, state, {})
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
        return _job_view(job, tenant, stored_decision(session, job.id, job.window))


def open_repository(database_url: str, pool_size: int = DEFAULT_POOL_SIZE) -> JobRepository:
    """A repository on ``database_url`` with its schema upgraded to the newest migration."""
    engine = create_db_engine(database_url, pool_size=pool_size)
    upgrade_engine(engine)
    return JobRepository(engine)


def _postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


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
        status=job.status,  # type: ignore[arg-type]  # the check constraint holds it to JobStatus
        config=TunerConfig.model_validate(job.config),
        decision=decision,
        steps_reported=job.steps_reported,
        created_at=utc(job.created_at),
        updated_at=utc(job.updated_at),
        reason=job.status_reason,
    )


def _decision(record: DecisionRecord) -> Decision:
    return Decision.model_validate(record.decision)
