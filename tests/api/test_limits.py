"""Bounded inputs: config ranges, strict names, losses and LRs, the report cap, pages; JSON for every 5xx."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import TYPE_CHECKING, Any

import pytest

from lrpilot.bounds import MAX_REPORT_STEPS
from lrpilot.protocol import ErrorBody
from lrpilot_service.api.app import create_app
from lrpilot_service.api.limits import InflightLimit
from lrpilot_service.api.settings import Settings
from lrpilot_service.store import JobRepository
from tests.plans import CLASSIC_PLAN

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient as Client

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

CONFIG = {"total_steps": 2000, "search": "space_filling", **CLASSIC_PLAN}


@pytest.mark.parametrize(
    ("config", "detail"),
    [
        ({"tau_ratio": 1e-308}, "tau_ratio must lie in [0.01, 1]"),
        ({"lr_min": 1e-300, "lr_max": 1e300}, "lr_min must lie in [1e-10, 1000]"),
        ({"lr_min": 1e-9, "lr_max": 100.0}, "lr_max / lr_min must lie in [1.01, 1e+10]"),
        ({"warmup_lr": 1e-300}, "warmup_lr must lie in"),
        ({"tau": 10**12}, "tau must lie in [10, 1e+08]"),
        ({"warmup_steps": 10**12}, "warmup_steps must lie in [0, 1e+08]"),
        ({"window_max": 1_000_000}, "window_max must lie in [1, 10000]"),
        ({"divergence_factor": 1e300}, "divergence_factor must lie in"),
        ({"total_steps": True}, "total_steps must be a number"),
        ({"candidates": 1}, "candidates: must lie in [2, 64]"),
    ],
)
def test_configs_the_engine_cannot_run_are_422_naming_the_field_and_its_range(
    api_client: TestClient, config: dict[str, Any], detail: str
) -> None:
    response = api_client.post("/v1/jobs", json={"name": "x", "config": config})
    assert response.status_code == 422 and detail in response.json()["detail"], response.text


@pytest.mark.parametrize("name", ["a/../b", "a//b", "x/schedule", "a..b", ".hidden", "a b", "-x"])
def test_names_are_one_path_segment_without_dot_dot(api_client: TestClient, name: str) -> None:
    response = api_client.post("/v1/jobs", json={"name": name, "config": CONFIG})
    assert response.status_code == 422 and "no '/', no '..'" in response.json()["detail"]


def test_reports_are_strict_about_losses_and_lrs(api_client: TestClient) -> None:
    decision = api_client.post("/v1/jobs", json={"name": "run", "config": CONFIG}).json()["decision"]
    n, start = decision["steps"], decision["start_step"]
    cases = [
        ({"losses": [True] * n}, "body.losses.0: must be a number"),
        ({"losses": ["1.5"] * n}, "got '1.5'"),
        ({"losses": [1.0] * n, "lrs": [float("nan")] * n}, "body.lrs.0: must be a finite, positive LR"),
        ({"losses": [1.0] * n, "lrs": [-0.1] * n}, "finite, positive LR"),
        ({"losses": [1.0] * n, "lrs": ["Infinity"] * n}, "body.lrs.0"),
        ({"losses": [1.0] * (MAX_REPORT_STEPS + 1)}, f"at most {MAX_REPORT_STEPS} items"),
        ({"losses": [1.0] * n, "grad_norms": [False] * n}, "body.grad_norms.0: must be a number"),
    ]
    for body, detail in cases:
        content = json.dumps({"start_step": start, **body})
        response = api_client.post(
            "/v1/jobs/run/windows/0", content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422 and detail in response.json()["detail"], (
            body.keys(),
            response.text,
        )
    ok = {
        "start_step": start,
        "losses": ["NaN", "Infinity", "-Infinity", *[2.0] * (n - 3)],
        "lrs": [0.01] * n,
    }
    assert api_client.post("/v1/jobs/run/windows/0", json=ok).status_code == 200


def test_job_lists_and_schedules_come_in_pages(api_client: TestClient) -> None:
    for i in range(5):
        api_client.post("/v1/jobs", json={"name": f"run-{i}", "config": CONFIG})
    names, after = [], None
    while True:
        page = api_client.get("/v1/jobs", params={"limit": 2, **({"after": after} if after else {})}).json()
        names += [job["name"] for job in page["jobs"]]
        assert len(page["jobs"]) <= 2
        after = page["next"]
        if after is None:
            break
    assert names == [f"run-{i}" for i in range(5)]
    decision = api_client.post("/v1/jobs", json={"name": "run-0", "config": CONFIG}).json()["decision"]
    for window in range(3):
        report = {"start_step": decision["start_step"], "losses": [1.0] * decision["steps"]}
        decision = api_client.post(f"/v1/jobs/run-0/windows/{window}", json=report).json()
    first = api_client.get("/v1/jobs/run-0/schedule", params={"limit": 7}).json()
    assert [s["step"] for s in first["steps"]] == list(range(7)) and first["next_step"] == 7
    rest = api_client.get("/v1/jobs/run-0/schedule", params={"from_step": 7, "limit": 100}).json()
    assert rest["steps"][0]["step"] == 7 and rest["next_step"] is None
    assert first["search_share"] == rest["search_share"] == 1.0  # of the whole job, not of the page
    assert api_client.get("/v1/jobs", params={"limit": 0}).status_code == 422


def test_an_unexpected_error_is_a_json_500(
    repository: JobRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug with secrets inside")

    monkeypatch.setattr(repository, "list_page", broken)
    with Client(
        create_app(Settings(warm_engine=False), repository=repository), raise_server_exceptions=False
    ) as client:
        response = client.get("/v1/jobs")
    assert response.status_code == 500 and response.headers["content-type"] == "application/json"
    detail = ErrorBody.model_validate(response.json()).detail
    assert "internal error" in detail and "secrets" not in detail


def test_overload_is_a_503_with_retry_after_not_a_queue() -> None:
    release = asyncio.Event()
    started = 0

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal started
        started += 1
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    limit = InflightLimit(slow_app, max_inflight=2)
    sent: list[dict[str, Any]] = []

    async def scenario() -> None:
        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        scope = {"type": "http", "path": "/v1/jobs", "method": "GET", "headers": []}
        busy = [asyncio.create_task(limit(scope, receive, send)) for _ in range(2)]
        await asyncio.sleep(0.01)
        await limit(scope, receive, send)  # the third: refused at once
        release.set()
        await asyncio.gather(*busy)

    asyncio.run(scenario())
    statuses = [m["status"] for m in sent if m["type"] == "http.response.start"]
    assert statuses == [503, 200, 200] and started == 2 and limit.refused == 1
    refusal = next(m for m in sent if m.get("status") == 503)
    assert (b"retry-after", b"1") in refusal["headers"]
