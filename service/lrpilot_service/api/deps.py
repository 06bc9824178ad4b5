"""Dependencies injected into routers: the repository, the metrics and the caller's tenant.

Routers receive collaborators through ``Depends`` instead of importing globals, so tests build an
app around any repository (``create_app(repository=...)``) and no module holds hidden state.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Header, Path, Request

from lrpilot.protocol import DEFAULT_TENANT, NAME_MAX_LENGTH, NAME_PATTERN, TENANT_HEADER
from lrpilot_service.api.metrics import Metrics
from lrpilot_service.store import JobRepository


def get_repository(request: Request) -> JobRepository:
    return cast(JobRepository, request.app.state.repository)


def get_metrics(request: Request) -> Metrics:
    return cast(Metrics, request.app.state.metrics)


Repository = Annotated[JobRepository, Depends(get_repository)]
AppMetrics = Annotated[Metrics, Depends(get_metrics)]
TenantHeader = Annotated[
    str,
    Header(
        alias=TENANT_HEADER,
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        pattern=NAME_PATTERN,
        description="Namespace of the job names; jobs of other tenants are invisible.",
    ),
]


def caller_tenant(tenant: TenantHeader = DEFAULT_TENANT) -> str:
    """The tenant whose jobs this request may see: the one place a request's tenant is decided."""
    return tenant


CallerTenant = Annotated[str, Depends(caller_tenant)]
JobName = Annotated[
    str, Path(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN, description="The job's name.")
]
WindowIndex = Annotated[int, Path(ge=0, description="The window whose report this is.")]
