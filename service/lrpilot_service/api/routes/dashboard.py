"""The dashboard: ``/`` lists the caller's jobs, ``/jobs/{job}`` shows one job (LR, loss, stages, candidates).

The pages are one static HTML shell plus vendored JavaScript (``api/static``, no CDN); the
browser reads the same ``/v1`` JSON API as every client, with the session's credentials
(``credentials: "same-origin"``). Every route here takes the caller's tenant from
:data:`~lrpilot_service.api.deps.CallerTenant`, the one place a request's tenant is decided, so the
pages see exactly the jobs the API would show that caller.

``GET /v1/dashboard/jobs`` is the list view's data: the jobs with their last reported step and
loss (``JobRepository.last_losses``), instead of one schedule per job.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from lrpilot.protocol import JobView, WireModel
from lrpilot_service.api.deps import CallerTenant, JobName, Repository
from lrpilot_service.api.routes.jobs import ERROR_RESPONSES

router = APIRouter(tags=["dashboard"])
_PAGE = resources.files("lrpilot_service.api").joinpath("static", "dashboard.html")


class JobSummary(WireModel):
    """A job as the dashboard's list shows it: the API's view plus its last reported step and loss."""

    job: JobView
    last_step: int | None = None
    last_loss: float | None = None


def _page() -> HTMLResponse:
    return HTMLResponse(_PAGE.read_text(encoding="utf-8"))


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def jobs_page(tenant: CallerTenant) -> HTMLResponse:
    """The jobs list (filled in by dashboard.js from ``/v1/dashboard/jobs``)."""
    return _page()


@router.get("/jobs/{job}", response_class=HTMLResponse, include_in_schema=False)
def job_page(job: JobName, tenant: CallerTenant) -> HTMLResponse:
    """One job (filled in by dashboard.js from ``/v1/jobs/{job}`` and its schedule)."""
    return _page()


@router.get("/v1/dashboard/jobs", responses=ERROR_RESPONSES)
def job_summaries(repository: Repository, tenant: CallerTenant) -> list[JobSummary]:
    """The caller's jobs with the last step and loss each reported."""
    latest = repository.last_losses(tenant)
    summaries = []
    for view in repository.list_jobs(tenant):
        step, loss = latest.get(view.name, (None, None))
        summaries.append(JobSummary(job=view, last_step=step, last_loss=loss))
    return summaries
