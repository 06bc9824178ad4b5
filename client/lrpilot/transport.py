"""How the tuner reaches the engine: over HTTP (httpx) or in-process (the embedded mode).

Both transports speak the wire models of :mod:`lrpilot.protocol` and raise the typed errors of
:mod:`lrpilot.errors`, so the tuner has one code path whether a service runs or not. Every call
is idempotent on the service side (re-attach by name, stored decision per window), which is what
makes blind retries after a timeout safe.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from lrpilot.errors import (
    JobConflictError,
    JobNotFoundError,
    LrpilotError,
    ReportRejectedError,
    ServiceUnavailableError,
    WindowConflictError,
)
from lrpilot.protocol import Decision, JobCreate, JobView, Schedule, WindowReport

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=2.0)
DEFAULT_DATABASE_URL = "sqlite:///lrpilot.db"
TENANT_HEADER = "X-Lrpilot-Tenant"

_M = TypeVar("_M", bound=BaseModel)


class Transport(Protocol):
    """The four calls the tuner needs; see docs/architecture.md."""

    def create_or_attach(self, body: JobCreate) -> JobView: ...
    def report_window(self, name: str, window: int, report: WindowReport) -> Decision: ...
    def schedule(self, name: str) -> Schedule: ...
    def close(self) -> None: ...


class AdminTransport(Transport, Protocol):
    """What the CLI needs on top: reading jobs back."""

    def list_jobs(self) -> list[JobView]: ...
    def get_job(self, name: str) -> JobView: ...


class HttpTransport:
    """The REST client: explicit timeouts, retries with jittered backoff on transient failures only.

    A 4xx is the service's considered answer and is raised at once as a typed error; a connection
    error, a timeout or a 5xx may be a restart in progress and is retried ``retries`` times.
    """

    def __init__(
        self,
        url: str,
        tenant: str = "default",
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retries: int = 2,
        backoff: float = 0.2,
        *,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.tenant = tenant
        self.retries = retries
        self.backoff = backoff
        self._random = random.Random()
        self._client = client or httpx.Client(
            base_url=self.url, timeout=timeout, headers={"User-Agent": "lrpilot"}
        )

    def create_or_attach(self, body: JobCreate) -> JobView:
        return self._call("POST", "/v1/jobs", JobView, body)

    def report_window(self, name: str, window: int, report: WindowReport) -> Decision:
        return self._call("POST", f"/v1/jobs/{_q(name)}/windows/{window}", Decision, report)

    def schedule(self, name: str) -> Schedule:
        return self._call("GET", f"/v1/jobs/{_q(name)}/schedule", Schedule)

    def get_job(self, name: str) -> JobView:
        return self._call("GET", f"/v1/jobs/{_q(name)}", JobView)

    def list_jobs(self) -> list[JobView]:
        response = self._send("GET", "/v1/jobs", None)
        payload: Any = response.json()
        items: Any = payload.get("jobs", payload.get("items", [])) if isinstance(payload, dict) else payload
        return [JobView.model_validate(item) for item in items]

    def delete_job(self, name: str) -> None:
        self._send("DELETE", f"/v1/jobs/{_q(name)}", None)

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, model: type[_M], body: BaseModel | None = None) -> _M:
        return model.model_validate_json(self._send(method, path, body).content)

    def _send(self, method: str, path: str, body: BaseModel | None) -> httpx.Response:
        # model_dump_json, never json.dumps: NaN losses must travel as "NaN", which stays valid JSON.
        content = body.model_dump_json() if body is not None else None
        headers = {TENANT_HEADER: self.tenant}
        if body is not None:
            headers["content-type"] = "application/json"
        failure = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1) * (0.5 + self._random.random()))
            try:
                response = self._client.request(method, path, content=content, headers=headers)
            except httpx.TransportError as exc:
                failure = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code >= 500:
                failure = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code >= 400:
                raise _http_error(response)
            return response
        tries = self.retries + 1
        raise ServiceUnavailableError(f"{method} {self.url}{path} failed after {tries} tries ({failure})")


def _q(name: str) -> str:
    return quote(name, safe=":@")


def _http_error(response: httpx.Response) -> LrpilotError:
    """Map a 4xx to its typed error, keeping the server's ``detail`` word for word."""
    expected: int | None = None
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        raw = payload.get("detail", response.text)
        detail = raw if isinstance(raw, str) else json.dumps(raw)
        expected = payload.get("expected_window")
    else:
        detail = response.text or response.reason_phrase
    status = response.status_code
    if status == 404:
        return JobNotFoundError(detail, status=status)
    if status == 409 and expected is not None:
        return WindowConflictError(detail, expected_window=int(expected), status=status)
    if status == 409:
        return JobConflictError(detail, status=status)
    if status == 422:
        return ReportRejectedError(detail, status=status)
    return LrpilotError(detail, status=status)


class InProcessTransport:
    """The embedded mode: the service's repository called directly, on a local database.

    Same models, same errors as over HTTP, so a script moves from laptop to cluster by setting
    ``LRPILOT_URL`` and nothing else.
    """

    def __init__(self, database_url: str | None = None, tenant: str = "default") -> None:
        try:
            store: Any = importlib.import_module("lrpilot_service.store")
        except ImportError as exc:  # the client alone ships without the engine
            raise ImportError(
                "the embedded mode needs the lrpilot service: pip install 'lrpilot[server]' "
                "(or set LRPILOT_URL to a running lrpilot service)"
            ) from exc
        self.database_url = database_url or os.environ.get("LRPILOT_DATABASE_URL") or DEFAULT_DATABASE_URL
        self.tenant = tenant
        self._store = store
        self._repo: Any = store.open_repository(self.database_url)

    # model_validate returns an instance of the same class untouched: it only pins the type.
    def create_or_attach(self, body: JobCreate) -> JobView:
        return JobView.model_validate(self._guard(lambda: self._repo.create_or_attach(self.tenant, body)))

    def report_window(self, name: str, window: int, report: WindowReport) -> Decision:
        decided = self._guard(lambda: self._repo.report_window(self.tenant, name, window, report))
        return Decision.model_validate(decided)

    def schedule(self, name: str) -> Schedule:
        return Schedule.model_validate(self._guard(lambda: self._repo.schedule(self.tenant, name)))

    def get_job(self, name: str) -> JobView:
        return JobView.model_validate(self._guard(lambda: self._repo.get_job(self.tenant, name)))

    def list_jobs(self) -> list[JobView]:
        return [JobView.model_validate(job) for job in self._guard(lambda: self._repo.list_jobs(self.tenant))]

    def delete_job(self, name: str) -> None:
        self._guard(lambda: self._repo.delete_job(self.tenant, name))

    def close(self) -> None:
        dispose = getattr(self._repo, "close", None)
        if callable(dispose):
            dispose()

    def _guard(self, call: Callable[[], Any]) -> Any:
        """Translate the store's errors into the client's, exactly as the HTTP layer would."""
        store = self._store
        try:
            return call()
        except store.JobNotFound as exc:
            raise JobNotFoundError(str(exc), status=404) from exc
        except store.WindowConflict as exc:
            raise WindowConflictError(str(exc), expected_window=exc.expected_window) from exc
        except store.JobConflict as exc:
            raise JobConflictError(str(exc), status=409) from exc
        except store.StoreError as exc:  # any other refusal the store may add later
            raise LrpilotError(str(exc), status=400) from exc
        except ValueError as exc:  # the engine's ReportRejected is a ValueError
            raise ReportRejectedError(str(exc), status=422) from exc
        except Exception as exc:
            if type(exc).__module__.startswith("sqlalchemy"):  # locked or lost database: transient
                raise ServiceUnavailableError(f"database error: {exc}") from exc
            raise


def make_transport(url: str | None = None, tenant: str = "default") -> HttpTransport | InProcessTransport:
    """``url`` if given, else ``$LRPILOT_URL``, else the embedded mode on ``$LRPILOT_DATABASE_URL``."""
    url = url or os.environ.get("LRPILOT_URL")
    if url:
        return HttpTransport(url, tenant=tenant)
    return InProcessTransport(tenant=tenant)
