"""Run ``lrpilot serve`` as a child process: for the demo, the end-to-end tests and the benchmark.

A real process (not a thread) so it can be killed with SIGKILL and restarted on the same
database, which is the only honest test of the service's persistence.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import httpx


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_healthy(url: str, exit_code: Callable[[], int | None], timeout_s: float = 60.0) -> None:
    """Poll ``url``/healthz until it answers 200.

    ``exit_code()`` is None while the server process lives: a process that dies first raises
    RuntimeError at once (no waiting out the timeout); no answer within ``timeout_s`` raises
    TimeoutError.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        code = exit_code()
        if code is not None:
            raise RuntimeError(f"the server for {url} exited with {code}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"the server at {url} was not healthy after {timeout_s:g}s")


class ServerProcess:
    """``lrpilot serve`` on 127.0.0.1:``port`` with ``database_url``; a context manager."""

    def __init__(
        self,
        database_url: str,
        port: int | None = None,
        *,
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout_s: float = 60.0,
        workers: int = 1,
        env: dict[str, str] | None = None,
        log_level: str = "warning",
    ) -> None:
        self.database_url = database_url
        self.workers = workers
        self.env = env or {}
        self.log_level = log_level
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_path) if log_path is not None else None
        self.startup_timeout_s = startup_timeout_s
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        command = [sys.executable, "-m", "lrpilot", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--database-url", self.database_url, "--log-level", self.log_level]
        command += ["--workers", str(self.workers)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        if self.log_path is None:
            self.process = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=env
            )
        else:
            with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
                self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Poll ``/healthz`` until it answers 200; fail loudly if the process died first."""
        process = self.process
        exit_code = (lambda: None) if process is None else process.poll
        try:
            wait_healthy(self.url, exit_code, self.startup_timeout_s)
        except TimeoutError as exc:
            self.stop()
            raise TimeoutError(f"{exc}{self._log_hint()}") from exc
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}{self._log_hint()}") from exc

    def kill(self) -> None:
        """SIGKILL: no shutdown handlers, no flushing, like a crashed host."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def _log_hint(self) -> str:
        return f" (see {self.log_path})" if self.log_path is not None else ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
