"""uvicorn's h11 protocol with a deadline on request headers (a slowloris guard).

uvicorn closes idle keep-alive connections, but a client that opens a connection and then sends
its request line and headers a byte at a time holds it (and a file descriptor) for as long as it
likes. Here every request must have all its headers within ``LRPILOT_HEADER_TIMEOUT_S`` of its
first byte (or of the connection's opening), else the connection is closed. The request body has
its own deadline in :class:`lrpilot_service.api.limits.BodySizeLimit`.

``lrpilot serve`` passes this class to uvicorn by name (``http=``), so each worker process imports
it and reads the timeout from the environment, like every other setting.
"""

from __future__ import annotations

import asyncio
import os

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_TIMEOUT_ENV = "LRPILOT_HEADER_TIMEOUT_S"
DEFAULT_HEADER_TIMEOUT_S = 10.0
PROTOCOL_PATH = "lrpilot_service.api.http_protocol:HeaderTimeoutH11Protocol"


def _header_timeout_s() -> float:
    return float(os.environ.get(HEADER_TIMEOUT_ENV, DEFAULT_HEADER_TIMEOUT_S))


class HeaderTimeoutH11Protocol(H11Protocol):
    """``H11Protocol`` that closes a connection whose request headers are late."""

    header_timeout_s = _header_timeout_s()
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            self._arm()  # a new request on a kept-alive connection: its headers get the same deadline
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm()  # the request line and headers are in

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.info(
                "closing a connection whose request headers took over %gs", self.header_timeout_s
            )
            self.transport.close()
