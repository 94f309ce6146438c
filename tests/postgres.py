"""A throwaway PostgreSQL database on the `TEST_DATABASE_URL` server, for tests that need a whole database.

A child process (`python -m bot`) or a bot built from settings cannot be handed a schema's search_path, so these
tests get a database of their own, created empty and dropped with every connection still open to it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.engine import URL, make_url


def postgres_server_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    return url or None


@contextlib.asynccontextmanager
async def fresh_postgres_database(prefix: str = "bot_test") -> AsyncIterator[URL]:
    """Yield the URL of a new, empty database (driver `postgresql`); skip the test when no server is configured."""
    server = postgres_server_url()
    if server is None:
        pytest.skip("TEST_DATABASE_URL not set: PostgreSQL tests skipped")
    base = make_url(server).set(drivername="postgresql")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base.render_as_string(hide_password=False))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.set(database=name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
