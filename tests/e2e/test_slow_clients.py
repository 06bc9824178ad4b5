"""A real ``lrpilot serve`` against slow or hostile clients: late headers and bodies cost a bounded
time, and a token never reaches the service's log, even at debug level."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from lrpilot.cli.server_process import ServerProcess
from lrpilot_service.store import open_repository

TIMEOUTS = {"LRPILOT_HEADER_TIMEOUT_S": "1", "LRPILOT_BODY_TIMEOUT_S": "1", "LRPILOT_AUTH": "required"}


def _closed_within(sock: socket.socket, seconds: float) -> tuple[bool, bytes]:
    """Whether the server closed ``sock`` within ``seconds``, and what it sent before."""
    sock.settimeout(seconds)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return False, received
    return True, received


def test_late_headers_and_bodies_are_cut_off_and_tokens_stay_out_of_the_log(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'slow.db'}"
    repository = open_repository(url)
    token = repository.access.create_token("team").token
    repository.close()
    log = tmp_path / "server.log"
    with ServerProcess(url, log_path=log, env=TIMEOUTS, log_level="debug") as server:
        port = server.port
        # Headers sent a byte at a time, never finished: closed after the 1 s header timeout.
        slow_headers = socket.create_connection(("127.0.0.1", port))
        slow_headers.sendall(b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed, _ = _closed_within(slow_headers, 5.0)
        assert closed and time.monotonic() - started < 4.0
        # A body announced but never sent: 408 (JSON) after the 1 s body timeout.
        slow_body = socket.create_connection(("127.0.0.1", port))
        slow_body.sendall(
            b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\nAuthorization: Bearer " + token.encode() + b'\r\n\r\n{"na'
        )
        closed, answer = _closed_within(slow_body, 5.0)
        assert closed and answer.startswith(b"HTTP/1.1 408") and b'"detail"' in answer
        # An idle connection that never sends a byte is closed too.
        idle = socket.create_connection(("127.0.0.1", port))
        assert _closed_within(idle, 5.0)[0]
        headers = {"Authorization": f"Bearer {token}"}
        assert httpx.post(f"{server.url}/v1/jobs", json={"name": "run"}, headers=headers).status_code == 201
        assert (
            httpx.get(f"{server.url}/v1/jobs/run", headers={"Authorization": f"Bearer {token}x"}).status_code
            == 401
        )
        assert httpx.get(f"{server.url}/v1/jobs/nope", headers=headers).status_code == 404
        for sock in (slow_headers, slow_body, idle):
            sock.close()
    text = log.read_text()
    assert "POST /v1/jobs" in text  # the access log is on: requests are logged, their tokens are not
    assert token not in text and token[4:20] not in text
