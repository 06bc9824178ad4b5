"""Turn every failure into an ``ErrorBody`` (JSON, 4xx or 5xx alike) that says what to fix.

FastAPI's default 422 is a list of dicts meant for machines; a training loop's log line needs a
sentence, e.g. ``body.config: lr_min (0.1) must be smaller than lr_max (0.01)``. Store and engine
errors go through the one map of ``lrpilot_service.errors`` (the embedded transport uses the same
one); 409 for a window conflict also carries ``expected_window``; 429 and 503 carry
``Retry-After``; 401 carries ``WWW-Authenticate`` (and a browser asking for a page is sent to the
login form instead). Anything unforeseen is a JSON 500 whose detail names no internals: the
traceback goes to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from lrpilot.bounds import CONFIG_RANGES, NAME_HINT, range_text
from lrpilot.errors import AuthenticationError, LrpilotError, ServiceUnavailableError, WindowConflictError
from lrpilot.protocol import ErrorBody
from lrpilot_service.api.ratelimit import retry_after_header
from lrpilot_service.errors import SERVICE_ERRORS, client_error

logger = logging.getLogger(__name__)

_HINTS = {
    "extra_forbidden": "unknown field: remove it or check its spelling",
    "missing": "required field is missing",
    "string_pattern_mismatch": NAME_HINT,
}
_RANGE_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_BODY_HINT = "expected a JSON object sent with Content-Type: application/json"
_OBJECT_TYPES = {"missing", "model_type", "model_attributes_type", "dict_type"}
_MAX_INPUT = 60


def error_response(
    status: int, detail: str, expected_window: int | None = None, retry_after_s: float | None = None
) -> JSONResponse:
    body = ErrorBody(detail=detail, expected_window=expected_window, retry_after_s=retry_after_s)
    response = JSONResponse(body.model_dump(mode="json", exclude_none=True), status_code=status)
    if retry_after_s is not None:
        response.headers["Retry-After"] = retry_after_header(retry_after_s)
    return response


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
    field = str(error.get("loc", ("",))[-1])
    if kind in _RANGE_ERRORS and field in CONFIG_RANGES:
        message = f"must lie in {range_text(field)}"
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


async def _service_error(request: Request, exc: Exception) -> Response:
    return _client_error(request, client_error(exc))


async def _raised_client_error(request: Request, exc: Exception) -> Response:
    """A client error class raised by the API itself (the rate limit): it carries its status."""
    assert isinstance(exc, LrpilotError)
    return _client_error(request, exc)


def _client_error(request: Request, error: LrpilotError) -> Response:
    if isinstance(error, AuthenticationError) and _wants_page(request):
        return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}", status_code=303)
    expected = error.expected_window if isinstance(error, WindowConflictError) else None
    retry_after = error.retry_after_s if isinstance(error, ServiceUnavailableError) else None
    response = error_response(error.status, error.detail, expected_window=expected, retry_after_s=retry_after)
    if isinstance(error, AuthenticationError):
        response.headers["WWW-Authenticate"] = 'Bearer realm="lrpilot"'
    return response


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal error in the lrpilot service; it is in the service's log")


def _wants_page(request: Request) -> bool:
    """A browser navigating (GET, HTML accepted): it gets the login form rather than a 401 body."""
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(LrpilotError, _raised_client_error)
    for kind in SERVICE_ERRORS:
        app.add_exception_handler(kind, _service_error)
    app.add_exception_handler(Exception, _unexpected_error)
