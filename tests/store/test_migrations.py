"""The alembic environment: upgrades an empty database, matches the models, works from anywhere."""

from __future__ import annotations

import multiprocessing
import os
import traceback
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

import lrpilot_service.migrations as migrations
from lrpilot_service.store.db import create_db_engine
from lrpilot_service.store.migrate import alembic_config, upgrade, upgrade_engine
from lrpilot_service.store.models import Base

TABLES = {"tenants", "jobs", "observations", "decisions"}


def test_upgrade_creates_the_schema_and_matches_the_models(database_url: str) -> None:
    upgrade(database_url)
    upgrade(database_url)  # a second upgrade is a no-op, not an error
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert (
                context.get_current_revision()
                == ScriptDirectory.from_config(alembic_config()).get_current_head()
            )
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_back(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        upgrade_engine(engine)
        with engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        with engine.connect() as connection:
            assert not TABLES & set(inspect(connection).get_table_names())
        upgrade_engine(engine)
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) >= TABLES
    finally:
        engine.dispose()


def test_script_location_comes_from_the_package_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    package_dir = Path(migrations.__file__).resolve().parent
    assert Path(alembic_config().get_main_option("script_location") or "") == package_dir
    by_hand = Config(str(package_dir / "alembic.ini"))
    heads = {ScriptDirectory.from_config(config).get_current_head() for config in (by_hand, alembic_config())}
    assert heads == {"0002"}
    upgrade(f"sqlite:///{tmp_path / 'elsewhere.db'}")
    assert (tmp_path / "elsewhere.db").exists()


def _upgrade_in_child(url: str) -> None:
    try:
        upgrade(url)
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    os._exit(0)


def test_concurrent_first_upgrades_of_one_sqlite_file_all_succeed(tmp_path: Path) -> None:
    # Two services starting together on a new SQLite file race to switch it to WAL; SQLite does not
    # wait on its busy handler for that, which once failed ~13% of such starts.
    context = multiprocessing.get_context("fork")
    for round_ in range(12):
        url = f"sqlite:///{tmp_path / f'race{round_}.db'}"
        children = [context.Process(target=_upgrade_in_child, args=(url,)) for _ in range(2)]
        for child in children:
            child.start()
        for child in children:
            child.join(60)
        assert [c.exitcode for c in children] == [0, 0], f"round {round_}: a concurrent upgrade failed"


def test_upgrade_from_0001_keeps_every_row_moves_states_and_renames_bad_names(database_url: str) -> None:
    import json

    from sqlalchemy import text

    engine = create_db_engine(database_url)
    try:
        upgrade_engine(engine, "0001")
        state = {"version": 1, "window": 2, "stages": [{"stage": 0}], "recent_losses": [1.5, 2.5]}
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO tenants (id, name) VALUES (1, 't')"))
            for job_id, name in ((1, "team/run"), (2, "team:run"), (3, "a..b")):
                connection.execute(
                    text(
                        "INSERT INTO jobs (id, tenant_id, name, config, state, state_version, status, "
                        "awaited_window, steps_reported) "
                        "VALUES (:id, 1, :name, '{}', :state, 1, 'running', 2, 3)"
                    ),
                    {"id": job_id, "name": name, "state": json.dumps(state)},
                )
                connection.execute(
                    text(
                        "INSERT INTO observations (job_id, step, window_index, loss) VALUES (:id, 0, 0, 1.0)"
                    ),
                    {"id": job_id},
                )
                connection.execute(
                    text("INSERT INTO decisions (job_id, window_index, decision) VALUES (:id, 0, '{}')"),
                    {"id": job_id},
                )
        upgrade_engine(engine)
        with engine.connect() as connection:
            names = dict(connection.execute(text("SELECT id, name FROM jobs")).all())
            counts = [
                connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("observations", "decisions")
            ]
            moved = dict(connection.execute(text("SELECT key, value FROM job_states WHERE job_id = 1")).all())
        assert names == {1: "team:run-1", 2: "team:run", 3: "a.b"}  # taken names get their id
        assert counts == [3, 3]  # SQLite's table copy must not cascade-delete the children
        assert {key: json.loads(v) if isinstance(v, str) else v for key, v in moved.items()} == state
        with engine.begin() as connection:  # the new statuses are allowed
            connection.execute(text("UPDATE jobs SET status = 'stale' WHERE id = 1"))
    finally:
        engine.dispose()
