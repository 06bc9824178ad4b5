"""Service processes forked from the test process: they inherit the imported service (seconds saved
per start, which is what makes tens of restarts affordable), yet each is its own process with its
own connection pool, as with `lrpilot serve`, and can be SIGKILLed like a crashed host."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import traceback
from multiprocessing.process import BaseProcess

import pytest

from lrpilot.cli.server_process import wait_healthy
from lrpilot_service.api.serve import run


def free_ports(count: int) -> list[int]:
    """Distinct free ports: every socket stays bound until all are chosen, so none repeats."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _serve(database_url: str, port: int, env: dict[str, str]) -> None:
    """A forked child's life: serve until SIGTERM, then leave without running the parent's finalizers."""
    # os._exit, not return: e.g. the parent's pooled PostgreSQL sockets must not be closed from here.
    os.environ.update(env)
    try:
        run(host="127.0.0.1", port=port, database_url=database_url, workers=1, log_level="warning")
    except BaseException:
        traceback.print_exc()  # a failed start must say why, and exit non-zero
        os._exit(1)
    os._exit(0)


def start(database_url: str, port: int, env: dict[str, str] | None = None) -> BaseProcess:
    process = multiprocessing.get_context("fork").Process(
        target=_serve, args=(database_url, port, env or {}), daemon=True
    )
    process.start()
    return process


def healthy(url: str, process: BaseProcess, timeout: float = 60.0) -> None:
    try:
        wait_healthy(url, lambda: None if process.is_alive() else process.exitcode, timeout)
    except (RuntimeError, TimeoutError) as exc:
        pytest.fail(f"{exc} (its log is in the captured output)")


class ForkedServer:
    """One service on a fixed port that can be killed (SIGKILL) and started again."""

    def __init__(self, database_url: str, env: dict[str, str] | None = None) -> None:
        self.database_url, self.env = database_url, env
        self.port = free_ports(1)[0]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: BaseProcess | None = None

    def start(self) -> ForkedServer:
        self.process = start(self.database_url, self.port, self.env)
        healthy(self.url, self.process)
        return self

    def kill(self) -> None:
        if self.process is not None and self.process.pid is not None and self.process.is_alive():
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.join(10)

    def stop(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.terminate()
            self.process.join(10)
            if self.process.is_alive():
                self.kill()
