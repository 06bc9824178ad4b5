"""Schema upgrades with alembic, driven from code (``lrpilot db upgrade``, ``lrpilot serve``).

The alembic environment ships inside the service as ``lrpilot_service.migrations`` (the checkout
keeps it in the top-level ``migrations/`` folder, mapped into the package by ``pyproject.toml``),
so its location is found from the package rather than from the working directory: an installed
service upgrades its database the same way a checkout does. Concurrent upgrades (several
workers or containers starting at once) are serialised by a lock taken in the same transaction:
an advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite.
"""

from __future__ import annotations

from importlib.resources import files

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
    with write_engine(engine).begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def upgrade(database_url: str | None = None, revision: str = "head") -> None:
    """Upgrade the database at ``database_url`` (or the default one): ``lrpilot db upgrade``."""
    engine = create_db_engine(resolve_database_url(database_url))
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()
