"""The service's configuration: one class, read from ``LRPILOT_*`` environment variables.

Keeping every knob in one pydantic-settings class means the CLI, the uvicorn worker factory and
docker-compose all speak the same names (``LRPILOT_DATABASE_URL`` ...), and tests can build a
``Settings`` by hand instead of patching the environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lrpilot_service.store.db import DEFAULT_DATABASE_URL

LogLevel = Literal["critical", "error", "warning", "info", "debug", "trace"]


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
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1, description="Larger request bodies get a 413.")
    workers: int = Field(1, ge=1)
    auth: Literal["required", "off"] | None = Field(None, description="Bearer-token authentication; None: required unless the service binds a loopback address.")
