"""A client on a shared aiohttp session whose every request aioresponses answers (or breaks).

Both hosts are loopback addresses on the discard port, so a request aioresponses somehow failed to
catch could still not leave the machine. Sleeps and the clock are the manual FakeClock of
tests/magic_hour/conftest.py: back-off is read from `clock.sleeps`, and nothing waits in real time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aioresponses import aioresponses

from bot.magic_hour import AsyncClient, RetryPolicy
from tests.fakes.magic_hour import FakeClock

from ..conftest import TOKEN
from .network import Network

BASE_URL = "http://localhost:9"
STORAGE = "http://127.0.0.1:9"
CREATE_URL = f"{BASE_URL}/v1/image-background-remover"
UPLOAD_URLS_URL = f"{BASE_URL}/v1/files/upload-urls"
RETRY = RetryPolicy(max_retries=3, base_delay=0.5, max_delay=8.0)


def project_url(project_id: str) -> str:
    return f"{BASE_URL}/v1/image-projects/{project_id}"


def assert_backed_off(sleeps: list[float], retries: int) -> None:
    """`retries` sleeps, each within RETRY's exponential ceiling and at least half of it (equal jitter)."""
    assert len(sleeps) == retries, sleeps
    for number, slept in enumerate(sleeps):
        ceiling = min(RETRY.max_delay, RETRY.base_delay * 2**number)
        assert ceiling / 2 <= slept <= ceiling, (number, slept, sleeps)


@pytest.fixture
def network() -> Iterator[Network]:
    with aioresponses() as mocked:
        yield Network(mocked)


@pytest.fixture
async def client(network: Network, clock: FakeClock) -> AsyncIterator[AsyncClient]:
    """Built the way the bot builds it: on a session the caller owns and closes."""
    async with aiohttp.ClientSession() as session:
        client = AsyncClient(
            token=TOKEN, base_url=BASE_URL, session=session, retry=RETRY, sleep=clock.sleep, clock=clock
        )
        yield client
        await client.close()
        assert not session.closed
