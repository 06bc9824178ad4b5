"""The one map from the service's failures to the client's typed errors (and so to HTTP statuses).

Store and engine errors carry facts (``expected_window``), not statuses; each maps here to one
client exception class of :mod:`lrpilot.errors`, whose ``status`` is the HTTP status. The API's
exception handlers and the embedded transport both translate through :func:`client_error`, so a
refusal reads the same over HTTP and in-process, and a status is chosen in exactly one place.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

from lrpilot.errors import (
    AuthenticationError,
    JobConflictError,
    JobNotFoundError,
    LrpilotError,
    NotFoundError,
    PermissionDeniedError,
    ReportRejectedError,
    ServiceUnavailableError,
    TooManyRequestsError,
    WindowConflictError,
)
from lrpilot_service.engine import ReportRejected
from lrpilot_service.store import (
    AuthenticationFailed,
    JobConflict,
    JobNotFound,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    WindowConflict,
)

#: Seconds a client is told to wait (``Retry-After``) when the database is away.
DATABASE_RETRY_AFTER_S = 1.0

#: Service-side error -> client error class (whose ``status`` is the HTTP status).
ERROR_MAP: dict[type[Exception], type[LrpilotError]] = {
    JobNotFound: JobNotFoundError,
    NotFound: NotFoundError,
    JobConflict: JobConflictError,
    WindowConflict: WindowConflictError,
    ReportRejected: ReportRejectedError,
    AuthenticationFailed: AuthenticationError,
    PermissionDenied: PermissionDeniedError,
    QuotaExceeded: TooManyRequestsError,
    # The database went away or stayed locked past every retry: transient, the client retries.
    DBAPIError: ServiceUnavailableError,
}
SERVICE_ERRORS: tuple[type[Exception], ...] = tuple(ERROR_MAP)


def client_error(error: Exception) -> LrpilotError:
    """The client's view of a service-side failure: same class over HTTP and in-process."""
    kind = next(ERROR_MAP[cls] for cls in type(error).__mro__ if cls in ERROR_MAP)
    if isinstance(error, WindowConflict):
        return WindowConflictError(str(error), expected_window=error.expected_window)
    if isinstance(error, ReportRejected):
        return ReportRejectedError(f"report rejected: {error}")
    if isinstance(error, QuotaExceeded):
        return TooManyRequestsError(str(error), retry_after_s=error.retry_after_s)
    if isinstance(error, DBAPIError):
        # The driver's text may name hosts and users: keep it for the log, not for the caller.
        return ServiceUnavailableError(
            f"database unavailable ({type(error.orig).__name__}); retry later",
            retry_after_s=DATABASE_RETRY_AFTER_S,
        )
    return kind(str(error))
