"""Typed errors of the client, so callers branch on the class and never on an HTTP status.

Each class carries the HTTP status it travels as (``status``), so the REST client decodes a
response with :func:`error_from_status` and the service encodes its own failures with the same
classes (``lrpilot_service.errors`` maps every store and engine error to one of these): a status
is defined in exactly one place.

Two families matter to the tuner: :class:`ServiceUnavailableError` is transient (connection
refused, timeout, 5xx: retry, then fall back) and every other :class:`LrpilotError` is the
service saying the request itself is wrong (retrying would give the same answer).
"""

from __future__ import annotations


class LrpilotError(Exception):
    """Base of every error the client raises on purpose; ``detail`` is the service's message."""

    status: int = 400

    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status  # an instance may refine its class's status (a 502 is still a 5xx)


class ServiceUnavailableError(LrpilotError):
    """The service could not be reached or failed (5xx); transient, worth retrying.

    ``retry_after_s`` is the service's own estimate (its ``Retry-After``) when it gave one:
    :class:`lrpilot.retry.RetryPolicy` waits at least that long before the next attempt.
    """

    status = 503

    def __init__(self, detail: str, *, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(detail, status=status)
        self.retry_after_s = retry_after_s


class TooManyRequestsError(ServiceUnavailableError):
    """429: this token's request rate or this tenant's job quota is spent; retry after ``retry_after_s``."""

    status = 429


class AuthenticationError(LrpilotError):
    """401: no bearer token, or one the service does not know (revoked, mistyped): set LRPILOT_TOKEN."""

    status = 401


class PermissionDeniedError(LrpilotError):
    """403: the token is valid but may not do this (an admin route, another tenant's header)."""

    status = 403


class NotFoundError(LrpilotError):
    """404: no such object (a job, a token, a tenant)."""

    status = 404


class JobNotFoundError(NotFoundError):
    """No job with that name for this tenant (404)."""


class JobConflictError(LrpilotError):
    """A job with that name exists with a different configuration (409)."""

    status = 409


class WindowConflictError(LrpilotError):
    """The report is for a window the service does not await (409); it names the one it does."""

    status = 409

    def __init__(self, detail: str, *, expected_window: int | None, status: int | None = None) -> None:
        super().__init__(detail, status=status)
        self.expected_window = expected_window


class ReportRejectedError(LrpilotError):
    """The request was well-formed JSON but cannot be accepted as is (422): fix the caller."""

    status = 422


def error_from_status(
    status: int, detail: str, expected_window: int | None = None, retry_after_s: float | None = None
) -> LrpilotError:
    """The typed error for an HTTP error status (the inverse of each class's ``status``)."""
    if status >= 500:
        return ServiceUnavailableError(detail, status=status, retry_after_s=retry_after_s)
    if status == TooManyRequestsError.status:
        return TooManyRequestsError(detail, retry_after_s=retry_after_s)
    if status == 409 and expected_window is not None:
        return WindowConflictError(detail, expected_window=expected_window, status=status)
    kinds = (
        JobNotFoundError,
        JobConflictError,
        ReportRejectedError,
        AuthenticationError,
        PermissionDeniedError,
    )
    for kind in kinds:
        if kind.status == status:
            return kind(detail, status=status)
    return LrpilotError(detail, status=status)


class WiringError(LrpilotError, TypeError):
    """lrpilot was plugged into a training loop in a way that cannot work (no model to restore, no
    per-step loss, one tuner per rank): raised at once, with the fix, instead of degrading silently."""

    status = 400

    @classmethod
    def no_model(cls, why: str) -> WiringError:
        """No model means no restore: each search candidate would start from the previous one's weights."""
        return cls(
            f"lrpilot has no model to snapshot and restore ({why}): every search candidate would start "
            "from the previous candidate's weights. Pass the model: Tuner(..., model=model), "
            "tuner.bind(model, optimizer), or LRPilotScheduler(optimizer, tuner, model=model)."
        )
