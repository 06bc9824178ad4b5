"""``lrpilot serve``: upgrade the schema once, then run uvicorn.

Workers are separate processes, so they cannot receive Python objects: uvicorn imports the app
factory by name in each worker, and the settings travel as ``LRPILOT_*`` environment variables.
The schema is upgraded here, before any worker starts, so workers never race to migrate.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

from lrpilot_service.api.settings import Settings
from lrpilot_service.store.migrate import upgrade

APP_FACTORY = "lrpilot_service.api.app:create_app_from_env"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multiprocess mode (api/metrics.py)


def prepare_multiprocess_dir(directory: str) -> None:
    """Point prometheus_client's multiprocess mode at ``directory``, emptied of a previous run's files.

    Must run before any worker imports prometheus_client, which reads the variable at import: so
    this module does not import the metrics module.
    """
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)


def run(
    host: str | None = None,
    port: int | None = None,
    database_url: str | None = None,
    workers: int | None = None,
    log_level: str | None = None,
) -> None:
    """Serve the API; arguments left as ``None`` come from the environment (``Settings``)."""
    given = {
        "host": host,
        "port": port,
        "database_url": database_url,
        "workers": workers,
        "log_level": log_level,
    }
    overrides: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    settings = Settings(**overrides)  # the rest from LRPILOT_* variables, then the defaults
    upgrade(settings.database_url)
    # Every worker writes its metrics where a scrape of any worker reads them all (api/metrics.py).
    prepare_multiprocess_dir(os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="lrpilot-metrics-"))
    os.environ.update(
        {
            "LRPILOT_DATABASE_URL": settings.database_url,
            "LRPILOT_HOST": settings.host,
            "LRPILOT_PORT": str(settings.port),
            "LRPILOT_WORKERS": str(settings.workers),
            "LRPILOT_LOG_LEVEL": settings.log_level,
            "LRPILOT_MAX_BODY_BYTES": str(settings.max_body_bytes),
        }
    )
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
    )
