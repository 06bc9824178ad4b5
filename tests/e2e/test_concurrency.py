"""Two real service processes on one database, many clients posting the same windows at once.

This is the multi-process promise of the store: whatever the interleaving, each window is decided
exactly once (one decision row), and every client gets that same decision back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import lrpilot_service.api.app  # noqa: F401  (imported here so forked servers start warm)
from lrpilot_service.store.db import create_db_engine
from lrpilot_service.store.models import DecisionRecord, Job, Observation
from tests.e2e.forked import free_ports, healthy, start
from tests.plans import CLASSIC_PLAN

CONFIG = {"total_steps": 2000, "search": "space_filling", **CLASSIC_PLAN}
WINDOWS = 4
CLIENTS = 6


@pytest.fixture
def servers(database_url: str) -> Iterator[list[str]]:
    """Two service processes on the same (not yet migrated) database: they also race to migrate."""
    ports = free_ports(2)
    processes = [start(database_url, port) for port in ports]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, process in zip(urls, processes, strict=True):
            healthy(url, process)
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
