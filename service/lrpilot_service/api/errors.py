"""Turn every failure a client can cause into a 4xx ``ErrorBody`` that says what to fix.

FastAPI's default 422 is a list of dicts meant for machines; a training loop's log line needs a
sentence, e.g. ``body.config: lr_min (0.1) must be smaller than lr_max (0.01)``. Store and engine
errors go through the one map of ``lrpilot_service.errors`` (the embedded transport uses the same
one); 409 for a window conflict also carries ``expected_window``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from lrpilot.errors import WindowConflictError
from lrpilot.protocol import ErrorBody
from lrpilot_service.errors import SERVICE_ERRORS, client_error

_HINTS = {
    "extra_forbidden": "unknown field: remove it or check its spelling",
    "missing": "required field is missing",
    "string_pattern_mismatch": "must start with a letter or digit, then only letters, digits and ._:@/-",
}
_BODY_HINT = "expected a JSON object sent with Content-Type: application/json"
_OBJECT_TYPES = {"missing", "model_type", "model_attributes_type", "dict_type"}
_MAX_INPUT = 60


def error_response(status: int, detail: str, expected_window: int | None = None) -> JSONResponse:
    body = ErrorBody(detail=detail, expected_window=expected_window)
    return JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status)


def describe_validation_errors(errors: Iterable[Mapping[str, Any]]) -> str:
    """One readable sentence per pydantic error, joined with '; '."""
    return "; ".join(_describe(error) for error in errors) or "the request is invalid"


def _describe(error: Mapping[str, Any]) -> str:
    location = ".".join(str(part) for part in error.get("loc", ())) or "request"
    kind = error.get("type", "")
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "malformed JSON")
        return f"body is not valid JSON ({reason} at character {error['loc'][-1]}); send a JSON object"
    if tuple(error.get("loc", ())) == ("body",) and kind in _OBJECT_TYPES:
        return f"body: {_BODY_HINT}"
    message = _HINTS.get(kind) or str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    shown = error.get("input")
    # The offending value helps, except where it is absent or the message already quotes it.
    quoted = kind in ("extra_forbidden", "missing") or kind.startswith("value_error")
    if not quoted and isinstance(shown, str | int | float | bool) and len(repr(shown)) <= _MAX_INPUT:
        message += f" (got {shown!r})"
    return f"{location}: {message}"


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, describe_validation_errors(exc.errors()))


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = "no such route: see /docs for the API (jobs live under /v1/jobs)"
    response = error_response(exc.status_code, detail)
    response.headers.update(exc.headers or {})
    return response


async def _service_error(_: Request, exc: Exception) -> JSONResponse:
    error = client_error(exc)
    expected = error.expected_window if isinstance(error, WindowConflictError) else None
    return error_response(error.status, error.detail, expected_window=expected)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for kind in SERVICE_ERRORS:
        app.add_exception_handler(kind, _service_error)
