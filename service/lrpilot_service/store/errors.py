"""Errors the repository raises; the API maps each to one HTTP status (see api/errors.py).

They carry the facts a client needs to recover (``expected_window``), not just a message, so the
HTTP layer never has to parse text.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of every error that is the caller's to fix, not the database's."""


class JobNotFound(StoreError):
    """No job of that name for that tenant (HTTP 404)."""

    def __init__(self, tenant: str, name: str) -> None:
        super().__init__(f"no job named {name!r} for tenant {tenant!r}; create it with POST /v1/jobs first")
        self.tenant = tenant
        self.name = name


class JobConflict(StoreError):
    """A job of that name exists with another configuration (HTTP 409)."""

    def __init__(self, name: str, differences: list[str]) -> None:
        super().__init__(
            f"job {name!r} already exists with a different config ({'; '.join(differences)}); "
            "use the same config to resume it, or pick a new name"
        )
        self.name = name
        self.differences = differences


class WindowConflict(StoreError):
    """A report for a window that is neither awaited nor already decided (HTTP 409)."""

    def __init__(self, name: str, window: int, expected_window: int) -> None:
        super().__init__(
            f"job {name!r} expects the report of window {expected_window}, not window {window}; "
            f"post window {expected_window} (re-create the job to fetch its current decision)"
        )
        self.name = name
        self.window = window
        self.expected_window = expected_window


class QuotaExceeded(StoreError):
    """The tenant holds as many jobs as it may (HTTP 429): delete or prune jobs, or raise its quota."""

    retry_after_s = 60.0

    def __init__(self, tenant: str, limit: int) -> None:
        super().__init__(
            f"tenant {tenant!r} already has {limit} jobs, its quota: delete finished jobs "
            "(lrpilot jobs prune --older-than 30d) or ask an admin to raise max_jobs"
        )
        self.tenant = tenant
        self.limit = limit


class AuthenticationFailed(StoreError):
    """No token, or one that is unknown or revoked (HTTP 401). The message never quotes the token."""


class PermissionDenied(StoreError):
    """A valid token asking for what it may not do (HTTP 403)."""


class NotFound(StoreError):
    """An admin object (token, tenant) that does not exist (HTTP 404)."""
