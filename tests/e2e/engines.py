"""The whole bot on either engine: `database_url` gives None (the bot's SQLite in tmp_path) or a fresh PostgreSQL
database on the TEST_DATABASE_URL server, dropped afterwards (skipped, with the reason, when it is not set)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.postgres import fresh_postgres_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    if request.param == "sqlite":
        yield None
        return
    async with fresh_postgres_database("bot_e2e") as url:
        yield url.render_as_string(hide_password=False)


def engine_settings(database_url: str | None) -> dict[str, str]:
    """The `bot_world` overrides that point the bot at `database_url` (nothing for SQLite)."""
    return {} if database_url is None else {"DATABASE_URL": database_url}
