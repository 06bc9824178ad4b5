"""schemathesis against /openapi.json: every operation, with and without a token, a bounded number of
generated requests each. No request may get a 5xx, and every response must match the schema
(its status code declared, its body valid): 400, 401, 403, 404, 409, 413, 422, 429 included.

The app runs with auth required on a SQLite file, with a job already there so that generated names
sometimes hit it; the rate limit is out of the way (it is tested in test_auth.py).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from lrpilot.protocol import JobCreate, TunerConfig
from lrpilot_service.api.app import create_app
from lrpilot_service.api.settings import Settings
from lrpilot_service.store import open_repository

EXAMPLES = 12
_ROOT = Path(tempfile.mkdtemp(prefix="lrpilot-fuzz-"))
_REPOSITORY = open_repository(f"sqlite:///{_ROOT / 'fuzz.db'}")
_TOKEN = _REPOSITORY.access.create_token("fuzz", admin=True).token
_REPOSITORY.create_or_attach(
    "fuzz", JobCreate(name="run", config=TunerConfig(total_steps=1000, search="space_filling"))
)
_SETTINGS = Settings(auth="required", warm_engine=False, rate_limit_per_s=1e6, rate_limit_burst=10**6)
APP = create_app(_SETTINGS, repository=_REPOSITORY)
AUTH = {"Authorization": f"Bearer {_TOKEN}"}

schema = schemathesis.openapi.from_asgi("/openapi.json", APP, headers=AUTH)
CHECKS = [schemathesis.checks.not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(params=["with token", "without token"])
def headers(request: pytest.FixtureRequest) -> dict[str, str]:
    return AUTH if request.param == "with token" else {}


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_operation_answers_5xx_or_off_schema(case: schemathesis.Case, headers: dict[str, str]) -> None:
    case.call_and_validate(headers=headers, checks=CHECKS)
