"""Bounds every request before the app sees it (small pure ASGI middlewares).

- :class:`BodySizeLimit`: a Content-Length over the limit is refused at once (413); a streamed body
  is counted as it arrives and refused as soon as it crosses the limit, so a client can never make
  the service buffer more than ``max_bytes``. A body that does not arrive within
  ``body_timeout_s`` (a slow or stalled client holding a connection) is answered 408 and closed.
- :class:`InflightLimit`: more than ``max_inflight`` requests at once in this worker are answered
  503 with ``Retry-After`` at once, instead of queueing for the thread pool until clients time out.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lrpilot.protocol import ErrorBody
from lrpilot_service.api.ratelimit import retry_after_header

#: Paths outside the in-flight bound: an orchestrator's probe must see a busy worker as alive.
UNBOUNDED_PATHS = frozenset({"/healthz"})
OVERLOAD_RETRY_AFTER_S = 1.0


class BodySizeLimit:
    """413 for a body over ``max_bytes``, 408 for one that takes longer than ``body_timeout_s``."""

    def __init__(self, app: ASGIApp, max_bytes: int, body_timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, declared)
            return
        chunks: list[bytes] = []
        size = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.body_timeout_s
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, deadline - loop.time()))
            except TimeoutError:
                detail = f"the request body did not arrive within {self.body_timeout_s:g}s; send it at once"
                await send_error(send, 408, detail)
                return
            if message["type"] != "http.request":
                return  # the client went away before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send, size)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _refuse(self, send: Send, size: int) -> None:
        detail = (
            f"request body has at least {size} bytes, over the limit of {self.max_bytes}: "
            "report shorter windows, or raise LRPILOT_MAX_BODY_BYTES on the server"
        )
        await send_error(send, 413, detail)


class InflightLimit:
    """503 + ``Retry-After`` beyond ``max_inflight`` concurrent requests; ``count`` is the current load."""

    def __init__(self, app: ASGIApp, max_inflight: int) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self.count = 0
        self.refused = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNBOUNDED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.count >= self.max_inflight:
            self.refused += 1
            detail = f"the service is busy ({self.count} requests in progress); retry shortly"
            await send_error(send, 503, detail, retry_after_s=OVERLOAD_RETRY_AFTER_S)
            return
        self.count += 1  # one event loop per worker: no lock needed
        try:
            await self.app(scope, receive, send)
        finally:
            self.count -= 1


async def send_error(send: Send, status: int, detail: str, *, retry_after_s: float | None = None) -> None:
    """An ``ErrorBody`` response sent straight from a middleware; the connection is closed after it."""
    body = ErrorBody(detail=detail, retry_after_s=retry_after_s).model_dump_json(exclude_none=True)
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    if retry_after_s is not None:
        headers.append((b"retry-after", retry_after_header(retry_after_s).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the buffered body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
