"""The embedded mode: the service's job repository called in-process, without HTTP.

Same models, same errors as over HTTP (through :mod:`lrpilot_service.errors`), so a script moves
from a laptop to a cluster by setting ``LRPILOT_URL`` and nothing else. The client library reaches
this module only through ``lrpilot.transport.embedded_transport``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from lrpilot.protocol import (
    DEFAULT_TENANT,
    Decision,
    JobCreate,
    JobStatusUpdate,
    JobView,
    Schedule,
    WindowReport,
)
from lrpilot_service.errors import SERVICE_ERRORS, client_error
from lrpilot_service.store import open_repository
from lrpilot_service.store.db import resolve_database_url

T = TypeVar("T")


class EmbeddedTransport:
    """A ``lrpilot.Transport`` (and the CLI's admin calls) on a local database, SQLite by default."""

    def __init__(self, database_url: str | None = None, tenant: str = DEFAULT_TENANT) -> None:
        self.database_url = resolve_database_url(database_url)
        self.tenant = tenant
        self._repo = open_repository(self.database_url)

    def create_or_attach(self, body: JobCreate) -> JobView:
        return self._guard(lambda: self._repo.create_or_attach(self.tenant, body))

    def report_window(self, name: str, window: int, report: WindowReport) -> Decision:
        return self._guard(lambda: self._repo.report_window(self.tenant, name, window, report))

    def schedule(self, name: str) -> Schedule:
        return self._guard(lambda: self._repo.schedule(self.tenant, name))

    def get_job(self, name: str) -> JobView:
        return self._guard(lambda: self._repo.get_job(self.tenant, name))

    def list_jobs(self) -> list[JobView]:
        return self._guard(lambda: self._repo.list_jobs(self.tenant))

    def delete_job(self, name: str) -> None:
        self._guard(lambda: self._repo.delete_job(self.tenant, name))

    def set_status(self, name: str, update: JobStatusUpdate) -> JobView:
        return self._guard(lambda: self._repo.set_status(self.tenant, name, update.status, update.reason))

    def close(self) -> None:
        self._repo.close()

    def _guard(self, call: Callable[[], T]) -> T:
        """Translate the service's errors into the client's, exactly as the HTTP layer does."""
        try:
            return call()
        except SERVICE_ERRORS as exc:
            raise client_error(exc) from exc
