"""The service's configuration: one class, read from ``LRPILOT_*`` environment variables.

Keeping every knob in one pydantic-settings class means the CLI, the uvicorn worker factory and
docker-compose all speak the same names (``LRPILOT_DATABASE_URL`` ...), and tests can build a
``Settings`` by hand instead of patching the environment.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lrpilot_service.store.db import DEFAULT_DATABASE_URL

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
"""A maximal report (10,000 steps of loss, gradient norm, LR and validation loss) is ~1.2 MB."""


class Settings(BaseSettings):
    """Settings of one service process (every uvicorn worker reads the same environment)."""

    model_config = SettingsConfigDict(env_prefix="LRPILOT_", extra="ignore")

    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy URL; a SQLite file in the working directory unless told otherwise.",
    )
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    log_level: LogLevel = "info"
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1, description="Larger request bodies get a 413.")
    workers: int = Field(1, ge=1)
    auth: Literal["required", "off"] | None = Field(
        None,
        description="Bearer-token authentication; None: required unless the service binds a "
        "loopback address.",
    )
    # Lifecycle and quotas.
    stale_after_s: float = Field(3600.0, gt=0, description="A running job with no report this long is stale.")
    max_jobs_per_tenant: int | None = Field(
        10_000, ge=0, description="Job quota of a tenant without its own."
    )
    # Backpressure: per token, per worker process.
    rate_limit_per_s: float = Field(50.0, gt=0, description="Sustained requests per second per token.")
    rate_limit_burst: int = Field(200, ge=1, description="Requests a token may send at once.")
    max_inflight: int = Field(64, ge=1, description="Requests a worker holds at once; beyond, 503.")
    threads: int = Field(
        16, ge=1, le=256, description="Worker threads (and database connections) per process."
    )
    # Slow clients.
    header_timeout_s: float = Field(10.0, gt=0, description="Time a client has to send its request headers.")
    body_timeout_s: float = Field(30.0, gt=0, description="Time a client has to send its request body.")
    keep_alive_s: int = Field(5, ge=1, description="Idle keep-alive connections are closed after this.")
    warm_engine: bool = Field(True, description="Run one engine decision at start-up (imports, caches).")

    @property
    def auth_required(self) -> bool:
        """``auth`` resolved: unset means required unless the service binds a loopback address."""
        if self.auth is not None:
            return self.auth == "required"
        return not is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
