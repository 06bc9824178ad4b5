"""HttpTransport against httpx.MockTransport; make_transport's choice; the retry policy it uses."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import pytest

from lrpilot import (
    HttpTransport,
    JobConflictError,
    JobNotFoundError,
    ReportRejectedError,
    RetryPolicy,
    ServiceUnavailableError,
    WindowConflictError,
    make_transport,
)
from lrpilot.protocol import WindowReport
from lrpilot.testing import make_decision

DECISION = make_decision(window=1, start_step=5, steps=5)


def transport(handler: httpx.MockTransport, retries: int = 2) -> HttpTransport:
    client = httpx.Client(
        base_url="http://lrpilot.test", transport=handler, headers={"X-Lrpilot-Tenant": "t1"}
    )
    policy = RetryPolicy(attempts=retries + 1, first_wait_s=0.001)
    return HttpTransport("http://lrpilot.test", tenant="t1", retry=policy, client=client)


def test_reports_are_nan_safe_json_and_decisions_parse() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=DECISION.model_dump_json())

    report = WindowReport(start_step=0, losses=[1.0, math.nan, math.inf], lrs=[0.1, 0.1, 0.1])
    decision = transport(httpx.MockTransport(handler)).report_window("a/b", 0, report)
    assert decision == DECISION
    request = seen[0]
    # the raw (undecoded) path: a "/" inside a job name must travel encoded, or it reads as a route
    assert request.url.raw_path == b"/v1/jobs/a%2Fb/windows/0"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-lrpilot-tenant"] == "t1"
    assert json.loads(request.content)["losses"] == [1.0, "NaN", "Infinity"]  # valid JSON, NaN as a string


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, {"detail": "no job named 'x'"}, JobNotFoundError),
        (409, {"detail": "expects window 3", "expected_window": 3}, WindowConflictError),
        (409, {"detail": "different config"}, JobConflictError),
        (422, {"detail": "lr_min must be smaller"}, ReportRejectedError),
    ],
)
def test_4xx_raise_typed_errors_at_once(status: int, body: dict[str, object], error: type[Exception]) -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(status, json=body)

    with pytest.raises(error) as caught:
        transport(httpx.MockTransport(handler)).report_window(
            "x", 0, WindowReport(start_step=0, losses=[1.0])
        )
    assert len(calls) == 1  # never retried
    assert caught.value.detail == body["detail"]  # type: ignore[attr-defined]
    if isinstance(caught.value, WindowConflictError):
        assert caught.value.expected_window == 3


def test_5xx_and_connection_errors_are_retried_then_unavailable() -> None:
    outcomes = [
        httpx.ConnectError("refused"),
        httpx.Response(503),
        httpx.Response(200, content=DECISION.model_dump_json()),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    report = WindowReport(start_step=0, losses=[1.0])
    assert transport(httpx.MockTransport(handler)).report_window("x", 0, report) == DECISION

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow")

    calls = []

    def down_and_counted(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return down(request)

    with pytest.raises(ServiceUnavailableError, match="ReadTimeout"):
        transport(httpx.MockTransport(down_and_counted)).report_window("x", 0, report)
    assert len(calls) == 3  # retries=2: three attempts, then the last failure is raised


def test_make_transport_prefers_url_then_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LRPILOT_URL", "http://127.0.0.1:9")
    assert isinstance(make_transport(None), HttpTransport)
    monkeypatch.delenv("LRPILOT_URL")
    monkeypatch.setenv("LRPILOT_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    embedded = make_transport(None)
    assert type(embedded).__name__ == "EmbeddedTransport"
    assert getattr(embedded, "database_url", "").endswith("env.db")
    embedded.close()


def test_the_token_travels_as_a_bearer_header_and_auth_errors_are_typed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from lrpilot.errors import AuthenticationError, PermissionDeniedError, TooManyRequestsError

    seen: list[httpx.Request] = []
    answers = iter(
        [
            httpx.Response(401, json={"detail": "the bearer token is revoked"}),
            httpx.Response(403, json={"detail": "needs an admin token"}),
            httpx.Response(429, json={"detail": "rate limit"}, headers={"Retry-After": "3"}),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(answers)

    monkeypatch.setenv("LRPILOT_TOKEN", "lrp_from_env")
    client = httpx.Client(base_url="http://lrpilot.test", transport=httpx.MockTransport(handler))
    http = HttpTransport("http://lrpilot.test", retry=RetryPolicy(attempts=1), client=client)
    report = WindowReport(start_step=0, losses=[1.0])
    for error in (AuthenticationError, PermissionDeniedError):
        with pytest.raises(error):
            http.report_window("x", 0, report)
    with pytest.raises(TooManyRequestsError) as limited:
        http.report_window("x", 0, report)
    assert limited.value.retry_after_s == 3.0 and isinstance(limited.value, ServiceUnavailableError)
    assert {r.headers["authorization"] for r in seen} == {"Bearer lrp_from_env"}
    assert all("x-lrpilot-tenant" not in r.headers for r in seen)  # the token names the tenant
    assert all("lrp_from_env" not in str(r.url) for r in seen)


def test_a_retry_waits_at_least_the_retry_after_the_service_asked_for() -> None:
    outcomes = [httpx.Response(503, json={"detail": "busy"}, headers={"Retry-After": "2"})]
    outcomes.append(httpx.Response(200, content=DECISION.model_dump_json()))
    waits: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return outcomes.pop(0)

    policy = RetryPolicy(deadline_s=30, first_wait_s=0.001)
    client = httpx.Client(base_url="http://lrpilot.test", transport=httpx.MockTransport(handler))
    http = HttpTransport("http://lrpilot.test", retry=policy, client=client)
    result = policy.call(
        lambda: HttpTransport._send_once(http, "POST", "/v1/jobs/x/windows/0", None, None),
        lambda error: isinstance(error, ServiceUnavailableError),
        sleep=waits.append,
    )
    assert result.status_code == 200 and waits == [2.0]


def test_job_lists_and_schedules_are_read_page_by_page() -> None:
    from datetime import UTC, datetime

    from lrpilot.protocol import JobPage, JobView, Schedule, ScheduleStep, TunerConfig

    now = datetime.now(UTC)
    view = JobView(
        name="a", tenant="t", status="running", config=TunerConfig(), decision=DECISION, steps_reported=0,
        created_at=now, updated_at=now,
    )  # fmt: skip

    def step(i: int) -> ScheduleStep:
        return ScheduleStep(step=i, lr=0.1, loss=1.0, window=0, phase="exploit", stage=0)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/jobs":
            after = request.url.params.get("after")
            page = (
                JobPage(jobs=[view], next="7")
                if after is None
                else JobPage(jobs=[view.model_copy(update={"name": "b"})])
            )
            return httpx.Response(200, content=page.model_dump_json())
        start = int(request.url.params.get("from_step", 0))
        more = start == 0
        schedule = Schedule(
            job="a",
            steps=[step(start), step(start + 1)],
            stages=[],
            search_share=0.5,
            next_step=2 if more else None,
        )
        return httpx.Response(200, content=schedule.model_dump_json())

    http = transport(httpx.MockTransport(handler))
    assert [job.name for job in http.list_jobs()] == ["a", "b"]
    assert [s.step for s in http.schedule("a").steps] == [0, 1, 2, 3]
