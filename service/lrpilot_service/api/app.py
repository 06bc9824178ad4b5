"""The FastAPI application factory.

``create_app`` takes its collaborators as arguments (settings, and optionally an already open
repository) so tests and the embedded mode can build an app without touching the environment;
``create_app_from_env`` is the zero-argument factory uvicorn workers import (``factory=True``).

At start-up a worker sizes its thread pool (and, with it, its database pool: a request never
waits for a connection), runs one engine decision so the first client does not pay the engine's
imports (~2 s measured), and starts the stale sweep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import Depends, FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from lrpilot import __version__
from lrpilot_service.api.deps import authenticated_caller
from lrpilot_service.api.errors import install_error_handlers
from lrpilot_service.api.limits import BodySizeLimit, InflightLimit
from lrpilot_service.api.metrics import Metrics, RequestMetrics
from lrpilot_service.api.ratelimit import RateLimiter
from lrpilot_service.api.routes import admin, dashboard, docs, health, jobs, login
from lrpilot_service.api.settings import Settings
from lrpilot_service.api.warmup import warm_engine
from lrpilot_service.store import JobRepository, open_repository

logger = logging.getLogger(__name__)
#: The stale sweep runs this often (at most), so a job turns stale within ~1/4 of stale_after_s.
SWEEP_SHARE = 0.25
MAX_SWEEP_INTERVAL_S = 60.0


def create_app(settings: Settings | None = None, repository: JobRepository | None = None) -> FastAPI:
    """An app serving ``repository``, or one opened (and migrated) from ``settings`` at startup."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        own = repository is None
        if own:
            # One connection per worker thread, plus the sweep's: nobody waits for the pool.
            app.state.repository = open_repository(settings.database_url, pool_size=settings.threads + 1)
        if settings.warm_engine:
            await anyio.to_thread.run_sync(warm_engine)
        sweep = asyncio.create_task(_sweep_stale(app.state.repository, settings.stale_after_s))
        try:
            yield
        finally:
            sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweep
            if own:
                app.state.repository.close()

    protect = [Depends(authenticated_caller)]
    app = FastAPI(
        title="lrpilot",
        summary="Online learning-rate schedule tuner: one report per window of steps, one decision back.",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by routes/docs.py from local assets, behind the token
        redoc_url=None,  # ReDoc would load its script from a CDN
        openapi_url=None,  # served below, behind the token
    )
    app.state.settings = settings
    app.state.metrics = metrics = Metrics()
    app.state.repository = repository
    app.state.rate_limiter = RateLimiter(settings.rate_limit_per_s, settings.rate_limit_burst)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(admin.router)
    app.include_router(login.router)
    app.include_router(dashboard.router)
    app.include_router(docs.router, dependencies=protect)
    app.mount("/static", StaticFiles(packages=[("lrpilot_service.api", "static")]), name="static")

    @app.get(docs.OPENAPI_URL, include_in_schema=False, dependencies=protect)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, body_timeout_s=settings.body_timeout_s
    )
    app.add_middleware(InflightLimit, max_inflight=settings.max_inflight)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def create_app_from_env() -> FastAPI:
    """The uvicorn factory: settings from ``LRPILOT_*`` environment variables."""
    return create_app(Settings())


async def _sweep_stale(repository: JobRepository, stale_after_s: float) -> None:
    """Mark jobs stale now and then; any number of workers may do it (the update is idempotent)."""
    interval = min(MAX_SWEEP_INTERVAL_S, stale_after_s * SWEEP_SHARE)
    while True:
        try:
            marked = await anyio.to_thread.run_sync(repository.mark_stale, stale_after_s)
            if marked:
                logger.info("marked %d job(s) stale (no report for %gs)", marked, stale_after_s)
        except Exception as error:  # a database hiccup must not end the sweep
            logger.warning("stale sweep failed: %s", error)
        await asyncio.sleep(interval)
