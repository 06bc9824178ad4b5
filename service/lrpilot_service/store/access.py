"""Who may call: bearer tokens (SHA-256 stored, never the secret), their tenants, revocation.

A token is 32 random bytes (``lrp_`` + URL-safe base64). Being random, it needs no salt or slow
hash: SHA-256 makes the stored value useless to a thief and keeps the lookup one indexed query,
run on every request, so a revoked token stops working at once in every service process.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from lrpilot.admin_protocol import TenantInfo, TokenCreated, TokenInfo
from lrpilot_service.store.db import retry_transaction, write_engine
from lrpilot_service.store.errors import AuthenticationFailed, NotFound
from lrpilot_service.store.models import Job, Tenant, Token
from lrpilot_service.store.tenants import ensure_tenant, utc

TOKEN_PREFIX = "lrp_"
_SHOWN_PREFIX = 12
_MAX_TOKEN_LENGTH = 200


@dataclass(frozen=True)
class Caller:
    """The holder of a valid token: its id (the rate-limit key), tenant and admin right."""

    token_id: int | None
    tenant: str
    admin: bool


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class AccessStore:
    """Tokens and tenants in the job database; methods are thread-safe (one session per call)."""

    def __init__(self, engine: Engine) -> None:
        self._read: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
        self._write: sessionmaker[Session] = sessionmaker(write_engine(engine), expire_on_commit=False)

    def authenticate(self, token: str) -> Caller:
        """The caller holding ``token``; AuthenticationFailed if it is unknown or revoked."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > _MAX_TOKEN_LENGTH:
            raise AuthenticationFailed("the bearer token is malformed: lrpilot tokens start with 'lrp_'")
        statement = (
            select(Token.id, Token.admin, Token.revoked_at, Tenant.name)
            .join(Tenant, Tenant.id == Token.tenant_id)
            .where(Token.secret_hash == hash_token(token))
        )

        def lookup() -> Caller:
            with self._read() as session:
                row = session.execute(statement).one_or_none()
            if row is None or row.revoked_at is not None:
                state = "revoked" if row is not None else "unknown"
                raise AuthenticationFailed(f"the bearer token is {state}: ask an admin for a new one")
            return Caller(token_id=row.id, tenant=row.name, admin=row.admin)

        return retry_transaction(lookup)

    def create_token(self, tenant: str, *, admin: bool = False, label: str = "") -> TokenCreated:
        """A new token (its tenant created if need be); the secret is in the reply and nowhere else."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)

        def work() -> TokenCreated:
            with self._write() as session:
                token = Token(
                    tenant_id=ensure_tenant(session, tenant),
                    secret_hash=hash_token(secret),
                    prefix=secret[:_SHOWN_PREFIX],
                    admin=admin,
                    label=label,
                )
                session.add(token)
                session.flush()
                session.refresh(token)
                created = TokenCreated(**_info(token, tenant).model_dump(), token=secret)
                session.commit()
                return created

        return retry_transaction(work)

    def list_tokens(self, tenant: str | None = None) -> list[TokenInfo]:
        statement = select(Token, Tenant.name).join(Tenant, Tenant.id == Token.tenant_id).order_by(Token.id)
        if tenant is not None:
            statement = statement.where(Tenant.name == tenant)

        def read() -> list[TokenInfo]:
            with self._read() as session:
                return [_info(token, name) for token, name in session.execute(statement)]

        return retry_transaction(read)

    def revoke_token(self, token_id: int) -> TokenInfo:
        """Revoke at once (idempotent: revoking twice keeps the first revocation time)."""

        def work() -> TokenInfo:
            with self._write() as session:
                session.execute(
                    update(Token)
                    .where(Token.id == token_id, Token.revoked_at.is_(None))
                    .values(revoked_at=func.now())
                )
                row = session.execute(
                    select(Token, Tenant.name)
                    .join(Tenant, Tenant.id == Token.tenant_id)
                    .where(Token.id == token_id)
                ).one_or_none()
                if row is None:
                    raise NotFound(f"no token with id {token_id}: see `lrpilot tokens list`")
                session.commit()
                return _info(row[0], row[1])

        return retry_transaction(work)

    def set_tenant(self, name: str, max_jobs: int | None) -> TenantInfo:
        """Create the tenant, or set its job quota (``None``: the service's default)."""

        def work() -> None:
            with self._write() as session:
                tenant_id = ensure_tenant(session, name)
                session.execute(update(Tenant).where(Tenant.id == tenant_id).values(max_jobs=max_jobs))
                session.commit()

        retry_transaction(work)
        return next(info for info in self.list_tenants() if info.name == name)

    def list_tenants(self) -> list[TenantInfo]:
        jobs = select(Job.tenant_id, func.count().label("n")).group_by(Job.tenant_id).subquery()
        tokens = (
            select(Token.tenant_id, func.count().label("n"))
            .where(Token.revoked_at.is_(None))
            .group_by(Token.tenant_id)
            .subquery()
        )
        statement = (
            select(Tenant, func.coalesce(jobs.c.n, 0), func.coalesce(tokens.c.n, 0))
            .outerjoin(jobs, jobs.c.tenant_id == Tenant.id)
            .outerjoin(tokens, tokens.c.tenant_id == Tenant.id)
            .order_by(Tenant.id)
        )

        def read() -> list[TenantInfo]:
            with self._read() as session:
                return [
                    TenantInfo(
                        name=tenant.name,
                        max_jobs=tenant.max_jobs,
                        jobs=job_count,
                        tokens=token_count,
                        created_at=utc(tenant.created_at),
                    )
                    for tenant, job_count, token_count in session.execute(statement)
                ]

        return retry_transaction(read)


def _info(token: Token, tenant: str) -> TokenInfo:
    return TokenInfo(
        id=token.id,
        tenant=tenant,
        admin=token.admin,
        label=token.label,
        prefix=token.prefix,
        created_at=utc(token.created_at),
        revoked_at=utc(token.revoked_at) if token.revoked_at is not None else None,
    )
