"""Small facts the bot keeps between runs (the command hash, the duration estimate, alert flags), and a
health check that answers whether the database does."""

from __future__ import annotations

import asyncio

from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .core import LedgerCore
from .schema import meta

PING_TIMEOUT_SECONDS = 3.0


class MetaStore(LedgerCore):
    async def get_meta(self, key: str) -> str | None:
        async def work(conn: AsyncConnection) -> str | None:
            return (await conn.execute(select(meta.c.value).where(meta.c.key == key))).scalar()

        return await self._run(work, write=False)

    async def set_meta(self, key: str, value: str) -> None:
        moment = self._now()

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(
                self._insert(meta)
                .values(key=key, value=value, updated_at=moment)
                .on_conflict_do_update(index_elements=[meta.c.key], set_={"value": value, "updated_at": moment})
            )

        await self._run(work, write=True)

    async def ping(self) -> None:
        """Raise unless the database answers a trivial query within PING_TIMEOUT_SECONDS."""
        async with asyncio.timeout(PING_TIMEOUT_SECONDS), self._engine.connect() as conn:
            await conn.execute(select(literal(1)))
