"""``lrpilot tokens`` and ``lrpilot tenants``: who may call the service, and how many jobs a tenant holds.

Both talk to the service's admin API with an admin token (``--url`` or ``$LRPILOT_URL``, token in
``$LRPILOT_TOKEN``), or, without a URL, to the database directly (``--database-url`` or
``$LRPILOT_DATABASE_URL``): that is how the very first admin token of a deployment is made, e.g.
``docker compose run --rm lrpilot lrpilot tokens create --tenant ops --admin``.

``tokens create`` prints the secret once, alone on the last line of its output, so a script can
take it with ``| tail -n 1``; only its SHA-256 is stored.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any, TypeVar

from lrpilot.admin_protocol import TenantInfo, TenantUpdate, TokenCreate, TokenCreated, TokenInfo
from lrpilot.cli.tables import render
from lrpilot.transport import HttpTransport

_T = TypeVar("_T")


def register(sub: Any) -> None:
    """Add ``tokens`` and ``tenants`` to the ``lrpilot`` subcommands."""
    tokens = sub.add_parser("tokens", help="create, list and revoke bearer tokens")
    actions = tokens.add_subparsers(dest="tokens_command", required=True)
    create = actions.add_parser("create", help="a new token; printed once, on the last line")
    create.add_argument("--tenant", required=True)
    create.add_argument("--admin", action="store_true", help="may manage tenants and tokens")
    create.add_argument("--label", default="", help="who or what uses it")
    listing = actions.add_parser("list", help="tokens (never their secrets)")
    listing.add_argument("--tenant", default=None)
    revoke = actions.add_parser("revoke", help="revoke a token at once")
    revoke.add_argument("id", type=int)
    tenants = sub.add_parser("tenants", help="list tenants, set a tenant's job quota")
    tenant_actions = tenants.add_subparsers(dest="tenants_command", required=True)
    tenant_actions.add_parser("list", help="tenants with their job and token counts")
    quota = tenant_actions.add_parser("set", help="create a tenant or set its job quota")
    quota.add_argument("tenant")
    quota.add_argument("--max-jobs", type=int, default=None, help="omit for the service's default")
    for parser in (create, listing, revoke, *tenant_actions.choices.values()):
        add_target_arguments(parser)


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=None, help="service URL (admin token in $LRPILOT_TOKEN)")
    parser.add_argument("--database-url", default=None, help="talk to this database directly instead")


def remote_url(args: argparse.Namespace) -> str | None:
    """``--url``, else ``$LRPILOT_URL`` unless ``--database-url`` was given."""
    return str(args.url or "") or (None if args.database_url else os.environ.get("LRPILOT_URL"))


def run(args: argparse.Namespace) -> int:
    admin = _Admin(args)
    try:
        if args.command == "tokens" and args.tokens_command == "create":
            created = admin.create_token(TokenCreate(tenant=args.tenant, admin=args.admin, label=args.label))
            kind = "admin token" if created.admin else "token"
            print(f"created {kind} {created.id} for tenant {created.tenant!r} (shown once, keep it now):")
            print(created.token)
        elif args.command == "tokens" and args.tokens_command == "list":
            print(_tokens_table(admin.list_tokens(args.tenant)))
        elif args.command == "tokens":
            revoked = admin.revoke_token(args.id)
            print(f"revoked token {revoked.id} ({revoked.prefix}...) of tenant {revoked.tenant!r}")
        elif args.tenants_command == "list":
            print(_tenants_table(admin.list_tenants()))
        else:
            print(_tenants_table([admin.set_tenant(args.tenant, TenantUpdate(max_jobs=args.max_jobs))]))
    finally:
        admin.close()
    return 0


class _Admin:
    """The admin calls, over HTTP or on the database itself."""

    def __init__(self, args: argparse.Namespace) -> None:
        url = remote_url(args)
        self._http = HttpTransport(url) if url else None
        if self._http is None:
            from lrpilot_service.store import open_repository
            from lrpilot_service.store.db import resolve_database_url

            self._repository = open_repository(resolve_database_url(args.database_url), pool_size=1)
            self._access = self._repository.access

    def create_token(self, body: TokenCreate) -> TokenCreated:
        if self._http is not None:
            return TokenCreated.model_validate(self._http.request("POST", "/v1/admin/tokens", body))
        return self._access.create_token(body.tenant, admin=body.admin, label=body.label)

    def list_tokens(self, tenant: str | None) -> list[TokenInfo]:
        if self._http is not None:
            params = {"tenant": tenant} if tenant else None
            return [
                TokenInfo.model_validate(t)
                for t in self._http.request("GET", "/v1/admin/tokens", params=params)
            ]
        return self._access.list_tokens(tenant)

    def revoke_token(self, token_id: int) -> TokenInfo:
        if self._http is not None:
            return TokenInfo.model_validate(self._http.request("DELETE", f"/v1/admin/tokens/{token_id}"))
        return self._guard(lambda: self._access.revoke_token(token_id))

    def list_tenants(self) -> list[TenantInfo]:
        if self._http is not None:
            return [TenantInfo.model_validate(t) for t in self._http.request("GET", "/v1/admin/tenants")]
        return self._access.list_tenants()

    def set_tenant(self, name: str, body: TenantUpdate) -> TenantInfo:
        if self._http is not None:
            return TenantInfo.model_validate(self._http.request("PUT", f"/v1/admin/tenants/{name}", body))
        return self._access.set_tenant(name, body.max_jobs)

    def _guard(self, call: Callable[[], _T]) -> _T:
        """The store's refusals as the client's typed errors, as over HTTP (the one error map)."""
        from lrpilot_service.errors import SERVICE_ERRORS, client_error

        try:
            return call()
        except SERVICE_ERRORS as exc:
            raise client_error(exc) from exc

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        else:
            self._repository.close()


def _tokens_table(tokens: list[TokenInfo]) -> str:
    rows = [
        (
            t.id,
            t.tenant,
            "admin" if t.admin else "",
            t.prefix + "...",
            t.label,
            _when(t.created_at),
            _when(t.revoked_at),
        )
        for t in tokens
    ]
    return render(("id", "tenant", "admin", "token", "label", "created", "revoked"), rows)


def _tenants_table(tenants: list[TenantInfo]) -> str:
    rows = [(t.name, t.jobs, t.max_jobs if t.max_jobs is not None else "default", t.tokens) for t in tenants]
    return render(("tenant", "jobs", "max jobs", "tokens"), rows)


def _when(moment: Any) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")
