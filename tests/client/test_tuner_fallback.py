"""The tuner when the service is away: the loop never fails, one warning, a truthful replay."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from lrpilot import HttpTransport, ServiceUnavailableError, Tuner, WindowConflictError
from lrpilot.protocol import JobView, TunerConfig
from lrpilot.retry import NO_RETRY
from lrpilot.testing import ScriptedTransport, Window, make_decision, outage

PLAN = [
    Window(5, 0.1, phase="exploit"),
    Window(5, 0.1, phase="exploit"),
    Window(5, 0.5, action="snapshot", phase="search", stage=1),
    *[Window(5, 0.1, phase="exploit", stage=1)] * 30,
]


def quick(tuner: Tuner) -> Tuner:
    tuner.fallback_policy.first_interval = 3
    tuner.fallback_policy.min_interval_s = 0.0
    return tuner


def covered(transport: ScriptedTransport) -> list[int]:
    return [r.start_step + i for _, r in sorted(transport.reports.items()) for i in range(len(r.losses))]


def test_outage_falls_back_warns_once_and_replays_what_was_used(caplog: pytest.LogCaptureFixture) -> None:
    transport = ScriptedTransport(PLAN, fail=outage(4))
    tuner = quick(Tuner("j", transport=transport, retry_deadline_s=0))
    used = []
    with caplog.at_level(logging.WARNING, logger="lrpilot"):
        for step in range(60):
            used.append(tuner.lr)
            tuner.next_lr(step, 1.0 / (step + 1))
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert not tuner.in_fallback
    assert covered(transport) == list(range(len(covered(transport))))  # contiguous, nothing lost
    assert len(covered(transport)) >= 55
    # the search window (planned at 0.5) fell inside the outage: trained and reported at the safe 0.1
    assert 0.5 not in used[:55]
    for r in transport.reports.values():
        assert r.lrs == pytest.approx(used[r.start_step : r.start_step + len(r.losses)])
    # the retries came at growing step intervals, not per step
    assert transport.network_calls < 20


def test_slow_service_times_out_then_falls_back() -> None:
    with stalling_server() as url:
        transport = HttpTransport(url, timeout=httpx.Timeout(0.2), retry=NO_RETRY)
        tuner = quick(Tuner("j", transport=transport, retry_deadline_s=0.3))
        started = time.monotonic()
        for step in range(30):
            tuner.next_lr(step, 1.0)
        assert tuner.in_fallback
        assert time.monotonic() - started < 10
        assert tuner.lr == pytest.approx(0.2)  # the last exploit LR
        tuner.close()


def test_service_down_at_start_trains_then_attaches_and_replays_from_zero() -> None:
    down = {"on": True}
    transport = ScriptedTransport(
        [Window(4, 0.2, phase="exploit")] * 20,
        fail=lambda call: ServiceUnavailableError("x") if down["on"] else None,
    )
    tuner = quick(Tuner("j", transport=transport, retry_deadline_s=0, lr_min=1e-4, lr_max=1.0))
    assert tuner.in_fallback and tuner.lr == pytest.approx(1e-3)  # geometric quarter point of the range
    for step in range(10):
        tuner.next_lr(step, 1.0)
    down["on"] = False
    for step in range(10, 30):
        tuner.next_lr(step, 1.0)
    assert not tuner.in_fallback
    assert covered(transport)[:20] == list(range(20))
    assert transport.reports[0].lrs == pytest.approx([1e-3] * 4)


def test_window_conflict_resyncs_at_once() -> None:
    once = {"done": False}

    def conflict(call: str) -> BaseException | None:
        if call == "report_window" and not once["done"]:
            once["done"] = True
            return WindowConflictError("expects window 0", expected_window=0)
        return None

    transport = ScriptedTransport([Window(5, 0.1)] * 5, fail=conflict)
    tuner = quick(Tuner("j", transport=transport, retry_deadline_s=0))
    for step in range(7):
        tuner.next_lr(step, 1.0)
    assert not tuner.in_fallback
    assert covered(transport) == list(range(5))


def test_close_in_fallback_reports_nothing_lost_when_service_is_back() -> None:
    transport = ScriptedTransport(PLAN, fail=outage(1))
    tuner = quick(Tuner("j", transport=transport, retry_deadline_s=0))
    for step in range(11):
        tuner.next_lr(step, 1.0)
    assert tuner.in_fallback
    tuner.close()
    assert covered(transport) == list(range(11))


# -- a server that accepts a job and then never answers a report in time ---------------------------


def stalling_server() -> _Server:
    return _Server()


class _Server:
    def __enter__(self) -> str:
        now = datetime.now(UTC)
        decision = make_decision(steps=5, lr=0.2)
        view = JobView(
            name="j", tenant="default", status="running", config=TunerConfig(), decision=decision,
            steps_reported=0, created_at=now, updated_at=now,
        ).model_dump_json()  # fmt: skip

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                if self.path.endswith("/windows/0"):
                    time.sleep(1.0)  # far past the client's read timeout
                body = view.encode() if self.path == "/v1/jobs" else json.dumps({"detail": "late"}).encode()
                try:
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
