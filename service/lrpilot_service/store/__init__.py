"""The job store: SQLAlchemy models, migrations and the job repository (locks, idempotency)."""

from lrpilot_service.store.errors import JobConflict, JobNotFound, StoreError, WindowConflict
from lrpilot_service.store.repository import JobRepository, open_repository

__all__ = ["JobConflict", "JobNotFound", "JobRepository", "StoreError", "WindowConflict", "open_repository"]
