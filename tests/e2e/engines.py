"""The whole bot on either engine: `database_url` gives None (the bot's SQLite in tmp_path) or a fresh PostgreSQL
database on the TEST_DATABASE_URL server, dropped afterwards (skipped, with the reason, when it is not set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import make_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        pytest.skip("TEST_DATABASE_URL not set: PostgreSQL tests skipped")
    url = make_url(base)
    name = f"bot_e2e_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield url.set(database=name).render_as_string(hide_password=False)
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await admin.close()


def engine_settings(database_url: str | None) -> dict[str, str]:
    """The `bot_world` overrides that point the bot at `database_url` (nothing for SQLite)."""
    return {} if database_url is None else {"DATABASE_URL": database_url}
