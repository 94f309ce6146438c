"""Fixtures: a fake Magic Hour on 127.0.0.1 and a client wired to it with an instant, shared clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from bot.magic_hour import AsyncClient, RetryPolicy
from tests.fakes.magic_hour import FakeClock, FakeMagicHour

TOKEN = "mhk_live_s3cr3t_t0ken_for_tests"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fake(clock: FakeClock) -> AsyncIterator[FakeMagicHour]:
    """The fake runs on the same manual clock as the client, so job progress and polling are instant."""
    async with FakeMagicHour(token=TOKEN, clock=clock) as server:
        yield server
        # Every request the client made, and every answer the fake gave, must match the OpenAPI spec.
        assert server.violations == []


@pytest.fixture
async def make_client(fake: FakeMagicHour, clock: FakeClock) -> AsyncIterator[Callable[..., AsyncClient]]:
    """Build clients against the fake (instant sleep and clock); all are closed after the test."""
    made: list[AsyncClient] = []

    def build(**options: Any) -> AsyncClient:
        options.setdefault("base_url", fake.base_url)
        options.setdefault("retry", RetryPolicy(max_retries=3, base_delay=0.5, max_delay=8.0, max_retry_after=30.0))
        options.setdefault("request_timeout", 5.0)
        options.setdefault("sleep", clock.sleep)
        options.setdefault("clock", clock)
        client = AsyncClient(token=options.pop("token", TOKEN), **options)
        made.append(client)
        return client

    yield build
    for client in made:
        await client.close()


@pytest.fixture
def client(make_client: Callable[..., AsyncClient]) -> AsyncClient:
    return make_client()
