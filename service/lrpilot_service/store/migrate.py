"""Schema upgrades with alembic, driven from code (``lrpilot db upgrade``, ``lrpilot serve``).

The alembic environment ships inside the service as ``lrpilot_service.migrations`` (the checkout
keeps it in the top-level ``migrations/`` folder, mapped into the package by ``pyproject.toml``),
so its location is found from the package rather than from the working directory: an installed
service upgrades its database the same way a checkout does. Concurrent upgrades (several
workers or containers starting at once) are serialised by a lock taken in the same transaction:
an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite.

SQLite alters a table by copying it and dropping the original, and with foreign keys on, that drop
would cascade to every child row (observations, decisions). So, as SQLite's own procedure says, the
upgrade runs with foreign keys off (a setting that only takes effect outside a transaction) and
checks them before it commits.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from lrpilot_service.store.db import create_db_engine, resolve_database_url, write_engine

MIGRATIONS_PACKAGE = "lrpilot_service.migrations"

MIGRATION_LOCK_KEY = 0x6C72_7069_6C6F_74  # "lrpilot": an arbitrary, fixed advisory-lock key


def alembic_config() -> Config:
    """An alembic ``Config`` whose ``script_location`` is the installed migrations package."""
    config = Config()
    config.set_main_option("script_location", str(files(MIGRATIONS_PACKAGE)))
    return config


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` to ``revision`` in one locked transaction."""
    migrate_engine(engine, lambda config: command.upgrade(config, revision))


def migrate_engine(engine: Engine, step: Callable[[Config], None]) -> None:
    """Run an alembic command (upgrade, downgrade) on ``engine`` in one locked transaction."""
    with write_engine(engine).connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        raw: Any = connection.connection.driver_connection
        if sqlite:
            raw.execute("PRAGMA foreign_keys = OFF")  # autocommit mode: no transaction is open yet
        try:
            with connection.begin():
                if not sqlite:
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                config = alembic_config()
                config.attributes["connection"] = connection
                step(config)
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise RuntimeError("the migration left rows whose foreign keys point nowhere")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys = ON")


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """Upgrade the database at ``database_url`` (or the default one): ``lrpilot db upgrade``."""
    engine = create_db_engine(resolve_database_url(database_url))
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()
