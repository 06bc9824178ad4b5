"""Dependencies injected into routers: the repository, the metrics, the caller and its tenant.

Routers receive collaborators through ``Depends`` instead of importing globals, so tests build an
app around any repository (``create_app(repository=...)``) and no module holds hidden state.

Who is calling is decided here and nowhere else. With auth required, the caller is the holder of
the bearer token (``Authorization: Bearer lrp_...``, or the session cookie the login page sets for
browsers), looked up on every request so that a revocation works at once; the token's tenant is the
request's tenant. An admin token may act for another tenant with the ``X-Lrpilot-Tenant`` header;
an ordinary token naming another tenant gets 403. With auth off (a loopback-only service), the
header names the tenant, as before tokens existed. Every caller is rate-limited here.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Header, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from lrpilot.protocol import DEFAULT_TENANT, NAME_MAX_LENGTH, NAME_PATTERN, TENANT_HEADER
from lrpilot_service.api.metrics import Metrics
from lrpilot_service.api.ratelimit import RateLimiter
from lrpilot_service.api.settings import Settings
from lrpilot_service.store import AuthenticationFailed, Caller, JobRepository, PermissionDenied

SESSION_COOKIE = "lrpilot_session"
"""HttpOnly, SameSite=Strict cookie holding the token of a browser that signed in at ``/login``."""

_bearer = HTTPBearer(
    auto_error=False,
    description="An lrpilot token (`lrpilot tokens create --tenant T`), as `Authorization: Bearer lrp_...`.",
)
_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="Set by signing in at /login.")
_ANONYMOUS = Caller(token_id=None, tenant=DEFAULT_TENANT, admin=True)


# Dependencies that do no I/O are ``async``: FastAPI runs a plain ``def`` dependency in the thread
# pool, and each such hop cost a decision ~0.2 ms under load for nothing.


async def get_repository(request: Request) -> JobRepository:
    return cast(JobRepository, request.app.state.repository)


async def get_metrics(request: Request) -> Metrics:
    return cast(Metrics, request.app.state.metrics)


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


Repository = Annotated[JobRepository, Depends(get_repository)]
AppMetrics = Annotated[Metrics, Depends(get_metrics)]
AppSettings = Annotated[Settings, Depends(get_settings)]
TenantHeader = Annotated[
    str | None,
    Header(
        alias=TENANT_HEADER,
        min_length=1,
        max_length=NAME_MAX_LENGTH,
        pattern=NAME_PATTERN,
        description="Without auth: the namespace of the job names. With auth: the token's tenant is used; "
        "an admin token may name another.",
    ),
]


async def authenticated_caller(
    request: Request,
    repository: Repository,
    settings: AppSettings,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Caller:
    """The token's holder (401 without a valid token); anyone, as an admin, when auth is off."""
    if not settings.auth_required:
        return _ANONYMOUS
    token = bearer.credentials if bearer is not None else cookie
    if not token:
        raise AuthenticationFailed(
            "authentication required: send `Authorization: Bearer <token>` "
            "(an admin creates one with `lrpilot tokens create --tenant T`)"
        )
    caller = await run_in_threadpool(repository.access.authenticate, token)  # one indexed query
    request.state.caller = caller
    return caller


AuthenticatedCaller = Annotated[Caller, Depends(authenticated_caller)]


async def caller_tenant(request: Request, caller: AuthenticatedCaller, tenant: TenantHeader = None) -> str:
    """The tenant whose jobs this request may see: the one place a request's tenant is decided."""
    if caller.token_id is None:  # auth off: the header decides
        chosen = tenant or DEFAULT_TENANT
        _limiter(request).check(("tenant", chosen))
        return chosen
    _limiter(request).check(("token", caller.token_id))
    if tenant is None or tenant == caller.tenant:
        return caller.tenant
    if caller.admin:
        return tenant
    raise PermissionDenied(
        f"this token belongs to tenant {caller.tenant!r}, not {tenant!r}: drop the {TENANT_HEADER} header"
    )


async def admin_caller(request: Request, caller: AuthenticatedCaller) -> Caller:
    """An admin token's holder (403 for an ordinary token)."""
    if not caller.admin:
        raise PermissionDenied("this route needs an admin token (`lrpilot tokens create --tenant T --admin`)")
    _limiter(request).check(("token", caller.token_id))
    return caller


def _limiter(request: Request) -> RateLimiter:
    return cast(RateLimiter, request.app.state.rate_limiter)


CallerTenant = Annotated[str, Depends(caller_tenant)]
AdminCaller = Annotated[Caller, Depends(admin_caller)]
JobName = Annotated[
    str, Path(min_length=1, max_length=NAME_MAX_LENGTH, pattern=NAME_PATTERN, description="The job's name.")
]
WindowIndex = Annotated[int, Path(ge=0, le=2**31 - 1, description="The window whose report this is.")]
PageSize = Annotated[int, Query(ge=1, le=1000, description="Jobs per page.")]
