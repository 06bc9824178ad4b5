"""One map of errors: every refusal reads the same over HTTP and through the embedded transport.

For each kind of store or engine failure, the HTTP status and body the API answers must decode
(through the client's ``error_from_status``) to the very exception class, status, detail and
expected window that the embedded transport raises for the same request.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lrpilot import LrpilotError, embedded_transport
from lrpilot.errors import WindowConflictError, error_from_status
from lrpilot.protocol import JobCreate, TunerConfig, WindowReport
from lrpilot_service.errors import ERROR_MAP

CONFIG = TunerConfig(total_steps=100)

HEADERS = {"X-Lrpilot-Tenant": "t"}
REPORT = {"start_step": 0, "losses": [1.0]}

# case: (what the embedded transport is asked, the same request over HTTP as method, path, body)
CASES: dict[str, tuple[Callable[[Any], object], tuple[str, str, dict[str, Any] | None]]] = {
    "job not found": (lambda t: t.schedule("nope"), ("GET", "/v1/jobs/nope/schedule", None)),
    "job conflict": (
        lambda t: t.create_or_attach(JobCreate(name="job", config=TunerConfig(total_steps=200))),
        ("POST", "/v1/jobs", {"name": "job", "config": {"total_steps": 200}}),
    ),
    "window conflict": (
        lambda t: t.report_window("job", 7, WindowReport.model_validate(REPORT)),
        ("POST", "/v1/jobs/job/windows/7", REPORT),
    ),
    "report rejected": (
        lambda t: t.report_window("job", 0, WindowReport(start_step=3, losses=[1.0])),
        ("POST", "/v1/jobs/job/windows/0", {**REPORT, "start_step": 3}),
    ),
}


def _facts(error: LrpilotError) -> tuple[type, int, str, int | None]:
    expected = error.expected_window if isinstance(error, WindowConflictError) else None
    return type(error), error.status, error.detail, expected


@pytest.mark.parametrize("case", sorted(CASES))
def test_http_and_embedded_refuse_alike(case: str, tmp_path: Path, api_client: Any) -> None:
    embedded = embedded_transport(f"sqlite:///{tmp_path / 'embedded.db'}", tenant="t")
    embedded.create_or_attach(JobCreate(name="job", config=CONFIG))
    api_client.post("/v1/jobs", json={"name": "job", "config": CONFIG.model_dump()}, headers=HEADERS)
    ask_embedded, (method, path, body) = CASES[case]
    with pytest.raises(LrpilotError) as raised:
        ask_embedded(embedded)
    embedded.close()
    response = api_client.request(method, path, json=body, headers=HEADERS)
    answer = response.json()
    decoded = error_from_status(response.status_code, answer["detail"], answer.get("expected_window"))
    assert _facts(decoded) == _facts(raised.value)


def test_every_mapped_error_has_a_distinct_client_class() -> None:
    # two service errors may share a status, never a client class (the class is what callers catch)
    assert len(set(ERROR_MAP.values())) == len(ERROR_MAP)
