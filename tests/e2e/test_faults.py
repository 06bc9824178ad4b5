"""Faults over a whole run, on SQLite and PostgreSQL: the run must not notice them.

- 20 SIGKILLs of the service at random instants, half of them while a report is in flight: the
  schedule is identical, step for step, to that of an uninterrupted run;
- PostgreSQL connections terminated under the service (``pg_terminate_backend``) all run long: no
  5xx reaches the client, and the schedule is again identical;
- an outage covering the end of the run: the last steps wait in the spool and the next attach
  reports them, so no step is lost.

The training is the deterministic simulation of test_restart.py; servers are forked (see forked.py)
so that twenty restarts take seconds, not minutes.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from lrpilot import HttpTransport, Tuner
from lrpilot.protocol import Decision, Schedule, WindowReport
from lrpilot.retry import NO_RETRY
from lrpilot_service.api.warmup import warm_engine
from tests.e2e.forked import ForkedServer
from tests.e2e.test_restart import Groups, Quadratic

TOTAL = 400
KILLS = 20
OPTIONS: dict[str, Any] = {"lr_min": 1e-3, "lr_max": 3.0, "candidates": 4, "seed": 7, "window_max": 12}


@pytest.fixture(scope="module", autouse=True)
def warm() -> None:
    warm_engine()  # forked servers inherit a warm engine: a restart takes a fraction of a second


class Hooked(HttpTransport):
    """An HttpTransport that calls ``before_report(window)`` as each report leaves."""

    before_report: Callable[[int], None] = staticmethod(lambda window: None)

    def report_window(self, name: str, window: int, report: WindowReport) -> Decision:
        self.before_report(window)
        return super().report_window(name, window, report)


def train(
    transport: HttpTransport, *, on_step: Callable[[int], None] = lambda step: None, **kw: Any
) -> Schedule:
    model, groups = Quadratic(), Groups()
    tuner = Tuner(
        "faults", transport=transport, total_steps=TOTAL, model=model, optimizer=groups,
        retry_deadline_s=60, **OPTIONS, **kw,
    )  # fmt: skip
    step = 0
    while not tuner.done:
        assert step < TOTAL + 5
        tuner.next_lr(step, model.step(groups.param_groups[0]["lr"]))
        step += 1
        on_step(step)
    assert not tuner.in_fallback
    schedule = tuner.schedule()
    tuner.close()
    return schedule


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[Schedule]:
    server = ForkedServer(f"sqlite:///{tmp_path / 'reference.db'}").start()
    try:
        yield train(HttpTransport(server.url, retry=NO_RETRY))
    finally:
        server.stop()


def same(a: Schedule, b: Schedule) -> bool:
    return a.model_dump() == b.model_dump()


def test_twenty_sigkills_at_random_instants_change_nothing(reference: Schedule, database_url: str) -> None:
    rng = random.Random(9)
    server = ForkedServer(database_url).start()
    lock = threading.Lock()
    kills: list[str] = []

    def kill_and_restart(kind: str, delay_s: float) -> None:
        def work() -> None:
            with lock:
                time.sleep(delay_s)
                server.kill()
                kills.append(kind)
                time.sleep(rng.uniform(0.05, 0.3))
                server.start()

        threading.Thread(target=work, daemon=True).start()

    windows = set(rng.sample(range(1, 34), KILLS // 2))  # reports to kill the service under (once each)
    steps = set(rng.sample(range(5, TOTAL - 20), KILLS // 2))  # instants between two reports

    def kill_in_flight(window: int) -> None:
        if window in windows:
            windows.discard(window)
            kill_and_restart("in flight", rng.uniform(0, 0.02))

    transport = Hooked(server.url, retry=NO_RETRY)
    transport.before_report = kill_in_flight

    def maybe_kill(step: int) -> None:
        if step in steps and not lock.locked():
            kill_and_restart("between reports", 0.0)

    try:
        interrupted = train(transport, on_step=maybe_kill)
        with lock:  # the last restart is over
            pass
    finally:
        server.stop()
    assert kills.count("in flight") == KILLS // 2 and kills.count("between reports") >= KILLS // 4, kills
    assert [s.step for s in interrupted.steps] == list(range(len(interrupted.steps)))
    assert same(interrupted, reference)


@pytest.mark.postgres
def test_terminated_database_connections_never_reach_the_client(reference: Schedule, tmp_path: Path) -> None:
    from tests.conftest import _postgres_database

    databases = _postgres_database()
    database_url = next(databases)
    server = ForkedServer(database_url).start()
    statuses: list[int] = []
    client = httpx.Client(
        base_url=server.url,
        timeout=httpx.Timeout(10.0, connect=2.0),
        event_hooks={"response": [lambda response: statuses.append(response.status_code)]},
    )
    stop = threading.Event()
    terminated: list[int] = []
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    one_at_a_time = threading.Lock()  # two cutters would cut each other's connection

    def terminate() -> None:
        with one_at_a_time, admin.connect() as connection:
            killed = connection.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )).scalar_one()  # fmt: skip
        terminated.append(int(killed))

    def keep_terminating() -> None:  # cuts that land while a request is in flight
        while not stop.wait(0.1):
            terminate()

    transport = Hooked(server.url, retry=NO_RETRY, client=client)
    # and cuts of the pooled connections between requests, every other report: a fast run would
    # otherwise see too few cuts for the test to mean anything (CI once counted 4)
    transport.before_report = lambda window: terminate() if window % 2 == 0 else None
    killer = threading.Thread(target=keep_terminating, daemon=True)
    killer.start()
    try:
        run = train(transport)
    finally:
        stop.set()
        killer.join(10)
        server.stop()
        admin.dispose()
        databases.close()
    assert sum(terminated) >= 5, terminated  # the service's connections really were cut, often
    assert statuses and max(statuses) < 500, sorted(set(statuses))
    assert same(run, reference)


def test_an_outage_covering_the_end_of_the_run_loses_no_step(database_url: str, tmp_path: Path) -> None:
    server = ForkedServer(database_url).start()
    spool = tmp_path / "spool"
    model, groups = Quadratic(), Groups()
    tuner = Tuner(
        "outage", url=server.url, total_steps=TOTAL, model=model, optimizer=groups, retry_deadline_s=1.0,
        spool_dir=spool, **OPTIONS,
    )  # fmt: skip
    trained = 0
    for step in range(TOTAL):
        if step == TOTAL - 60:
            server.kill()  # down until after the run
        tuner.next_lr(step, model.step(groups.param_groups[0]["lr"]))
        trained += 1
        if tuner.done:
            break
    assert tuner.in_fallback
    tuner.close()  # retries for its deadline, then keeps the steps in the spool
    assert len(list(spool.iterdir())) == 1
    server.start()
    try:
        again = Tuner(
            "outage", url=server.url, total_steps=TOTAL, spool_dir=spool, **OPTIONS
        )  # the next attach
        schedule = again.schedule()
        again.close()
    finally:
        server.stop()
    assert [s.step for s in schedule.steps] == list(range(trained))
    assert list(spool.iterdir()) == []
