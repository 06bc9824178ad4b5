"""Wire models of the admin API (``/v1/admin``): tenants and their bearer tokens.

An admin token manages every tenant's tokens; a token's secret is shown once, when it is created,
and only its SHA-256 is stored, so a lost token is revoked and replaced, never recovered.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from lrpilot.protocol import Name, WireModel

MAX_JOBS_LIMIT = 10_000_000


class TokenCreate(WireModel):
    """A new token for ``tenant`` (created on first use); ``admin`` may manage tenants and tokens."""

    tenant: Name
    admin: bool = False
    label: str = Field("", max_length=200, description="Who or what uses it, for the token list.")


class TokenInfo(WireModel):
    """A token as listed: never its secret, only the first characters to tell tokens apart."""

    id: int
    tenant: str
    admin: bool
    label: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class TokenCreated(TokenInfo):
    """The reply to a creation: the one time the secret ``token`` is shown."""

    token: str


class TenantUpdate(WireModel):
    """Create a tenant, or change its job quota (``None``: the service's default)."""

    max_jobs: int | None = Field(None, ge=0, le=MAX_JOBS_LIMIT)


class TenantInfo(WireModel):
    name: str
    max_jobs: int | None
    jobs: int
    tokens: int
    created_at: datetime
