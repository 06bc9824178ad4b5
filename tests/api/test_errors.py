"""Every bad request is a 4xx ``ErrorBody`` whose detail says what to fix, and changes nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from lrpilot.protocol import ErrorBody
from tests.plans import CLASSIC_PLAN

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

CONFIG = {"total_steps": 2000, "search": "space_filling", **CLASSIC_PLAN}
LIMIT = 64 * 1024  # the api_client fixture's max_body_bytes
JSON = {"content-type": "application/json"}
W1 = "/v1/jobs/run/windows/1"


def _chunks(total: int) -> Iterator[bytes]:
    for _ in range(total // 4096 + 1):
        yield b" " * 4096


# (method, path, request kwargs, status, text the detail must contain)
CASES: list[tuple[str, str, dict[str, Any], int, str]] = [
    (
        "POST",
        "/v1/jobs",
        {"json": {"name": "x", "config": {"lr_min": 0.1, "lr_max": 0.01}}},
        422,
        "body.config: lr_min (0.1) must be smaller than lr_max (0.01)",
    ),
    (
        "POST",
        "/v1/jobs",
        {"json": {"name": "x", "config": {"keep_best": True}}},
        422,
        "body.config: keep_best needs objective='val' (pass a val_fn)",
    ),
    ("POST", "/v1/jobs", {"json": {"name": "bad name"}}, 422, "body.name: must start with a letter"),
    (
        "POST",
        "/v1/jobs",
        {"json": {"name": "x", "config": {"lr_max": "big"}}},
        422,
        "body.config.lr_max: Input should be a valid number",
    ),
    (
        "POST",
        "/v1/jobs",
        {"json": {"name": "x", "config": {"total_steps": -5}}},
        422,
        "body.config.total_steps",
    ),
    ("POST", "/v1/jobs", {"json": {"name": "x", "colour": 1}}, 422, "body.colour: unknown field"),
    (
        "POST",
        "/v1/jobs",
        {"json": {"name": "x", "config": {"learning_rate": 1}}},
        422,
        "body.config.learning_rate: unknown field",
    ),
    ("POST", "/v1/jobs", {"json": {"config": CONFIG}}, 422, "body.name: required field is missing"),
    ("POST", "/v1/jobs", {"content": b"{oops", "headers": JSON}, 422, "body is not valid JSON"),
    ("POST", "/v1/jobs", {}, 422, "body: expected a JSON object"),
    ("POST", "/v1/jobs", {"json": [1, 2]}, 422, "body: expected a JSON object"),
    (
        "POST",
        "/v1/jobs",
        {"json": {"name": "run", "config": {**CONFIG, "seed": 7}}},
        409,
        "seed: stored 0, given 7",
    ),
    (
        "POST",
        W1,
        {"json": {"start_step": -3, "losses": [1.0]}},
        422,
        "body.start_step: Input should be greater",
    ),
    ("POST", W1, {"json": {"start_step": 10, "losses": [1.0, "abc"]}}, 422, "body.losses.1"),
    ("POST", W1, {"json": {"start_step": 10, "losses": [{"a": 1}]}}, 422, "body.losses.0"),
    (
        "POST",
        W1,
        {"json": {"start_step": 10, "losses": [1.0] * 500}},
        422,
        "planned 10 steps but the report has 500",
    ),
    ("POST", W1, {"json": {"start_step": 3, "losses": [1.0]}}, 422, "starts at step 10"),
    (
        "POST",
        W1,
        {"json": {"start_step": 10, "losses": [1.0], "grad_norms": [1.0, 2.0]}},
        422,
        "grad_norms has 2",
    ),
    ("POST", W1, {"json": {"start_step": 10, "losses": [1.0], "val_losses": {"-1": 1.0}}}, 422, "val_losses"),
    ("POST", W1, {"json": {"start_step": 10, "loss": [1.0]}}, 422, "body.loss: unknown field"),
    (
        "POST",
        W1,
        {"json": {"start_step": 10, "losses": [1.0]}, "headers": {"X-Lrpilot-Tenant": "-x"}},
        422,
        "header.X-Lrpilot-Tenant",
    ),
    ("POST", "/v1/jobs/run/windows/-1", {"json": {"start_step": 0, "losses": [1.0]}}, 422, "path.window"),
    ("POST", "/v1/jobs/run/windows/abc", {"json": {"start_step": 0, "losses": [1.0]}}, 422, "path.window"),
    (
        "POST",
        "/v1/jobs/run/windows/7",
        {"json": {"start_step": 10, "losses": [1.0]}},
        409,
        "expects the report of window 1, not window 7",
    ),
    (
        "POST",
        "/v1/jobs/ghost/windows/0",
        {"json": {"start_step": 0, "losses": [1.0]}},
        404,
        "no job named 'ghost'",
    ),
    ("GET", "/v1/jobs/ghost", {}, 404, "no job named 'ghost'"),
    ("GET", "/v1/jobs/ghost/schedule", {}, 404, "no job named 'ghost'"),
    ("DELETE", "/v1/jobs/ghost", {}, 404, "no job named 'ghost'"),
    ("GET", "/v1/jobs/" + "a" * 300, {}, 422, "path.job"),
    ("GET", "/v2/anything", {}, 404, "no such route"),
    ("PUT", "/v1/jobs", {}, 405, "Method Not Allowed"),
    ("POST", W1, {"content": b" " * (LIMIT + 1), "headers": JSON}, 413, f"over the limit of {LIMIT}"),
    ("POST", W1, {"content": _chunks(LIMIT), "headers": JSON}, 413, f"over the limit of {LIMIT}"),
]


def test_bad_requests_get_clear_4xx_and_change_nothing(
    api_client: TestClient, db_rows: Callable[[Any], dict[str, list[tuple[Any, ...]]]]
) -> None:
    decision = api_client.post("/v1/jobs", json={"name": "run", "config": CONFIG}).json()["decision"]
    report = {"start_step": 0, "losses": [1.0] * decision["steps"]}
    assert api_client.post("/v1/jobs/run/windows/0", json=report).status_code == 200
    repository = api_client.app.state.repository  # type: ignore[attr-defined]
    before = db_rows(repository)
    failures = []
    for method, path, kwargs, status, text in CASES:
        if hasattr(kwargs.get("content"), "__next__"):
            kwargs = {**kwargs, "content": _chunks(LIMIT)}  # a fresh generator per database
        response = api_client.request(method, path, **kwargs)
        detail = ErrorBody.model_validate(response.json()).detail if response.content else ""
        if response.status_code != status or text not in detail:
            failures.append(f"{method} {path}: {response.status_code} {response.text[:300]}")
    assert not failures, "\n".join(failures)
    assert db_rows(repository) == before


def test_conflict_body_carries_the_expected_window(api_client: TestClient) -> None:
    api_client.post("/v1/jobs", json={"name": "run", "config": CONFIG})
    response = api_client.post("/v1/jobs/run/windows/3", json={"start_step": 0, "losses": [1.0]})
    assert response.status_code == 409 and response.json()["expected_window"] == 0


@pytest.mark.parametrize("size", [LIMIT - 200, LIMIT + 1])
def test_body_limit_is_exact_about_the_boundary(api_client: TestClient, size: int) -> None:
    api_client.post("/v1/jobs", json={"name": "run", "config": CONFIG})
    body = b'{"start_step": 0, "losses": [1.0]}'
    padded = body[:-1] + b" " * (size - len(body)) + b"}"
    response = api_client.post("/v1/jobs/run/windows/0", content=padded, headers=JSON)
    assert response.status_code == (200 if size <= LIMIT else 413), response.text
