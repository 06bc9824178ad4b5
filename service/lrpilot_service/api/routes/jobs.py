"""``/v1/jobs``: create or resume a job, report windows, read its schedule, delete it.

Handlers are plain ``def`` on purpose: the repository is synchronous (SQLAlchemy sessions and the
engine's CPU work), so FastAPI runs them in its thread pool and the event loop stays free. Job
names may contain ``/``, hence ``{job:path}``; the longer routes are declared first so that
``.../schedule`` and ``.../windows/{n}`` win over the bare job route.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Response, status

from lrpilot.protocol import Decision, ErrorBody, JobCreate, JobView, Schedule, WindowReport
from lrpilot_service.api.deps import AppMetrics, CallerTenant, JobName, Repository, WindowIndex

_ERRORS: dict[int | str, dict[str, object]] = {code: {"model": ErrorBody} for code in (404, 409, 413, 422)}

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=_ERRORS)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_or_attach(
    body: JobCreate, repository: Repository, response: Response, tenant: CallerTenant
) -> JobView:
    """Create the job (201), or re-attach to the same name and config (200) to resume training."""
    view, created = repository.open_job(tenant, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return view


@router.get("")
def list_jobs(repository: Repository, tenant: CallerTenant) -> list[JobView]:
    return repository.list_jobs(tenant)


@router.post("/{job:path}/windows/{window}")
def report_window(
    job: JobName,
    window: WindowIndex,
    report: WindowReport,
    repository: Repository,
    metrics: AppMetrics,
    tenant: CallerTenant,
) -> Decision:
    """Report a window's losses; get the next decision. A retry of a decided window gets the same one."""
    planned = repository.get_job(tenant, job).decision  # to count steps a client trained in fallback
    started = time.perf_counter()
    decision = repository.report_window(tenant, job, window, report)
    metrics.observe_decision(time.perf_counter() - started, decision)
    if planned.window == window:
        metrics.observe_report(planned, report)
    return decision


@router.get("/{job:path}/schedule")
def schedule(job: JobName, repository: Repository, tenant: CallerTenant) -> Schedule:
    return repository.schedule(tenant, job)


@router.get("/{job:path}")
def get_job(job: JobName, repository: Repository, tenant: CallerTenant) -> JobView:
    return repository.get_job(tenant, job)


@router.delete("/{job:path}", status_code=status.HTTP_204_NO_CONTENT)
def delete_job(job: JobName, repository: Repository, tenant: CallerTenant) -> None:
    repository.delete_job(tenant, job)
