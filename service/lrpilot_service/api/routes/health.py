"""Operational endpoints: ``/healthz`` for orchestrators (open), ``/metrics`` for Prometheus.

``/metrics`` needs a token when auth is required (Prometheus sends one with ``authorization``);
``/healthz`` says only "the database answers", so a load balancer can probe it without one.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from lrpilot.protocol import ErrorBody
from lrpilot_service.api.deps import AppMetrics, AuthenticatedCaller, Repository
from lrpilot_service.api.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])
logger = logging.getLogger(__name__)


@router.get("/healthz", responses={503: {"description": "The database does not answer."}})
def healthz(repository: Repository) -> JSONResponse:
    """200 when the database answers; 503 otherwise, so a load balancer stops sending traffic."""
    try:
        repository.ping()
    except Exception as error:  # any driver error means "not healthy", never a 500
        logger.warning("health check failed: %s", error)
        # The driver's message may name hosts and users: it goes to the log, not to the caller.
        return JSONResponse({"status": "unavailable", "database": type(error).__name__}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={code: {"model": ErrorBody} for code in (401, 429, 503)},
)
def metrics(repository: Repository, registry: AppMetrics, _: AuthenticatedCaller) -> PlainTextResponse:
    """Prometheus exposition: every worker's counters summed, job counts from the database."""
    return PlainTextResponse(registry.render(repository), media_type=CONTENT_TYPE)
