"""The `Ledger` facade: one object the rest of the bot holds, made of a part per concern.

- `reservations.py`: holding credits for a request, all or nothing, against the balances
- `transitions.py`: a job's moves through `lifecycle.py`'s table, each moving the balances with it
- `limits.py`: servers' limits, grants, member limits, alert claims
- `reports.py`: usage, top members, history, export, the owner's report, `verify`
- `cleanup.py`: deleting members' results at Magic Hour once delivered
- `webhook_events.py`, `meta.py`: verified events of the bot's jobs; small facts; the health check
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Self

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from .cleanup import Cleanup
from .core import DEFAULT_RETRY_SECONDS, Clock, retry_locked, utcnow
from .engine import create_ledger_engine, enable_sqlite_wal
from .meta import MetaStore
from .migrations import migrate
from .models import LedgerDefaults
from .reports import Reports
from .reservations import Reservations
from .transitions import Transitions
from .urls import normalize_database_url, redact_database_url
from .webhook_events import WebhookEventStore

log = logging.getLogger("bot.ledger")

__all__ = ["Ledger"]


class Ledger(Reservations, Transitions, Reports, Cleanup, WebhookEventStore, MetaStore):
    """Open with `await Ledger.open(url)`; one instance per process is enough (it pools connections)."""

    @classmethod
    async def open(
        cls,
        database_url: str | URL,
        defaults: LedgerDefaults | None = None,
        *,
        connect_args: Mapping[str, Any] | None = None,
        clock: Clock = utcnow,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
    ) -> Self:
        """Connect, create or upgrade the schema, and return a ready ledger.

        `retry_seconds` bounds how long a write after Magic Hour's charge keeps retrying transient faults.
        """
        url = normalize_database_url(database_url)
        engine = create_ledger_engine(url, connect_args)
        try:
            await enable_sqlite_wal(engine)
            applied = await retry_locked(lambda: migrate(engine))
        except BaseException:
            await engine.dispose()
            raise
        if applied:
            log.info("ledger schema migrated to v%s at %s", applied[-1], redact_database_url(url))
        log.info("ledger open at %s", redact_database_url(url))
        return cls(engine, defaults or LedgerDefaults(), clock=clock, retry_seconds=retry_seconds)

    async def close(self) -> None:
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def engine(self) -> AsyncEngine:
        """The raw engine, for tests and tools that inspect tables or inject faults; the bot asks the ledger."""
        return self._engine

    @property
    def shared(self) -> bool:
        """Several processes can share this ledger (PostgreSQL), so events recorded here may be another's."""
        return not self._is_sqlite
