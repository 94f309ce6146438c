"""One AsyncEngine per ledger, tuned per backend so the same queries are safe on both.

SQLite: WAL (readers never block the writer), a busy timeout, and SQLAlchemy emitting BEGIN itself
(the documented aiosqlite recipe) so a write transaction can start with BEGIN IMMEDIATE and hold the
write lock *before* it reads the usage it is about to check.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
LOCKED_RETRIES = 8


def is_sqlite_locked(exc: BaseException) -> bool:
    """SQLite's "database is locked/busy": worth a bounded retry, unlike every other error."""
    if not isinstance(exc, OperationalError):
        return False
    message = str(exc.orig).lower()
    return "database is locked" in message or "database is busy" in message


# SQLSTATE classes worth retrying: serialization failure, deadlock, connection exceptions, shutdown.
_TRANSIENT_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03"}
_CONNECTION_LOST_WORDS = (
    "connection was closed",
    "connection is closed",
    "connection reset",
    "terminating connection",
    "server closed the connection",
    "connection does not exist",
    "connection refused",
    "broken pipe",
    "another operation",  # asyncpg's protocol state after the server dropped it mid-query
    "unexpected connection_lost",
)


def is_transient(exc: BaseException) -> bool:
    """Errors that a fresh connection or a moment's wait can cure: lock contention, lost connections,
    serialization failures. Everything else (constraint violations, bad SQL) is final."""
    if is_sqlite_locked(exc):
        return True
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated or isinstance(exc, InterfaceError):
        return True
    orig = exc.orig
    sqlstate = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "__cause__", None), "sqlstate", None)
    if sqlstate is not None and (sqlstate in _TRANSIENT_SQLSTATES or str(sqlstate).startswith("08")):
        return True
    cause = getattr(orig, "__cause__", None)
    if isinstance(cause, (ConnectionError, TimeoutError)) or type(cause).__name__ in (
        "ConnectionDoesNotExistError",
        "InterfaceError",
        "ConnectionFailureError",
        "AdminShutdownError",
        "CannotConnectNowError",
        "InternalClientError",
    ):
        return True
    message = str(orig).lower()
    return any(word in message for word in _CONNECTION_LOST_WORDS)


def transient_backoff(attempt: int, *, base: float = 0.05, cap: float = 2.0) -> float:
    """Exponential backoff with full jitter, so retrying writers from many tasks spread out."""
    return random.uniform(0, min(cap, base * 2**attempt))


def locked_backoff(attempt: int) -> float:
    return min(2.0, 0.05 * 2**attempt)


def create_ledger_engine(url: URL, connect_args: Mapping[str, Any] | None = None) -> AsyncEngine:
    """`url` must come from normalize_database_url; `connect_args` go to the driver (e.g. server_settings)."""
    args = dict(connect_args or {})
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, args)
    return create_async_engine(url, connect_args=args, pool_pre_ping=True, pool_recycle=1800, hide_parameters=True)


def _sqlite_engine(url: URL, args: dict[str, Any]) -> AsyncEngine:
    assert url.database  # guaranteed by normalize_database_url
    Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    args.setdefault("timeout", SQLITE_BUSY_TIMEOUT_SECONDS)
    engine = create_async_engine(url, connect_args=args, hide_parameters=True)  # no token in a logged error
    busy_ms = int(float(args["timeout"]) * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Stop the driver from issuing its own (deferred) BEGIN; _on_begin issues ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # WAL itself is switched on once per file by enable_sqlite_wal (it persists in the file).
            cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = "IMMEDIATE" if conn.get_execution_options().get("sqlite_begin") == "IMMEDIATE" else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


async def enable_sqlite_wal(engine: AsyncEngine) -> None:
    """Switch the file to WAL once, outside any transaction (SQLite refuses it inside one).

    Several processes opening a fresh file at once can see "database is locked" here without the
    busy handler helping, so this retries a bounded number of times.
    """
    if engine.dialect.name != "sqlite":
        return
    for attempt in range(LOCKED_RETRIES):
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            try:
                cursor = await raw.driver_connection.execute("PRAGMA journal_mode=WAL")
                row = await cursor.fetchone()
                await cursor.close()
            except sqlite3.OperationalError as exc:  # raw driver call: not wrapped by SQLAlchemy
                if "locked" not in str(exc).lower() or attempt == LOCKED_RETRIES - 1:
                    raise
            else:
                if row and str(row[0]).lower() == "wal":
                    return
                log.warning("SQLite kept journal mode %r instead of WAL", row[0] if row else None)
                return
        await asyncio.sleep(locked_backoff(attempt))
