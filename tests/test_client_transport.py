"""HttpTransport against httpx.MockTransport; InProcessTransport against the real store."""

from __future__ import annotations

import json
import math
from pathlib import Path

import httpx
import pytest

from lrpilot import (
    HttpTransport,
    InProcessTransport,
    JobConflictError,
    JobNotFoundError,
    ReportRejectedError,
    ServiceUnavailableError,
    WindowConflictError,
    make_transport,
)
from lrpilot.protocol import Decision, JobCreate, TunerConfig, WindowReport

DECISION = Decision(
    window=1,
    start_step=5,
    steps=5,
    lr=0.1,
    lr_end=0.1,
    action="continue",
    phase="exploit",
    stage=0,
    reason="",
)


def transport(handler: httpx.MockTransport, retries: int = 2) -> HttpTransport:
    client = httpx.Client(
        base_url="http://lrpilot.test", transport=handler, headers={"X-Lrpilot-Tenant": "t1"}
    )
    return HttpTransport("http://lrpilot.test", tenant="t1", retries=retries, backoff=0.001, client=client)


def test_reports_are_nan_safe_json_and_decisions_parse() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=DECISION.model_dump_json())

    report = WindowReport(start_step=0, losses=[1.0, math.nan, math.inf], lrs=[0.1, 0.1, 0.1])
    decision = transport(httpx.MockTransport(handler)).report_window("a/b", 0, report)
    assert decision == DECISION
    request = seen[0]
    assert request.url.path == "/v1/jobs/a%2Fb/windows/0" or request.url.path == "/v1/jobs/a/b/windows/0"
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

    with pytest.raises(ServiceUnavailableError, match="3 tries"):
        transport(httpx.MockTransport(down)).report_window("x", 0, report)


def test_in_process_transport_maps_store_errors(tmp_path: Path) -> None:
    embedded = InProcessTransport(f"sqlite:///{tmp_path / 'e.db'}", tenant="t")
    view = embedded.create_or_attach(JobCreate(name="job", config=TunerConfig(total_steps=100)))
    assert (
        embedded.create_or_attach(JobCreate(name="job", config=TunerConfig(total_steps=100))).decision
        == view.decision
    )
    with pytest.raises(JobConflictError):
        embedded.create_or_attach(JobCreate(name="job", config=TunerConfig(total_steps=200)))
    with pytest.raises(JobNotFoundError):
        embedded.schedule("nope")
    d = view.decision
    with pytest.raises(WindowConflictError) as conflict:
        embedded.report_window("job", d.window + 5, WindowReport(start_step=0, losses=[1.0]))
    assert conflict.value.expected_window == d.window
    with pytest.raises(ReportRejectedError):
        embedded.report_window("job", d.window, WindowReport(start_step=d.start_step + 1, losses=[1.0]))
    assert [job.name for job in embedded.list_jobs()] == ["job"]
    embedded.close()


def test_make_transport_prefers_url_then_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LRPILOT_URL", "http://127.0.0.1:9")
    assert isinstance(make_transport(None), HttpTransport)
    monkeypatch.delenv("LRPILOT_URL")
    monkeypatch.setenv("LRPILOT_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    embedded = make_transport(None)
    assert isinstance(embedded, InProcessTransport) and embedded.database_url.endswith("env.db")
    embedded.close()
