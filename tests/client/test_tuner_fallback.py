"""The tuner when the service is away: the loop never fails or waits, one warning, a truthful replay."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from lrpilot import HttpTransport, ServiceUnavailableError, Tuner, WindowConflictError
from lrpilot.fallback import FallbackSchedule
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
    """Knock every few milliseconds instead of every second or more."""
    tuner.fallback_policy.first_wait_s = 0.001
    tuner.fallback_policy.max_wait_s = 0.004
    return tuner


def covered(transport: ScriptedTransport) -> list[int]:
    return [r.start_step + i for _, r in sorted(transport.reports.items()) for i in range(len(r.losses))]


def train(tuner: Tuner, steps: range, loss: Callable[[int], float] = lambda step: 1.0) -> list[float]:
    """The LR used at each step; a millisecond per step, as a (very fast) training step would take."""
    used = []
    for step in steps:
        used.append(tuner.lr)
        tuner.next_lr(step, loss(step))
        time.sleep(0.001)
    return used


def wait_attached(tuner: Tuner, start: int, timeout_s: float = 5.0) -> int:
    """Step on until the tuner follows the service again; returns the next step."""
    deadline = time.monotonic() + timeout_s
    step = start
    while tuner.in_fallback and time.monotonic() < deadline:
        tuner.next_lr(step, 1.0)
        step += 1
        time.sleep(0.001)
    assert not tuner.in_fallback
    return step


def test_outage_falls_back_warns_once_and_replays_what_was_used(caplog: pytest.LogCaptureFixture) -> None:
    transport = ScriptedTransport(PLAN, fail=outage(4))
    tuner = quick(Tuner("j", transport=transport, retry_deadline_s=0))
    with caplog.at_level(logging.WARNING, logger="lrpilot"):
        used = train(tuner, range(60), lambda step: 1.0 / (step + 1))
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert not tuner.in_fallback
    assert covered(transport) == list(range(len(covered(transport))))  # contiguous, nothing lost
    assert len(covered(transport)) >= 55
    # the search window (planned at 0.5) fell inside the outage: trained and reported at the safe 0.1
    assert 0.5 not in used[:55]
    for r in transport.reports.values():
        assert r.lrs == pytest.approx(used[r.start_step : r.start_step + len(r.losses)])
    # the knocks came at growing intervals from a background thread, not per step
    assert transport.network_calls < 30


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


def test_service_down_at_start_trains_on_the_fallback_schedule_then_attaches_and_replays() -> None:
    down = {"on": True}
    transport = ScriptedTransport(
        [Window(4, 0.2, phase="exploit")] * 40,
        fail=lambda call: ServiceUnavailableError("x") if down["on"] else None,
    )
    tuner = quick(
        Tuner("j", transport=transport, retry_deadline_s=0, lr_min=1e-4, lr_max=1.0, total_steps=500)
    )
    assert tuner.in_fallback
    used = train(tuner, range(10))
    # warmup over 2% of the budget (10 steps) to the geometric quarter point of the range, 1e-3
    assert used == pytest.approx([1e-3 * (step + 1) / 10 for step in range(10)])
    down["on"] = False
    wait_attached(tuner, 10)
    assert covered(transport)[:10] == list(range(10))
    assert transport.reports[0].lrs == pytest.approx(used[:4])


def test_fallback_schedule_warms_up_holds_and_anneals() -> None:
    config = TunerConfig(lr_min=1e-4, lr_max=1.0, total_steps=1000, anneal_fraction=0.2)
    start = FallbackSchedule.from_start(config, 1e-3, 0)
    assert start.lr(0) == pytest.approx(1e-3 / 20) and start.lr(19) == pytest.approx(1e-3)
    assert start.lr(500) == pytest.approx(1e-3) and start.lr(800) == pytest.approx(1e-3)
    assert start.lr(900) == pytest.approx((1e-3 + 1e-4) / 2) and start.lr(999) >= 1e-4
    lost = FallbackSchedule(config, 0.05)  # lost mid-run: hold the last safe LR, then anneal
    assert lost.lr(10) == 0.05 and lost.lr(1000) == pytest.approx(1e-4)
    unbudgeted = FallbackSchedule.from_start(TunerConfig(), 1e-2, 100)
    assert unbudgeted.lr(100) == pytest.approx(1e-5) and unbudgeted.lr(10**7) == 1e-2


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


def test_close_in_fallback_reports_nothing_lost_when_service_is_back(tmp_path: Path) -> None:
    down = {"on": False}
    transport = ScriptedTransport(
        PLAN, fail=lambda call: ServiceUnavailableError("x") if down["on"] else None
    )
    tuner = quick(Tuner("j", transport=transport, retry_deadline_s=0, spool_dir=tmp_path))
    train(tuner, range(5))
    down["on"] = True
    train(tuner, range(5, 11))
    assert tuner.in_fallback
    down["on"] = False
    tuner.close()
    assert covered(transport) == list(range(11))
    assert list(tmp_path.iterdir()) == []


def test_close_keeps_unreported_steps_in_the_spool_and_the_next_attach_replays_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    down = {"on": False}
    transport = ScriptedTransport(
        [Window(8, 0.1, phase="exploit")] * 10,
        fail=lambda call: ServiceUnavailableError("x") if down["on"] else None,
    )
    tuner = quick(Tuner("j", transport=transport, retry_deadline_s=0.05, spool_dir=tmp_path))
    train(tuner, range(8))  # window 0 reported
    down["on"] = True
    train(tuner, range(8, 21))  # window 1 lost (fallback), 5 more steps
    with caplog.at_level(logging.WARNING, logger="lrpilot"):
        tuner.close()
    (spooled,) = tmp_path.iterdir()
    assert "saved in" in caplog.text and str(spooled) in caplog.text
    assert json.loads(spooled.read_text())["start_step"] == 8 and covered(transport) == list(range(8))
    down["on"] = False
    again = Tuner("j", transport=transport, retry_deadline_s=0, spool_dir=tmp_path)  # the next run
    assert covered(transport) == list(range(21)) and again.step == 21
    assert list(tmp_path.iterdir()) == []


def test_an_exception_in_the_loop_marks_the_job_failed() -> None:
    transport = ScriptedTransport(PLAN)
    with pytest.raises(RuntimeError), Tuner("j", transport=transport, retry_deadline_s=0) as tuner:
        train(tuner, range(3))
        raise RuntimeError("CUDA out of memory")
    assert transport.status == "failed" and covered(transport) == [0, 1, 2]


def test_unreachable_url_costs_nothing_and_is_reported_once_with_the_url(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    with socket.socket() as sock:  # a port nobody listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with caplog.at_level(logging.WARNING, logger="lrpilot"):
        started = time.monotonic()
        tuner = Tuner("j", url=url, total_steps=1000, spool_dir=tmp_path)
        elapsed = time.monotonic() - started
        used = train(tuner, range(30))
        tuner.close()
    assert elapsed < 0.5, f"Tuner() took {elapsed:.2f}s against a refused connection"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and url in errors[0].getMessage()
    assert used[0] < used[10] < used[25]  # warming up, not frozen at one LR


def test_a_wrong_url_to_another_server_says_so() -> None:
    with stalling_server(plain_404=True) as url:
        transport = HttpTransport(url, retry=NO_RETRY)
        with pytest.raises(ServiceUnavailableError, match="not an lrpilot service"):
            transport.create_or_attach(_create())


def _create() -> object:
    from lrpilot.protocol import JobCreate

    return JobCreate(name="j")


# -- a server that accepts a job and then never answers a report in time ---------------------------


def stalling_server(plain_404: bool = False) -> _Server:
    return _Server(plain_404)


class _Server:
    def __init__(self, plain_404: bool) -> None:
        self.plain_404 = plain_404

    def __enter__(self) -> str:
        now = datetime.now(UTC)
        decision = make_decision(steps=5, lr=0.2)
        view = JobView(
            name="j", tenant="default", status="running", config=TunerConfig(), decision=decision,
            steps_reported=0, created_at=now, updated_at=now,
        ).model_dump_json()  # fmt: skip
        plain_404 = self.plain_404

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["content-length"]))
                if plain_404:
                    self.send_error(404, "Not Found")
                    return
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
