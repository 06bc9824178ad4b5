"""Authentication on both databases: tokens name the tenant, other tenants' jobs are invisible (404),
missing or revoked tokens get 401, admin routes need an admin token, browsers sign in with a cookie."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from lrpilot_service.api.app import create_app
from lrpilot_service.api.settings import Settings, is_loopback
from lrpilot_service.store import JobRepository
from tests.plans import CLASSIC_PLAN

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

CONFIG = {"total_steps": 2000, "search": "space_filling", **CLASSIC_PLAN}


@pytest.fixture
def secured(repository: JobRepository) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A client on an app with auth required, and tokens: a and b (two tenants), admin."""
    app = create_app(Settings(auth="required", warm_engine=False), repository=repository)
    tokens = {
        "a": repository.access.create_token("team-a").token,
        "b": repository.access.create_token("team-b").token,
        "admin": repository.access.create_token("ops", admin=True).token,
    }
    with TestClient(app) as client:
        yield client, tokens


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_token_sees_only_its_tenants_jobs(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = secured
    a, b = bearer(tokens["a"]), bearer(tokens["b"])
    created = client.post("/v1/jobs", json={"name": "run", "config": CONFIG}, headers=a)
    assert created.status_code == 201 and created.json()["tenant"] == "team-a"
    report = {"start_step": 0, "losses": [1e6] * created.json()["decision"]["steps"]}
    for method, path, body in [
        ("GET", "/v1/jobs/run", None),
        ("GET", "/v1/jobs/run/schedule", None),
        ("POST", "/v1/jobs/run/windows/0", report),
        ("POST", "/v1/jobs/run/status", {"status": "failed"}),
        ("DELETE", "/v1/jobs/run", None),
    ]:
        response = client.request(method, path, json=body, headers=b)
        assert response.status_code == 404, (method, path, response.text)
    assert client.get("/v1/jobs", headers=b).json()["jobs"] == []
    assert client.get("/v1/jobs/run", headers=a).json()["steps_reported"] == 0  # B changed nothing
    # B's own job of the same name is another job
    assert client.post("/v1/jobs", json={"name": "run", "config": CONFIG}, headers=b).status_code == 201


def test_missing_malformed_unknown_and_revoked_tokens_get_401(
    secured: tuple[TestClient, dict[str, str]], repository: JobRepository
) -> None:
    client, tokens = secured
    assert (
        client.post(
            "/v1/jobs", json={"name": "run", "config": CONFIG}, headers=bearer(tokens["a"])
        ).status_code
        == 201
    )
    for headers in ({}, bearer("nonsense"), bearer("lrp_" + "x" * 43), {"X-Lrpilot-Tenant": "team-a"}):
        response = client.get("/v1/jobs/run", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "detail" in response.json()
    (info,) = [t for t in repository.access.list_tokens("team-a")]
    repository.access.revoke_token(info.id)
    response = client.get("/v1/jobs/run", headers=bearer(tokens["a"]))
    assert response.status_code == 401 and "revoked" in response.json()["detail"]


def test_metrics_and_docs_need_a_token(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = secured
    for path in ("/metrics", "/openapi.json", "/docs"):
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=bearer(tokens["a"])).status_code == 200, path
    assert client.get("/healthz").status_code == 200  # probes stay open


def test_the_tenant_header_is_for_admins_only(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = secured
    client.post("/v1/jobs", json={"name": "run", "config": CONFIG}, headers=bearer(tokens["a"]))
    other = {**bearer(tokens["b"]), "X-Lrpilot-Tenant": "team-a"}
    response = client.get("/v1/jobs/run", headers=other)
    assert response.status_code == 403 and "team-b" in response.json()["detail"]
    admin = {**bearer(tokens["admin"]), "X-Lrpilot-Tenant": "team-a"}
    assert client.get("/v1/jobs/run", headers=admin).json()["tenant"] == "team-a"
    own = {**bearer(tokens["a"]), "X-Lrpilot-Tenant": "team-a"}
    assert client.get("/v1/jobs/run", headers=own).status_code == 200


def test_admin_routes_manage_tokens_and_tenants(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = secured
    assert client.get("/v1/admin/tokens", headers=bearer(tokens["a"])).status_code == 403
    admin = bearer(tokens["admin"])
    created = client.post("/v1/admin/tokens", json={"tenant": "team-c", "label": "ci"}, headers=admin)
    assert created.status_code == 201
    secret = created.json()["token"]
    assert secret.startswith("lrp_") and secret.startswith(created.json()["prefix"])
    listed = client.get("/v1/admin/tokens", params={"tenant": "team-c"}, headers=admin).json()
    assert [t["label"] for t in listed] == ["ci"] and "token" not in listed[0]
    assert client.get("/v1/jobs", headers=bearer(secret)).status_code == 200
    assert client.delete(f"/v1/admin/tokens/{created.json()['id']}", headers=admin).json()["revoked_at"]
    assert client.get("/v1/jobs", headers=bearer(secret)).status_code == 401  # at once
    assert client.delete("/v1/admin/tokens/99999", headers=admin).status_code == 404
    quota = client.put("/v1/admin/tenants/team-c", json={"max_jobs": 1}, headers=admin)
    assert quota.status_code == 200 and quota.json()["max_jobs"] == 1
    names = {t["name"] for t in client.get("/v1/admin/tenants", headers=admin).json()}
    assert {"team-a", "team-b", "team-c", "ops"} <= names


def test_browsers_sign_in_with_a_strict_http_only_cookie(secured: tuple[TestClient, dict[str, str]]) -> None:
    client, tokens = secured
    page = client.get("/docs", headers={"Accept": "text/html"}, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/docs"
    assert "<form" in client.get("/login").text
    wrong = client.post("/login", data={"token": "lrp_wrong", "next": "/docs"}, follow_redirects=False)
    assert wrong.status_code == 401 and "lrpilot_session" not in wrong.headers.get("set-cookie", "")
    signed = client.post("/login", data={"token": tokens["a"], "next": "/docs"}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/docs"
    cookie = signed.headers["set-cookie"].lower()
    assert (
        "httponly" in cookie and "samesite=strict" in cookie and tokens["a"].lower() not in page.text.lower()
    )
    assert client.get("/docs").status_code == 200  # the cookie now authenticates
    assert client.get("/v1/jobs").status_code == 200
    escape = client.post(
        "/login", data={"token": tokens["a"], "next": "//evil.example/x"}, follow_redirects=False
    )
    assert escape.headers["location"] == "/"  # no open redirect
    client.post("/logout")
    assert client.get("/v1/jobs").status_code == 401


def test_tokens_never_reach_the_logs(
    secured: tuple[TestClient, dict[str, str]], repository: JobRepository, caplog: pytest.LogCaptureFixture
) -> None:
    client, tokens = secured
    (info,) = repository.access.list_tokens("team-b")
    repository.access.revoke_token(info.id)
    with caplog.at_level(logging.DEBUG):
        client.post("/v1/jobs", json={"name": "run", "config": CONFIG}, headers=bearer(tokens["a"]))
        client.get("/v1/jobs/run", headers=bearer(tokens["b"]))  # revoked
        client.get("/v1/jobs/run", headers=bearer(tokens["a"] + "x"))  # unknown
        client.post("/login", data={"token": tokens["a"]})
    assert caplog.records and all(t not in caplog.text for t in tokens.values())


def test_auth_defaults_to_required_unless_the_service_binds_a_loopback_address() -> None:
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "10.1.2.3")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert not Settings(host="127.0.0.1").auth_required and Settings(host="0.0.0.0").auth_required
    assert Settings(host="0.0.0.0", auth="off").auth_required is False
    assert Settings(host="127.0.0.1", auth="required").auth_required


def test_quota_and_rate_limit_answer_429_with_retry_after(repository: JobRepository) -> None:
    settings = Settings(
        auth="required", warm_engine=False, max_jobs_per_tenant=2, rate_limit_per_s=1.0, rate_limit_burst=5
    )
    token = repository.access.create_token("team-q").token
    with TestClient(create_app(settings, repository=repository)) as client:
        statuses = [
            client.post(
                "/v1/jobs", json={"name": f"run-{i}", "config": CONFIG}, headers=bearer(token)
            ).status_code
            for i in range(3)
        ]
        assert statuses == [201, 201, 429]
        refused: Any = client.post(
            "/v1/jobs", json={"name": "run-9", "config": CONFIG}, headers=bearer(token)
        )
        assert refused.status_code == 429 and "quota" in refused.json()["detail"]
        assert int(refused.headers["retry-after"]) >= 1
        for _ in range(5):
            limited = client.get("/v1/jobs", headers=bearer(token))
        assert limited.status_code == 429 and "rate limit" in limited.json()["detail"]
        assert int(limited.headers["retry-after"]) >= 1 and limited.json()["retry_after_s"] > 0
