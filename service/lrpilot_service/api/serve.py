"""``lrpilot serve``: upgrade the schema once, then run uvicorn.

Workers are separate processes, so they cannot receive Python objects: uvicorn imports the app
factory by name in each worker, and the settings travel as ``LRPILOT_*`` environment variables.
The schema is upgraded here, before any worker starts, so workers never race to migrate.

Slow clients are bounded at every stage: request headers within ``header_timeout_s`` (the h11
protocol of :mod:`lrpilot_service.api.http_protocol`), the body within ``body_timeout_s``
(:mod:`lrpilot_service.api.limits`), idle keep-alive connections closed after ``keep_alive_s``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import uvicorn

from lrpilot_service.api.http_protocol import HEADER_TIMEOUT_ENV, PROTOCOL_PATH
from lrpilot_service.api.settings import Settings
from lrpilot_service.store.migrate import upgrade

APP_FACTORY = "lrpilot_service.api.app:create_app_from_env"
logger = logging.getLogger(__name__)
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
    auth: str | None = None,
) -> None:
    """Serve the API; arguments left as ``None`` come from the environment (``Settings``)."""
    given = {
        "host": host,
        "port": port,
        "database_url": database_url,
        "workers": workers,
        "log_level": log_level,
        "auth": auth,
    }
    overrides: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    settings = Settings(**overrides)  # the rest from LRPILOT_* variables, then the defaults
    upgrade(settings.database_url)
    # Every worker writes its metrics where a scrape of any worker reads them all (api/metrics.py).
    prepare_multiprocess_dir(os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="lrpilot-metrics-"))
    # Every setting, resolved, for the workers (auth too: a worker must not re-guess it).
    os.environ.update(
        {
            f"LRPILOT_{name.upper()}": str(value)
            for name, value in settings.model_dump().items()
            if value is not None
        }
    )
    os.environ["LRPILOT_AUTH"] = "required" if settings.auth_required else "off"
    os.environ[HEADER_TIMEOUT_ENV] = str(settings.header_timeout_s)
    if not settings.auth_required:
        logging.getLogger("uvicorn.error").warning(
            "lrpilot: authentication is off (LRPILOT_AUTH=off, or a loopback address): any local "
            "process may read and change every tenant's jobs"
        )
    uvicorn.run(
        APP_FACTORY,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        http=PROTOCOL_PATH,
        timeout_keep_alive=settings.keep_alive_s,
        # Headers bigger than this are refused by h11 before they are buffered whole.
        h11_max_incomplete_event_size=16 * 1024,
    )
