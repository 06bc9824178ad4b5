"""Every /v1 route through HTTP on both databases: status codes, shapes, idempotent retries."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tests.plans import CLASSIC_PLAN

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

CONFIG = {"total_steps": 2000, "lr_min": 1e-4, "lr_max": 1.0, "search": "space_filling", **CLASSIC_PLAN}


def report_for(decision: dict[str, Any], losses: list[Any] | None = None) -> dict[str, Any]:
    return {"start_step": decision["start_step"], "losses": losses or [2.0] * decision["steps"]}


def test_create_attach_list_get_delete(api_client: TestClient) -> None:
    created = api_client.post("/v1/jobs", json={"name": "team:run-1", "config": CONFIG})
    assert created.status_code == 201, created.text
    view = created.json()
    assert view["tenant"] == "default" and view["status"] == "running" and view["decision"]["window"] == 0
    attached = api_client.post("/v1/jobs", json={"name": "team:run-1", "config": CONFIG})
    assert attached.status_code == 200 and attached.json()["decision"] == view["decision"]
    assert [job["name"] for job in api_client.get("/v1/jobs").json()["jobs"]] == ["team:run-1"]
    assert api_client.get("/v1/jobs/team:run-1").json()["decision"] == view["decision"]
    assert api_client.delete("/v1/jobs/team:run-1").status_code == 204
    assert api_client.get("/v1/jobs/team:run-1").status_code == 404
    assert api_client.get("/v1/jobs").json() == {"jobs": [], "next": None}


def test_same_name_other_config_is_a_409_naming_the_field(api_client: TestClient) -> None:
    api_client.post("/v1/jobs", json={"name": "run", "config": CONFIG})
    response = api_client.post("/v1/jobs", json={"name": "run", "config": {**CONFIG, "candidates": 4}})
    assert response.status_code == 409 and "candidates" in response.json()["detail"]


def test_windows_advance_and_retries_replay(api_client: TestClient) -> None:
    decision = api_client.post("/v1/jobs", json={"name": "run", "config": CONFIG}).json()["decision"]
    reply = api_client.post("/v1/jobs/run/windows/0", json=report_for(decision))
    assert reply.status_code == 200, reply.text
    following = reply.json()
    assert following["window"] == 1 and following["job"] == "run"
    retry = api_client.post("/v1/jobs/run/windows/0", json=report_for(decision))
    assert retry.status_code == 200 and retry.json() == following
    ahead = api_client.post("/v1/jobs/run/windows/2", json=report_for(following))
    assert ahead.status_code == 409 and ahead.json()["expected_window"] == 1
    assert "window 1" in ahead.json()["detail"]
    assert api_client.get("/v1/jobs/run").json()["steps_reported"] == decision["steps"]


def test_non_finite_losses_travel_as_strings(api_client: TestClient) -> None:
    decision = api_client.post("/v1/jobs", json={"name": "run", "config": CONFIG}).json()["decision"]
    losses = ["NaN", "Infinity", "-Infinity"] + [1.0] * (decision["steps"] - 3)
    body = {**report_for(decision, losses), "grad_norms": ["NaN"] * decision["steps"]}
    assert api_client.post("/v1/jobs/run/windows/0", json=body).status_code == 200
    # Bare NaN tokens (what Python's json.dumps writes) are accepted too.
    raw = json.dumps({"start_step": decision["start_step"] + decision["steps"], "losses": [float("nan")]})
    response = api_client.post(
        "/v1/jobs/run/windows/1", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    steps = api_client.get("/v1/jobs/run/schedule").json()["steps"]
    assert [step["loss"] for step in steps[:3]] == ["NaN", "Infinity", "-Infinity"]
    assert steps[-1]["loss"] == "NaN" and steps[-1]["window"] == 1


def test_schedule_reports_steps_stages_and_search_share(api_client: TestClient) -> None:
    decision = api_client.post("/v1/jobs", json={"name": "run", "config": CONFIG}).json()["decision"]
    api_client.post("/v1/jobs/run/windows/0", json=report_for(decision))
    schedule = api_client.get("/v1/jobs/run/schedule")
    assert schedule.status_code == 200
    data = schedule.json()
    assert data["job"] == "run" and len(data["steps"]) == decision["steps"]
    assert data["steps"][0]["lr"] == decision["lr"] and data["steps"][0]["candidate"] == decision["candidate"]
    assert data["search_share"] == 1.0 and data["stages"][0]["stage"] == 0


def test_tenant_header_separates_jobs(api_client: TestClient) -> None:
    headers = {"X-Lrpilot-Tenant": "team-a"}
    assert (
        api_client.post("/v1/jobs", json={"name": "run", "config": CONFIG}, headers=headers).status_code
        == 201
    )
    assert api_client.get("/v1/jobs/run").status_code == 404
    assert api_client.get("/v1/jobs/run", headers=headers).json()["tenant"] == "team-a"
    assert api_client.post("/v1/jobs", json={"name": "run", "config": CONFIG}).status_code == 201


def test_keep_travels_only_to_jobs_that_asked_for_it(api_client: TestClient) -> None:
    """A client from before ``keep`` forbids unknown fields: its decisions must not carry the key."""
    val = {**CONFIG, "objective": "val", "probe": "none", "warmup_steps": 0}
    for name, keep_best in (("old", False), ("new", True)):
        decision = api_client.post(
            "/v1/jobs", json={"name": name, "config": {**val, "keep_best": keep_best}}
        ).json()["decision"]
        seen = [decision]
        while len(seen) < 3:  # the first try's end is measured: a new job's first best model
            report = {**report_for(decision), "val_losses": {str(s): 1.0 for s in decision["eval_at"]}}
            decision = api_client.post(f"/v1/jobs/{name}/windows/{decision['window']}", json=report).json()
            seen.append(decision)
        if keep_best:
            assert any(d.get("keep") == "save" for d in seen), seen
        else:
            assert all("keep" not in d for d in seen)
