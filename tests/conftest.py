"""Shared fixtures: a fresh database per test, on SQLite and (when reachable) PostgreSQL.

PostgreSQL tests create their own database (``lrpilot_t_<uuid>``) and drop it afterwards, so they
can run in parallel with anything else on the server. Where no server answers they are skipped,
unless ``LRPILOT_REQUIRE_POSTGRES=1`` (CI), where a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

ADMIN_URL = os.environ.get("LRPILOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_admin_engine: Engine | None = None
_admin_error: str | None = None


def _postgres_admin() -> Engine:
    """An AUTOCOMMIT engine on the admin database; skip (or fail) at once if the server is down."""
    global _admin_engine, _admin_error
    if _admin_error is not None:
        _unavailable(_admin_error)
    if _admin_engine is None:
        engine = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except OperationalError as error:
            _admin_error = str(error).splitlines()[0]
            _unavailable(_admin_error)
        _admin_engine = engine
    return _admin_engine


def _unavailable(reason: str) -> NoReturn:
    message = (
        f"PostgreSQL at {make_url(ADMIN_URL).render_as_string(hide_password=True)} unreachable: {reason}"
    )
    if os.environ.get("LRPILOT_REQUIRE_POSTGRES") == "1":
        pytest.fail(message + " (LRPILOT_REQUIRE_POSTGRES=1; start it or set LRPILOT_TEST_POSTGRES_URL)")
    pytest.skip(message)


def _postgres_database() -> Iterator[str]:
    admin = _postgres_admin()
    name = f"lrpilot_t_{uuid.uuid4().hex[:16]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of an empty database (no schema yet) that disappears after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'lrpilot.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def repository(database_url: str) -> Iterator[Any]:
    """An open, migrated ``JobRepository`` on the test database."""
    from lrpilot_service.store import open_repository

    repo = open_repository(database_url)
    try:
        yield repo
    finally:
        repo.close()


@pytest.fixture
def db_rows() -> Callable[[Any], dict[str, list[tuple[Any, ...]]]]:
    """Every row of every table, to assert that a refused request changed nothing."""
    from lrpilot_service.store.models import Base

    def rows(repo: Any) -> dict[str, list[tuple[Any, ...]]]:
        with repo.engine.connect() as connection:
            return {
                table.name: sorted(tuple(row) for row in connection.execute(table.select()))
                for table in Base.metadata.sorted_tables
            }

    return rows


@pytest.fixture
def api_client(repository: Any) -> Iterator[Any]:
    """A TestClient on an app serving the test repository (64 KiB body limit)."""
    import warnings

    from lrpilot_service.api.app import create_app
    from lrpilot_service.api.settings import Settings

    with warnings.catch_warnings():  # starlette 1.x nags about httpx; the client works the same
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    app = create_app(Settings(max_body_bytes=64 * 1024), repository=repository)
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client
