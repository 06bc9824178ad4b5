"""How the tuner reaches the engine: over HTTP (httpx) or in-process (the embedded mode).

Both transports speak the wire models of :mod:`lrpilot.protocol` and raise the typed errors of
:mod:`lrpilot.errors`, so the tuner has one code path whether a service runs or not. Every call
is idempotent on the service side (re-attach by name, stored decision per window), which is what
makes blind retries after a timeout safe.

The embedded transport is the service itself (``lrpilot_service.embedded``), called without
HTTP. The client library never imports the service except in :func:`embedded_transport`, the one
place where a client-only install (``pip install lrpilot``) learns that it needs
``pip install lrpilot[server]`` or a service URL.

A service with authentication wants a bearer token: ``token=``, else ``$LRPILOT_TOKEN``. The token
travels in the ``Authorization`` header only, never in a URL, so it appears in no access log.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, Protocol, TypeVar, runtime_checkable
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from lrpilot.errors import LrpilotError, ServiceUnavailableError, error_from_status
from lrpilot.protocol import (
    DEFAULT_TENANT,
    TENANT_HEADER,
    Decision,
    JobCreate,
    JobPage,
    JobStatusUpdate,
    JobView,
    Schedule,
    WindowReport,
)
from lrpilot.retry import RetryPolicy

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=2.0)
#: Standalone calls (the CLI) ride out a service restart of a few seconds; the tuner passes
#: ``NO_RETRY`` because its own deadline loop retries the whole boundary.
DEFAULT_RETRY = RetryPolicy(deadline_s=5.0, first_wait_s=0.2)
EMBEDDED_MODULE = "lrpilot_service.embedded"
TOKEN_ENV = "LRPILOT_TOKEN"

_M = TypeVar("_M", bound=BaseModel)


class Transport(Protocol):
    """The calls the tuner needs; see docs/architecture.md."""

    def create_or_attach(self, body: JobCreate) -> JobView: ...
    def report_window(self, name: str, window: int, report: WindowReport) -> Decision: ...
    def schedule(self, name: str) -> Schedule: ...
    def close(self) -> None: ...


@runtime_checkable
class StatusTransport(Transport, Protocol):
    """A transport that can also end a job (``failed``, ``done``); the tuner uses it when present."""

    def set_status(self, name: str, update: JobStatusUpdate) -> JobView: ...


class AdminTransport(StatusTransport, Protocol):
    """What the CLI needs on top: reading jobs back and deleting them."""

    def list_jobs(self) -> list[JobView]: ...
    def get_job(self, name: str) -> JobView: ...
    def delete_job(self, name: str) -> None: ...


def is_transient(error: BaseException) -> bool:
    """What a retry can cure: the service away or failing, never its considered 4xx answer."""
    return isinstance(error, ServiceUnavailableError)


class HttpTransport:
    """The REST client: explicit timeouts, typed errors, retries by one policy on transient failures.

    A 4xx is the service's considered answer and is raised at once as a typed error; a connection
    error, a timeout or a 5xx may be a restart in progress and becomes a
    :class:`ServiceUnavailableError`, retried under ``retry``.
    """

    def __init__(
        self,
        url: str,
        tenant: str | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        *,
        token: str | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.tenant = tenant
        self.retry = retry
        token = token or os.environ.get(TOKEN_ENV) or None
        headers = {"User-Agent": "lrpilot"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._client = client or httpx.Client(base_url=self.url, timeout=timeout, headers=headers)
        if client is not None and token:
            client.headers["Authorization"] = f"Bearer {token}"

    def create_or_attach(self, body: JobCreate) -> JobView:
        return self._call("POST", "/v1/jobs", JobView, body)

    def report_window(self, name: str, window: int, report: WindowReport) -> Decision:
        return self._call("POST", f"/v1/jobs/{_q(name)}/windows/{window}", Decision, report)

    def schedule(self, name: str) -> Schedule:
        """The whole schedule, read page by page (a long job's steps come in several replies)."""
        path = f"/v1/jobs/{_q(name)}/schedule"
        schedule = self._call("GET", path, Schedule)
        while schedule.next_step is not None:
            page = self._call("GET", path, Schedule, params={"from_step": schedule.next_step})
            schedule.steps += page.steps
            schedule.next_step = page.next_step
        return schedule

    def set_status(self, name: str, update: JobStatusUpdate) -> JobView:
        return self._call("POST", f"/v1/jobs/{_q(name)}/status", JobView, update)

    def get_job(self, name: str) -> JobView:
        return self._call("GET", f"/v1/jobs/{_q(name)}", JobView)

    def list_jobs(self) -> list[JobView]:
        """Every job of the tenant, read page by page."""
        jobs: list[JobView] = []
        params: dict[str, str] = {}
        while True:
            page = self._call("GET", "/v1/jobs", JobPage, params=params)
            jobs += page.jobs
            if page.next is None:
                return jobs
            params = {"after": page.next}

    def delete_job(self, name: str) -> None:
        self._send("DELETE", f"/v1/jobs/{_q(name)}", None)

    def prune(self, older_than_s: float, statuses: list[str] | None = None) -> int:
        """Delete the tenant's jobs with no report for ``older_than_s`` (optionally only in ``statuses``)."""
        params = {"older_than_s": str(older_than_s)}
        if statuses:
            params["status"] = ",".join(statuses)
        return int(self.request("DELETE", "/v1/jobs", params=params)["deleted"])

    def request(
        self, method: str, path: str, body: BaseModel | None = None, params: dict[str, str] | None = None
    ) -> Any:
        """Any JSON route (the CLI's admin calls): the decoded body, or a typed error."""
        response = self._send(method, path, body, params)
        return response.json() if response.content else None

    def close(self) -> None:
        self._client.close()

    def _call(
        self,
        method: str,
        path: str,
        model: type[_M],
        body: BaseModel | None = None,
        params: dict[str, Any] | None = None,
    ) -> _M:
        return model.model_validate_json(self._send(method, path, body, params).content)

    def _send(
        self, method: str, path: str, body: BaseModel | None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        return self.retry.call(lambda: self._send_once(method, path, body, params), is_transient)

    def _send_once(
        self, method: str, path: str, body: BaseModel | None, params: dict[str, Any] | None
    ) -> httpx.Response:
        # model_dump_json, never json.dumps: NaN losses must travel as "NaN", which stays valid JSON.
        content = body.model_dump_json() if body is not None else None
        headers = {TENANT_HEADER: self.tenant} if self.tenant else {}
        if body is not None:
            headers["content-type"] = "application/json"
        try:
            response = self._client.request(method, path, content=content, headers=headers, params=params)
        except httpx.TransportError as exc:
            raise ServiceUnavailableError(f"{method} {self.url}{path}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise _http_error(response)
        return response


def _q(name: str) -> str:
    return quote(name, safe=":@")


def _http_error(response: httpx.Response) -> LrpilotError:
    """Map an error response to its typed error, keeping the server's ``detail`` word for word."""
    expected: int | None = None
    try:
        payload: Any = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("detail"), str):
        detail: str = payload["detail"]
        raw_expected = payload.get("expected_window")
        expected = raw_expected if isinstance(raw_expected, int) else None
    else:
        # Not an lrpilot reply (its errors are all JSON): most likely the URL points elsewhere.
        return ServiceUnavailableError(
            f"HTTP {response.status_code} from {response.request.url} is not an lrpilot service's answer "
            f"({response.text[:120]!r}): check the URL (LRPILOT_URL)"
        )
    if response.status_code >= 500:
        detail = f"HTTP {response.status_code} from {response.request.url}: {detail}"
    return error_from_status(response.status_code, detail, expected, _retry_after(response))


def _retry_after(response: httpx.Response) -> float | None:
    """The ``Retry-After`` of a 429 or 503, in seconds (a date form is ignored: we never send it)."""
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def embedded_transport(database_url: str | None = None, tenant: str | None = None) -> AdminTransport:
    """The service in this process (embedded mode, SQLite by default): the client's one door into it.

    ``database_url`` defaults to ``$LRPILOT_DATABASE_URL``, else the service's default SQLite file.
    Raises ImportError with what to install when only the client is installed.
    """
    try:
        embedded: Any = importlib.import_module(EMBEDDED_MODULE)
    except ImportError as exc:
        raise ImportError(
            "embedded mode needs `pip install lrpilot[server]`, or set LRPILOT_URL "
            f"to a running lrpilot service ({exc})"
        ) from exc
    transport: AdminTransport = embedded.EmbeddedTransport(database_url, tenant=tenant or DEFAULT_TENANT)
    return transport


def make_transport(
    url: str | None = None,
    tenant: str | None = None,
    *,
    token: str | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
) -> Transport:
    """``url`` if given, else ``$LRPILOT_URL``, else the embedded mode on ``$LRPILOT_DATABASE_URL``.

    ``retry``, ``token`` and ``timeout`` apply to the HTTP transport; the embedded one has no
    network to retry and no authentication (it is the caller's own database).
    """
    url = url or os.environ.get("LRPILOT_URL")
    if url:
        return HttpTransport(url, tenant=tenant, retry=retry, token=token, timeout=timeout)
    return embedded_transport(tenant=tenant)
