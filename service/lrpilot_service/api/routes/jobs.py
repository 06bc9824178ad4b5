"""``/v1/jobs``: create or resume a job, report windows, read its schedule, end it, delete it.

Handlers are plain ``def`` on purpose: the repository is synchronous (SQLAlchemy sessions and the
engine's CPU work), so FastAPI runs them in its thread pool and the event loop stays free. A job
name is one path segment (names never contain ``/``), so ``/v1/jobs/{job}/schedule`` can never be
read as a job named ``x/schedule``. Every route goes through ``CallerTenant``: a token sees its
tenant's jobs only, and another tenant's job is a 404 like a job that does not exist.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from lrpilot.bounds import MAX_REPORT_STEPS, STEP_LIMIT
from lrpilot.protocol import (
    Decision,
    ErrorBody,
    JobCreate,
    JobPage,
    JobStatusUpdate,
    JobView,
    Schedule,
    WindowReport,
)
from lrpilot_service.api.deps import (
    AppMetrics,
    AppSettings,
    CallerTenant,
    JobName,
    PageSize,
    Repository,
    WindowIndex,
)

#: Every refusal a route may answer, declared so OpenAPI clients (and schemathesis) know them.
ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 408, 409, 413, 422, 429, 503)
}

_STATUS = "(running|stale|done|failed)"
_STATUSES = rf"^{_STATUS}(,{_STATUS})*$"

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=ERROR_RESPONSES)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: {"model": JobView, "description": "Re-attached: the job exists with this config."}},
)
def create_or_attach(
    body: JobCreate, repository: Repository, response: Response, tenant: CallerTenant, settings: AppSettings
) -> JobView:
    """Create the job (201), or re-attach to the same name and config (200) to resume training."""
    view, created = repository.open_job(tenant, body, max_jobs=settings.max_jobs_per_tenant)
    if not created:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("")
def list_jobs(
    repository: Repository,
    tenant: CallerTenant,
    limit: PageSize = 100,
    after: Annotated[
        str | None, Query(max_length=20, pattern=r"^[0-9]+$", description="`next` of the last page.")
    ] = None,
) -> JobPage:
    """The tenant's jobs, oldest first, one page at a time."""
    jobs, cursor = repository.list_page(tenant, limit=limit, after=None if after is None else int(after))
    return JobPage(jobs=jobs, next=None if cursor is None else str(cursor))


@router.delete("")
def prune_jobs(
    repository: Repository,
    tenant: CallerTenant,
    older_than_s: Annotated[
        float, Query(gt=0, le=100 * 365 * 86400, description="Last report older than this.")
    ],
    status: Annotated[
        str | None, Query(pattern=_STATUSES, description="Only these, e.g. done,failed.")
    ] = None,
) -> dict[str, int]:
    """Delete the tenant's jobs whose last report is older than ``older_than_s`` (``lrpilot jobs prune``)."""
    statuses = status.split(",") if status else None
    return {"deleted": repository.prune(older_than_s, tenant=tenant, statuses=statuses)}


@router.post("/{job}/windows/{window}")
def report_window(
    job: JobName,
    window: WindowIndex,
    report: WindowReport,
    repository: Repository,
    metrics: AppMetrics,
    tenant: CallerTenant,
) -> Decision:
    """Report a window's losses; get the next decision. A retry of a decided window gets the same one."""
    started = time.perf_counter()
    decided = repository.decide(tenant, job, window, report)
    metrics.observe_decision(time.perf_counter() - started, decided.decision)
    if decided.planned is not None:  # steps a client trained in fallback show in the plan it left
        metrics.observe_report(decided.planned, report)
    return decided.decision


@router.get("/{job}/schedule")
def schedule(
    job: JobName,
    repository: Repository,
    tenant: CallerTenant,
    from_step: Annotated[int, Query(ge=0, le=STEP_LIMIT * 10)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_REPORT_STEPS)] = MAX_REPORT_STEPS,
) -> Schedule:
    """One page of the job's steps (``next_step`` says where the next begins), its stages, candidates."""
    return repository.schedule(tenant, job, from_step=from_step, limit=limit)


@router.post("/{job}/status")
def set_status(job: JobName, body: JobStatusUpdate, repository: Repository, tenant: CallerTenant) -> JobView:
    """The client ends the job: ``failed`` (the run crashed) or ``done`` (it stopped early)."""
    return repository.set_status(tenant, job, body.status, body.reason)


@router.get("/{job}")
def get_job(job: JobName, repository: Repository, tenant: CallerTenant) -> JobView:
    return repository.get_job(tenant, job)


@router.delete("/{job}", status_code=status.HTTP_204_NO_CONTENT)
def delete_job(job: JobName, repository: Repository, tenant: CallerTenant) -> None:
    repository.delete_job(tenant, job)
