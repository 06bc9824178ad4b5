"""``/v1/admin``: tenants and their tokens, for admin tokens only (``lrpilot tokens`` over HTTP).

The first admin token of a deployment cannot come from here (nobody holds one yet):
``lrpilot tokens create --tenant T --admin`` writes it to the database directly
(docs/operations.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from lrpilot.admin_protocol import TenantInfo, TenantUpdate, TokenCreate, TokenCreated, TokenInfo
from lrpilot.protocol import NAME_MAX_LENGTH, NAME_PATTERN
from lrpilot_service.api.deps import AdminCaller, Repository
from lrpilot_service.api.routes.jobs import ERROR_RESPONSES

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=ERROR_RESPONSES)
TenantName = Annotated[str, Path(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN)]


@router.get("/tenants")
def list_tenants(repository: Repository, _: AdminCaller) -> list[TenantInfo]:
    return repository.access.list_tenants()


@router.put("/tenants/{tenant}")
def set_tenant(tenant: TenantName, body: TenantUpdate, repository: Repository, _: AdminCaller) -> TenantInfo:
    """Create the tenant or set its job quota (``max_jobs``: null means the service's default)."""
    return repository.access.set_tenant(tenant, body.max_jobs)


@router.get("/tokens")
def list_tokens(
    repository: Repository,
    _: AdminCaller,
    tenant: Annotated[str | None, Query(max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN)] = None,
) -> list[TokenInfo]:
    return repository.access.list_tokens(tenant)


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, repository: Repository, _: AdminCaller) -> TokenCreated:
    """A new token; its secret is in this reply only (the service keeps a hash)."""
    return repository.access.create_token(body.tenant, admin=body.admin, label=body.label)


@router.delete("/tokens/{token_id}")
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], repository: Repository, _: AdminCaller
) -> TokenInfo:
    """Revoke at once, in every service process (each request looks its token up)."""
    return repository.access.revoke_token(token_id)
