"""Operational routes and the app factory: /healthz, /metrics, OpenAPI, opening from settings."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from lrpilot_service.api.app import create_app
from lrpilot_service.api.settings import Settings
from lrpilot_service.store import JobRepository
from lrpilot_service.store.db import create_db_engine
from tests.plans import CLASSIC_PLAN

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient as Client

CONFIG = {"total_steps": 2000, "search": "space_filling", **CLASSIC_PLAN}


def test_healthz_checks_the_database(api_client: TestClient) -> None:
    response = api_client.get("/healthz")
    assert response.status_code == 200 and response.json()["database"] == "ok"


def test_healthz_is_503_when_the_database_is_gone(tmp_path: Path) -> None:
    missing = create_db_engine(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.db'}")
    client = Client(create_app(Settings(), repository=JobRepository(missing)))
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["status"] == "unavailable"


def test_metrics_count_requests_decisions_and_jobs(api_client: TestClient) -> None:
    decision = api_client.post("/v1/jobs", json={"name": "run", "config": CONFIG}).json()["decision"]
    api_client.post("/v1/jobs/run/windows/0", json={"start_step": 0, "losses": [1.0] * decision["steps"]})
    api_client.get("/v1/jobs/ghost")
    response = api_client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'lrpilot_http_requests_total{method="POST",route="/v1/jobs",status="201"} 1.0' in text
    assert 'lrpilot_http_requests_total{method="GET",route="/v1/jobs/{job}",status="404"} 1.0' in text
    assert 'lrpilot_decision_seconds_bucket{le="+Inf"} 1.0' in text
    assert "lrpilot_decision_seconds_count 1.0" in text
    assert 'lrpilot_decisions_total{phase="search"} 1.0' in text
    assert 'lrpilot_jobs{status="active"} 1.0' in text and 'lrpilot_jobs{status="done"} 0.0' in text
    assert 'lrpilot_jobs{status="stale"} 0.0' in text
    assert "lrpilot_client_fallback_windows_total 0.0" in text


def test_metrics_count_windows_a_client_trained_in_fallback(api_client: TestClient) -> None:
    decision = api_client.post("/v1/jobs", json={"name": "run", "config": CONFIG}).json()["decision"]
    steps = decision["steps"]
    lrs = [decision["lr"]] * (steps - 3) + [1e-4] * 3  # the last three at the client's safe LR
    report = {"start_step": 0, "losses": [1.0] * steps, "lrs": lrs}
    assert api_client.post("/v1/jobs/run/windows/0", json=report).status_code == 200
    text = api_client.get("/metrics").text
    assert "lrpilot_client_fallback_windows_total 1.0" in text
    assert "lrpilot_client_fallback_steps_total 3.0" in text


def test_metric_labels_are_escaped(api_client: TestClient) -> None:
    metrics = api_client.app.state.metrics  # type: ignore[attr-defined]
    metrics.count_request("GET", 'a"b\\c\nd', 200)
    assert 'route="a\\"b\\\\c\\nd"' in api_client.get("/metrics").text


def test_openapi_documents_the_routes(api_client: TestClient) -> None:
    paths = api_client.get("/openapi.json").json()["paths"]
    assert {"/v1/jobs", "/v1/jobs/{job}/windows/{window}", "/v1/jobs/{job}/schedule", "/healthz"} <= set(
        paths
    )
    assert api_client.get("/docs").status_code == 200


def test_app_opens_and_migrates_its_database_from_settings(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'fresh.db'}")
    with Client(create_app(settings)) as client:
        assert client.post("/v1/jobs", json={"name": "run", "config": CONFIG}).status_code == 201
        assert client.get("/healthz").status_code == 200
    with Client(create_app(settings)) as client:  # a restart finds the job again
        assert client.post("/v1/jobs", json={"name": "run", "config": CONFIG}).status_code == 200


def test_settings_come_from_lrpilot_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LRPILOT_DATABASE_URL", "sqlite:///elsewhere.db")
    monkeypatch.setenv("LRPILOT_MAX_BODY_BYTES", "1234")
    monkeypatch.setenv("LRPILOT_WORKERS", "3")
    settings = Settings()
    assert (settings.database_url, settings.max_body_bytes, settings.workers) == (
        "sqlite:///elsewhere.db",
        1234,
        3,
    )
    assert (Settings.model_fields["host"].default, Settings.model_fields["port"].default) == (
        "127.0.0.1",
        8000,
    )
