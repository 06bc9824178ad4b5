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
