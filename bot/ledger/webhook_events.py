"""Verified Magic Hour events of the bot's own jobs, kept until their job settles.

One row per (project, event type): a duplicate delivery is refused by the key. A process that does not
own the job reads the event from here when PostgreSQL's NOTIFY wakes it. Rows are deleted when their
job settles (in the same transaction, see `transitions.py`) or, for a job that never does, once they are
older than the resume horizon (`prune_webhook_events`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .core import LedgerCore
from .lifecycle import OPEN_STATUSES
from .schema import jobs, webhook_events

PROJECT_EVENTS_CHANNEL = "magic_hour_project_events"
"""PostgreSQL NOTIFY channel: the payload is a project id whose webhook event was just recorded."""


class WebhookEventStore(LedgerCore):
    async def record_webhook_event(self, project_id: str, event_type: str, payload: str) -> bool:
        """Store a verified event of one of the bot's open jobs once; False for a duplicate delivery, or when no
        open job has this project (it settled meanwhile: its events are of no more use). On PostgreSQL a new
        event also NOTIFYs every listening process (sent on commit, so the reader finds the row).

        The job's row is share-locked while the event is written, so a settle (which deletes a job's events in
        its own transaction) runs wholly before or wholly after: an event is never left behind a settled job."""
        moment = self._now()

        async def work(conn: AsyncConnection) -> bool:
            open_job = (
                await conn.execute(
                    select(jobs.c.id)
                    .where(jobs.c.project_id == project_id, jobs.c.status.in_([s.value for s in OPEN_STATUSES]))
                    .with_for_update(read=True)
                )
            ).first()
            if open_job is None:
                return False
            result = await conn.execute(
                self._insert(webhook_events)
                .values(project_id=project_id, event_type=event_type, payload=payload, received_at=moment)
                .on_conflict_do_nothing(index_elements=[webhook_events.c.project_id, webhook_events.c.event_type])
            )
            inserted = bool(result.rowcount)
            if inserted and not self._is_sqlite:
                await conn.execute(select(func.pg_notify(PROJECT_EVENTS_CHANNEL, project_id)))
            return inserted

        return await self._run(work, write=True)

    async def webhook_events_for(self, project_id: str) -> list[tuple[str, str]]:
        """(event type, payload JSON) recorded for a project, oldest first."""

        async def work(conn: AsyncConnection) -> list[tuple[str, str]]:
            rows = await conn.execute(
                select(webhook_events.c.event_type, webhook_events.c.payload)
                .where(webhook_events.c.project_id == project_id)
                .order_by(webhook_events.c.received_at)
            )
            return [(row.event_type, row.payload) for row in rows]

        return await self._run(work, write=False)

    async def prune_webhook_events(self, older_than: datetime) -> int:
        """Forget events received before `older_than` (their job was given up on, or never settled here)."""

        async def work(conn: AsyncConnection) -> int:
            result = await conn.execute(delete(webhook_events).where(webhook_events.c.received_at < older_than))
            return result.rowcount or 0

        return await self._run(work, write=True)

    async def count_webhook_events(self) -> int:
        async def work(conn: AsyncConnection) -> int:
            return int((await conn.execute(select(func.count()).select_from(webhook_events))).scalar_one())

        return await self._run(work, write=False)

    async def listen_for_events(self, on_event: Callable[[str], None], on_lost: Callable[[], None]) -> EventListener:
        """PostgreSQL only: call `on_event(project_id)` whenever any process records an event; `on_lost` once
        the listening connection closes. The connection is the ledger's own, held until `close()`."""
        if self._is_sqlite:
            raise RuntimeError("events are relayed between processes on PostgreSQL only")
        return await EventListener(self._engine, on_event, on_lost).start()


class EventListener:
    """A LISTEN on the ledger's PostgreSQL database for `PROJECT_EVENTS_CHANNEL`."""

    def __init__(self, engine: AsyncEngine, on_event: Callable[[str], None], on_lost: Callable[[], None]) -> None:
        self._engine = engine
        self._on_event = on_event
        self._on_lost = on_lost
        self._conn: Any = None
        self._raw: Any = None
        self.connected = False

    async def start(self) -> EventListener:
        self._conn = await self._engine.connect()
        fairy = await self._conn.get_raw_connection()
        self._raw = fairy.driver_connection
        await self._raw.add_listener(PROJECT_EVENTS_CHANNEL, self._notified)
        self._raw.add_termination_listener(self._terminated)
        self.connected = True
        return self

    def _notified(self, _connection: Any, _pid: int, _channel: str, project_id: str) -> None:
        self._on_event(project_id)

    def _terminated(self, _connection: Any) -> None:
        self.connected = False
        self._on_lost()

    async def close(self) -> None:
        if self._raw is not None and self.connected:
            with contextlib.suppress(Exception):
                await self._raw.remove_listener(PROJECT_EVENTS_CHANNEL, self._notified)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self.connected = False
