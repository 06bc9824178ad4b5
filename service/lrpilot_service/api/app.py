"""The FastAPI application factory.

``create_app`` takes its collaborators as arguments (settings, and optionally an already open
repository) so tests and the embedded mode can build an app without touching the environment;
``create_app_from_env`` is the zero-argument factory uvicorn workers import (``factory=True``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from lrpilot import __version__
from lrpilot_service.api.errors import install_error_handlers
from lrpilot_service.api.limits import BodySizeLimit
from lrpilot_service.api.metrics import Metrics, RequestMetrics
from lrpilot_service.api.routes import dashboard, docs, health, jobs
from lrpilot_service.api.settings import Settings
from lrpilot_service.store import JobRepository, open_repository


def create_app(settings: Settings | None = None, repository: JobRepository | None = None) -> FastAPI:
    """An app serving ``repository``, or one opened (and migrated) from ``settings`` at startup."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if repository is not None:
            yield
            return
        app.state.repository = open_repository(settings.database_url)
        try:
            yield
        finally:
            app.state.repository.close()

    app = FastAPI(
        title="lrpilot",
        summary="Online learning-rate schedule tuner: one report per window of steps, one decision back.",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,  # served by routes/docs.py from local assets
        redoc_url=None,  # ReDoc would load its script from a CDN
    )
    app.state.settings = settings
    app.state.metrics = metrics = Metrics()
    app.state.repository = repository
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(dashboard.router)
    app.include_router(docs.router)
    app.mount("/static", StaticFiles(packages=[("lrpilot_service.api", "static")]), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)
    return app


def create_app_from_env() -> FastAPI:
    """The uvicorn factory: settings from ``LRPILOT_*`` environment variables."""
    return create_app(Settings())
