"""The job store: SQLAlchemy models, migrations and the job repository (locks, idempotency)."""

from lrpilot_service.store.access import AccessStore, Caller
from lrpilot_service.store.errors import (
    AuthenticationFailed,
    JobConflict,
    JobNotFound,
    NotFound,
    PermissionDenied,
    QuotaExceeded,
    StoreError,
    WindowConflict,
)
from lrpilot_service.store.repository import JobRepository, open_repository

__all__ = [
    "AccessStore",
    "AuthenticationFailed",
    "Caller",
    "JobConflict",
    "JobNotFound",
    "JobRepository",
    "NotFound",
    "PermissionDenied",
    "QuotaExceeded",
    "StoreError",
    "WindowConflict",
    "open_repository",
]
