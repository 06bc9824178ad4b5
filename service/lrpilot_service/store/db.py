"""Database engines that let several service processes share one database safely.

PostgreSQL needs nothing special: the repository takes row locks (``SELECT ... FOR UPDATE``). SQLite
has no row locks, and its default deferred transactions fail with "database is locked" when two
processes upgrade a read to a write at once. So on SQLite every *write* transaction starts with
``BEGIN IMMEDIATE`` (it takes the write lock up front and waits its turn under the busy timeout),
while read transactions stay deferred and, with WAL, never block writers.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from lrpilot.retry import RetryPolicy

DEFAULT_DATABASE_URL = "sqlite:///lrpilot.db"
"""A SQLite file in the working directory: the embedded default, and the service's."""

WRITE_OPTION = "lrpilot_write"
"""Execution option that marks a connection's transactions as writes (``BEGIN IMMEDIATE``)."""

SQLITE_BUSY_TIMEOUT_S = 30.0
#: A whole transaction is retried this way when it lost a deadlock or a serialization race, or its
#: connection was dropped (a restarted or failed-over server, ``pg_terminate_backend``). Every
#: transaction of the repository is safe to run twice: a report that did commit is found decided.
TRANSACTION_RETRY = RetryPolicy(deadline_s=5.0, first_wait_s=0.01, max_wait_s=0.25)
#: SQLSTATEs a retry cures: serialization failure, deadlock, and a server shutting a session down.
_RETRY_SQLSTATES = frozenset({"40001", "40P01", "57P01", "57P02", "57P03"})
#: Switching a new file to WAL waits out other processes doing the same, up to the busy timeout.
WAL_RETRY = RetryPolicy(deadline_s=SQLITE_BUSY_TIMEOUT_S, first_wait_s=0.005, max_wait_s=0.25)

DEFAULT_POOL_SIZE = 20

T = TypeVar("T")


def resolve_database_url(database_url: str | None = None) -> str:
    """The URL given, else ``$LRPILOT_DATABASE_URL``, else :data:`DEFAULT_DATABASE_URL`."""
    return database_url or os.environ.get("LRPILOT_DATABASE_URL") or DEFAULT_DATABASE_URL


def create_db_engine(database_url: str, pool_size: int = DEFAULT_POOL_SIZE) -> Engine:
    """An engine for ``database_url`` with the locking behaviour described in the module docstring."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        # One connection per worker thread and one for the background sweep: a request never
        # waits for a connection (threads are bounded by the service's LRPILOT_THREADS).
        return create_engine(
            url, pool_pre_ping=True, pool_size=pool_size, max_overflow=4, pool_timeout=10, pool_recycle=1800
        )
    in_memory = url.database in (None, "", ":memory:")
    engine = create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S},
        # One shared connection, or every pooled connection would see its own empty database.
        poolclass=StaticPool if in_memory else None,
    )
    _install_sqlite_hooks(engine, wal=not in_memory)
    return engine


def write_engine(engine: Engine) -> Engine:
    """The same engine (same pool) whose transactions are writes."""
    return engine.execution_options(**{WRITE_OPTION: True})


def _install_sqlite_hooks(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take BEGIN away from the sqlite3 module: SQLAlchemy emits it in _on_begin below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if wal:
            _enable_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _enable_wal(cursor: Any) -> None:
    """Put the file in WAL mode (a persistent setting), waiting out other processes doing the same.

    Changing the journal mode takes an exclusive lock and SQLite does not consult the busy handler
    for it: two services opening a new database at the same moment got "database is locked" in
    ~13% of attempts (measured). So: nothing to do if the file is already WAL, else retry under
    :data:`WAL_RETRY`.
    """

    def switch() -> None:
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            cursor.execute("PRAGMA journal_mode = WAL")

    WAL_RETRY.call(switch, _locked)


def _locked(error: BaseException) -> bool:
    return isinstance(error, sqlite3.OperationalError) and "locked" in str(error)


def is_transient(error: BaseException) -> bool:
    """Failures that a plain retry of the whole transaction cures: deadlock, serialization, busy,
    and a lost connection (the pool then reconnects: ``pool_pre_ping`` tests each checkout)."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in _RETRY_SQLSTATES or (sqlstate or "").startswith("08"):
        return True
    if not isinstance(error, OperationalError):
        return False
    # A connection that could not be opened or broke mid-query has no SQLSTATE (psycopg, sqlite3).
    return sqlstate is None and (
        "database is locked" in str(error.orig) or not isinstance(error.orig, sqlite3.Error)
    )


def retry_transaction(work: Callable[[], T]) -> T:
    """Run ``work`` (one transaction); run it again under TRANSACTION_RETRY if it failed transiently."""
    return TRANSACTION_RETRY.call(work, is_transient)
