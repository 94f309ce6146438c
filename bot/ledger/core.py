"""The ledger's transaction machinery, shared by every part of the `Ledger` facade.

Overspending is prevented by serialising reservations inside the database, so it holds across tasks,
Ledger instances and processes:
- PostgreSQL: row locks (FOR UPDATE) taken in one order by every writer: the bot-wide lock row, then the
  payer's row, then the balance rows sorted by key; a job transition locks its job row, then balances.
- SQLite: BEGIN IMMEDIATE takes the database write lock before anything is read; an asyncio.Lock per
  Ledger queues this process's writers so they wait on the loop rather than in SQLite's busy handler.

Writes made after Magic Hour has charged (submitted, settled, delivered, released) are retried through
transient faults for a bounded time: losing them would leave credits counted wrongly.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .engine import LOCKED_RETRIES, is_sqlite_locked, is_transient, locked_backoff, transient_backoff
from .models import LedgerDefaults
from .periods import as_utc

log = logging.getLogger("bot.ledger")

T = TypeVar("T")
Clock = Callable[[], datetime]
Work = Callable[[AsyncConnection], Awaitable[T]]

DEFAULT_RETRY_SECONDS = 30.0
MAX_CREDITS = 2**31 - 1
"""Credits columns are 32-bit integers: no limit, ceiling or grant may exceed this."""


def utcnow() -> datetime:
    return datetime.now(UTC)


async def retry_locked(operation: Callable[[], Awaitable[T]]) -> T:
    """Run `operation`, retrying a bounded number of times while SQLite reports a lock."""
    for attempt in range(LOCKED_RETRIES):
        try:
            return await operation()
        except OperationalError as exc:
            if not is_sqlite_locked(exc) or attempt == LOCKED_RETRIES - 1:
                raise
            log.warning("ledger database is locked; retrying (%d/%d)", attempt + 1, LOCKED_RETRIES)
            await asyncio.sleep(locked_backoff(attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


class LedgerCore:
    """Engine, clock and transactions; the facade's parts (reservations, transitions, …) build on these."""

    def __init__(
        self,
        engine: AsyncEngine,
        defaults: LedgerDefaults,
        *,
        clock: Clock = utcnow,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
    ) -> None:
        self._engine = engine
        self.defaults = defaults
        self._clock = clock
        self.retry_seconds = retry_seconds
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._insert: Any = sqlite.insert if self._is_sqlite else postgresql.insert
        self._write_lock = asyncio.Lock()

    async def _run(self, work: Work[T], *, write: bool, durable: str | None = None, snapshot: bool = False) -> T:
        """Run `work` in one transaction; `work` must be re-runnable.

        Plain calls retry only SQLite's lock; `durable` calls (named for the log) retry every transient
        fault with backoff for up to `retry_seconds`. A `snapshot` read sees one instant of the database in
        every statement, however many it runs while others write.
        """

        async def once() -> T:
            if write and self._is_sqlite:
                async with self._write_lock:
                    return await self._transaction(work, write=True)
            return await self._transaction(work, write=write, snapshot=snapshot)

        if durable is None:
            return await retry_locked(once)
        return await self._retry_transient(once, durable)

    async def _retry_transient(self, operation: Callable[[], Awaitable[T]], action: str) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_seconds
        attempt = 0
        while True:
            try:
                return await operation()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                delay = transient_backoff(attempt)
                if loop.time() + delay > deadline:
                    log.error("ledger %s still failing after %.0f s; giving up: %s", action, self.retry_seconds, exc)
                    raise
                attempt += 1
                log.warning("ledger %s hit a transient fault (%s); retry %d", action, type(exc).__name__, attempt)
                await asyncio.sleep(delay)

    async def _transaction(self, work: Work[T], *, write: bool, snapshot: bool = False) -> T:
        async with self._engine.connect() as conn:
            if write:
                conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
            elif snapshot and not self._is_sqlite:
                # PostgreSQL's default (READ COMMITTED) gives each statement its own snapshot; SQLite's read
                # transaction already keeps the one it started with (WAL).
                conn = await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            async with conn.begin():
                return await work(conn)

    def now(self) -> datetime:
        """The ledger's clock (a test may set it): what "this period" and "expired" are measured against."""
        return self._now()

    def _now(self, now: datetime | None = None) -> datetime:
        return as_utc(self._clock() if now is None else now)


def chunks(ids: list[Any], size: int = 500) -> Iterable[list[Any]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def check_credits(credits: object, what: str) -> None:
    """A whole number the 32-bit credit columns can hold; a clear ValueError otherwise."""
    if isinstance(credits, bool) or not isinstance(credits, int):
        raise ValueError(f"{what} must be a whole number")
    if credits < 0:
        raise ValueError(f"{what} cannot be negative")
    if credits > MAX_CREDITS:
        raise ValueError(f"{what} cannot be more than {MAX_CREDITS:,} credits")
