"""Two real service processes on one database, many clients posting the same windows at once.

This is the multi-process promise of the store: whatever the interleaving, each window is decided
exactly once (one decision row), and every client gets that same decision back.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import threading
import traceback
from collections.abc import Iterator
from multiprocessing.process import BaseProcess
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import lrpilot_service.api.app  # noqa: F401  (imported here so forked servers start warm)
from lrpilot.cli.server_process import wait_healthy
from lrpilot_service.api.serve import run
from lrpilot_service.store.db import create_db_engine
from lrpilot_service.store.models import DecisionRecord, Job, Observation

CONFIG = {"total_steps": 2000, "search": "space_filling"}
WINDOWS = 4
CLIENTS = 6


def _free_ports(count: int) -> list[int]:
    """Distinct free ports: every socket stays bound until all are chosen, so none repeats."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _serve(database_url: str, port: int) -> None:
    """A forked child's life: serve until SIGTERM, then leave without running the parent's finalizers."""
    # os._exit, not return: e.g. the parent's pooled PostgreSQL sockets must not be closed from here.
    try:
        run(host="127.0.0.1", port=port, database_url=database_url, workers=1, log_level="warning")
    except BaseException:
        traceback.print_exc()  # a failed start must say why, and exit non-zero
        os._exit(1)
    os._exit(0)


def _start(database_url: str, port: int) -> BaseProcess:
    # Forked, not spawned: the children inherit the already imported service (seconds saved each),
    # yet each is its own process with its own connection pool, as with `lrpilot serve` twice.
    process = multiprocessing.get_context("fork").Process(
        target=_serve, args=(database_url, port), daemon=True
    )
    process.start()
    return process


def _wait_healthy(url: str, process: BaseProcess, timeout: float = 60.0) -> None:
    try:
        wait_healthy(url, lambda: None if process.is_alive() else process.exitcode, timeout)
    except (RuntimeError, TimeoutError) as exc:
        pytest.fail(f"{exc} (its log is in the captured output)")


@pytest.fixture
def servers(database_url: str) -> Iterator[list[str]]:
    """Two service processes on the same (not yet migrated) database: they also race to migrate."""
    ports = _free_ports(2)
    processes = [_start(database_url, port) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, process in zip(urls, processes, strict=True):
            _wait_healthy(url, process)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()


def test_two_processes_decide_each_window_once(servers: list[str], database_url: str) -> None:
    created = httpx.post(f"{servers[0]}/v1/jobs", json={"name": "shared", "config": CONFIG}, timeout=30)
    assert created.status_code == 201, created.text
    attached = httpx.post(f"{servers[1]}/v1/jobs", json={"name": "shared", "config": CONFIG}, timeout=30)
    assert attached.status_code == 200 and attached.json()["decision"] == created.json()["decision"]
    decision: dict[str, Any] = created.json()["decision"]
    steps_total = 0
    for window in range(WINDOWS):
        report = {
            "start_step": decision["start_step"],
            "losses": [2.0 - 0.01 * i for i in range(decision["steps"])],
        }
        replies = _post_concurrently(
            [f"{servers[i % 2]}/v1/jobs/shared/windows/{window}" for i in range(CLIENTS)], report
        )
        statuses = {status for status, _ in replies}
        assert statuses == {200}, replies
        bodies = [body for _, body in replies]
        assert all(body == bodies[0] for body in bodies), bodies
        assert bodies[0]["window"] == window + 1
        steps_total += decision["steps"]
        decision = bodies[0]

    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            windows = connection.execute(
                select(DecisionRecord.window).order_by(DecisionRecord.window)
            ).scalars()
            assert list(windows) == list(range(WINDOWS + 1))
            assert (
                connection.execute(select(func.count()).select_from(Observation)).scalar_one() == steps_total
            )
            assert connection.execute(select(func.count()).select_from(Job)).scalar_one() == 1
    finally:
        engine.dispose()

    # A chunked body has no Content-Length: the limit must hold while it streams in.
    response = httpx.post(
        f"{servers[0]}/v1/jobs", content=_spaces(9 * 1024), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and "over the limit" in response.json()["detail"]
    assert httpx.get(f"{servers[0]}/healthz").status_code == 200


def _spaces(kib: int) -> Iterator[bytes]:
    """``kib`` KiB of JSON whitespace, streamed (9 MiB exceeds the default 8 MiB limit)."""
    for _ in range(kib):
        yield b" " * 1024


def _post_concurrently(urls: list[str], body: dict[str, Any]) -> list[tuple[int, Any]]:
    """POST ``body`` to every URL from its own thread, all released at the same instant."""
    barrier = threading.Barrier(len(urls))
    replies: list[tuple[int, Any]] = [(0, None)] * len(urls)

    def post(index: int) -> None:
        with httpx.Client(timeout=60) as client:
            barrier.wait()
            try:
                response = client.post(urls[index], json=body)
                replies[index] = (response.status_code, response.json())
            except httpx.HTTPError as error:
                replies[index] = (-1, repr(error))

    threads = [threading.Thread(target=post, args=(index,)) for index in range(len(urls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return replies
