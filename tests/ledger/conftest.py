"""One contract suite, two engines: every test taking `backend` or `ledger` runs on SQLite (always)
and on PostgreSQL (when TEST_DATABASE_URL is set), each in a fresh database or schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.ledger import Ledger, LedgerDefaults, normalize_database_url

PG_SKIP_REASON = "TEST_DATABASE_URL not set: PostgreSQL tests skipped"
NOW = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)  # a Saturday in mid-March


@dataclass
class Backend:
    """Where a test's database lives, and how to open more ledgers or raw engines on it."""

    name: str
    url: str
    schema: str | None = None
    _ledgers: list[Ledger] = field(default_factory=list)
    _engines: list[AsyncEngine] = field(default_factory=list)

    @property
    def connect_args(self) -> dict[str, Any]:
        return {"server_settings": {"search_path": self.schema}} if self.schema else {}

    async def open(self, defaults: LedgerDefaults | None = None) -> Ledger:
        ledger = await Ledger.open(self.url, defaults, connect_args=self.connect_args, clock=lambda: NOW)
        self._ledgers.append(ledger)
        return ledger

    def raw_engine(self) -> AsyncEngine:
        """An engine on the same database without the ledger's hooks, for building old schemas by hand."""
        if self.name == "sqlite":
            Path(normalize_database_url(self.url).database or "").parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(normalize_database_url(self.url), connect_args=self.connect_args)
        self._engines.append(engine)
        return engine

    async def aclose(self) -> None:
        for ledger in self._ledgers:
            await ledger.close()
        for engine in self._engines:
            await engine.dispose()


def postgres_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not url:
        pytest.skip(PG_SKIP_REASON)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "sqlite":
        chosen = Backend("sqlite", f"sqlite:///{tmp_path / 'data' / 'ledger.db'}")
        try:
            yield chosen
        finally:
            await chosen.aclose()
        return

    url = postgres_url()
    schema = f"ledger_test_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(normalize_database_url(url))
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        chosen = Backend("postgresql", url, schema)
        try:
            yield chosen
        finally:
            await chosen.aclose()
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()


@pytest.fixture
async def ledger(backend: Backend) -> Ledger:
    return await backend.open(LedgerDefaults(credit_limit=100, period="month", max_credit_limit=1000))
