"""Typed errors of the client, so callers branch on the class and never on an HTTP status.

Two families matter to the tuner: :class:`ServiceUnavailableError` is transient (connection
refused, timeout, 5xx: retry, then fall back) and every other :class:`LrpilotError` is the
service saying the request itself is wrong (retrying would give the same answer).
"""

from __future__ import annotations


class LrpilotError(Exception):
    """Base of every error the client raises on purpose; ``detail`` is the service's message."""

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


class ServiceUnavailableError(LrpilotError):
    """The service could not be reached or failed (5xx) after the transport's own retries."""


class JobNotFoundError(LrpilotError):
    """No job with that name for this tenant (404)."""


class JobConflictError(LrpilotError):
    """A job with that name exists with a different configuration (409)."""


class WindowConflictError(LrpilotError):
    """The report is for a window the service does not await (409); it names the one it does."""

    def __init__(self, detail: str, *, expected_window: int | None, status: int | None = 409) -> None:
        super().__init__(detail, status=status)
        self.expected_window = expected_window


class ReportRejectedError(LrpilotError):
    """The request was well-formed JSON but cannot be accepted as is (422): fix the caller."""
