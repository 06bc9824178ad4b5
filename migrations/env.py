"""Alembic environment for the lrpilot job store.

Run in two ways: from code (``lrpilot_service.store.migrate``), which hands over an open
connection in ``config.attributes["connection"]`` inside its own locked transaction; or by hand
with ``alembic -c migrations/alembic.ini``, which connects to ``sqlalchemy.url`` or
``$LRPILOT_DATABASE_URL``. Logging is left alone so the service's own configuration stands.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from lrpilot_service.store.db import create_db_engine, resolve_database_url
from lrpilot_service.store.models import Base

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    return resolve_database_url(config.get_main_option("sqlalchemy.url"))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later migrations go through batch (copy-and-move) mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_db_engine(_database_url())
    try:
        with engine.connect() as fresh:
            _run(fresh)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
