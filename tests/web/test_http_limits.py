"""What a stranger on the HTTP port can make the bot hold: refusals before the body, and every bound.

The running bot's own HTTP server on 127.0.0.1, driven by raw sockets that stall where an attacker
would (tests/web/raw_http.py), with the limits shrunk so each bound is reached by a handful of sockets
and each time limit passes quickly. The answers and closes are what Magic Hour, or an attacker, sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.ledger import JobStatus
from bot.web.limits import HttpLimits
from bot.webhooks import MAX_BODY_BYTES
from tests.e2e.conftest import BotWorld, bot_world
from tests.fakes.interactions import make_attachment
from tests.fakes.magic_hour import FakeMagicHour
from tests.web.conftest import WEBHOOK_SECRET
from tests.web.raw_http import Sockets, chunked, signed_head, webhook_head

# No time limit gets in the way; refused connections are closed quickly after their answer.
PATIENT = HttpLimits(lingering_seconds=0.1, first_request_seconds=60.0, body_read_seconds=60.0)
IGNORED_EVENT = json.dumps({"type": "video.completed", "payload": {}}).encode()  # genuine, and acknowledged


@contextlib.asynccontextmanager
async def webhook_server(tmp_path: Path, mh: FakeMagicHour, limits: HttpLimits) -> AsyncIterator[BotWorld]:
    async with bot_world(
        tmp_path, mh, http=True, http_limits=limits, MAGIC_HOUR_WEBHOOK_SECRET=WEBHOOK_SECRET
    ) as world:
        assert world.http_url is not None
        yield world


async def metric(http: aiohttp.ClientSession, world: BotWorld, name: str, **labels: str) -> float:
    async with http.get(f"{world.http_url}/metrics") as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


async def wait_for_metric(
    http: aiohttp.ClientSession, world: BotWorld, name: str, value: float, timeout: float = 5.0
) -> None:
    async with asyncio.timeout(timeout):
        while await metric(http, world, name) != value:
            await asyncio.sleep(0.02)


@pytest.fixture
async def sockets() -> AsyncIterator[Sockets]:
    opened = Sockets()
    yield opened
    await opened.close_all()


# -- refusals that need no body ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "status", "outcome"),
    [
        (webhook_head(content_length=500, signature=None), 401, "unsigned"),
        (webhook_head(content_length=500, with_timestamp=False), 401, "unsigned"),
        (webhook_head(content_length=500, timestamp=time.time() - 600), 400, "stale"),
        (webhook_head(content_length=500, timestamp=time.time() + 600), 400, "stale"),
        (webhook_head(content_length=500, timestamp="yesterday"), 400, "bad_timestamp"),
        (webhook_head(content_length=MAX_BODY_BYTES + 1), 413, "too_large"),
    ],
    ids=["no-signature", "no-timestamp", "stale", "future", "unparseable-timestamp", "content-length-over-cap"],
)
async def test_a_refusable_head_is_answered_before_its_body_is_sent(
    tmp_path: Path,
    mh: FakeMagicHour,
    http: aiohttp.ClientSession,
    sockets: Sockets,
    head: bytes,
    status: int,
    outcome: str,
) -> None:
    async with webhook_server(tmp_path, mh, PATIENT) as world:
        connection = await sockets.open(world.http_url, head)  # and not one byte of the body it announces
        assert await connection.status() == status
        assert await metric(http, world, "bot_webhook_events_total", outcome=outcome) == 1
        assert await connection.closed_by_server()  # answered, and not kept for another request


async def test_a_chunked_body_is_read_up_to_the_cap_and_refused_as_soon_as_it_passes_it(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession, sockets: Sockets
) -> None:
    at_cap = b" " * (MAX_BODY_BYTES - len(IGNORED_EVENT)) + IGNORED_EVENT  # leading whitespace is valid JSON
    over_cap = b" " + at_cap
    async with webhook_server(tmp_path, mh, PATIENT) as world:
        whole = await sockets.open(world.http_url, signed_head(at_cap, chunked=True) + chunked(at_cap) + b"0\r\n\r\n")
        assert await whole.status() == 200
        # Past the cap, and the sender goes on: refused there, without waiting for the end of the body.
        endless = await sockets.open(world.http_url, signed_head(over_cap, chunked=True) + chunked(over_cap))
        assert await endless.status() == 413
        assert await metric(http, world, "bot_webhook_events_total", outcome="too_large") == 1


# -- time and concurrency ----------------------------------------------------------------------------


async def test_a_body_that_stalls_past_the_time_limit_is_refused(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession, sockets: Sockets
) -> None:
    limits = HttpLimits(lingering_seconds=0.1, first_request_seconds=60.0, body_read_seconds=0.3)
    async with webhook_server(tmp_path, mh, limits) as world:
        connection = await sockets.open(world.http_url, webhook_head(content_length=500) + b'{"type": ')
        assert await connection.status() == 408  # the rest never comes
        assert await connection.closed_by_server()
        assert await metric(http, world, "bot_webhook_events_total", outcome="slow_body") == 1


async def test_bodies_still_arriving_past_the_read_bound_are_refused_busy_at_once(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession, sockets: Sockets
) -> None:
    limits = HttpLimits(lingering_seconds=0.1, first_request_seconds=60.0, body_read_seconds=60.0, max_body_reads=2)
    async with webhook_server(tmp_path, mh, limits) as world:
        reading = await sockets.open_many(world.http_url, 2, webhook_head(content_length=20) + b"{")
        await wait_for_metric(http, world, "bot_webhook_body_reads", 2)

        third = await sockets.open(world.http_url, webhook_head(content_length=20) + b"{")
        status, headers = await third.head()
        assert status == 503
        assert headers["retry-after"] == str(limits.retry_after_seconds)
        assert await metric(http, world, "bot_webhook_events_total", outcome="busy") == 1

        # A body that arrives whole with its headers waits for nothing: read even while every slot is taken.
        whole = await sockets.open(world.http_url, signed_head(IGNORED_EVENT) + IGNORED_EVENT)
        assert await whole.status() == 200

        for connection in reading:  # still being read: the rest of the body arrives, the forgery is seen
            await connection.send(b" " * 19)
            assert await connection.status() == 401
        assert await metric(http, world, "bot_webhook_events_total", outcome="bad_signature") == 2


# -- connections -------------------------------------------------------------------------------------


async def test_connections_past_the_bound_are_closed_at_once(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession, sockets: Sockets
) -> None:
    limits = HttpLimits(lingering_seconds=0.1, max_connections=3, first_request_seconds=60.0)
    async with webhook_server(tmp_path, mh, limits) as world:
        silent = await sockets.open_many(world.http_url, 3)
        extra = await sockets.open(world.http_url)
        assert await extra.closed_by_server()
        assert await extra.status() is None  # closed without a word, before any parsing

        await silent[0].send(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # the admitted are served
        status, body = await silent[0].response()
        assert status == 200
        assert 'bot_http_connections_closed_total{reason="over_limit"} 1.0' in body.decode()
        for connection in silent:
            connection.close()
        async with asyncio.timeout(5):  # once the server has seen them go, new connections are served again
            while True:
                with contextlib.suppress(aiohttp.ClientError):
                    assert await metric(http, world, "bot_http_connections_closed_total", reason="over_limit") >= 1
                    break
                await asyncio.sleep(0.05)


async def test_connections_that_send_no_whole_request_head_in_time_are_closed(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession, sockets: Sockets
) -> None:
    limits = HttpLimits(lingering_seconds=0.1, first_request_seconds=0.3)
    async with webhook_server(tmp_path, mh, limits) as world:
        silent = await sockets.open(world.http_url)
        partial = await sockets.open(world.http_url, b"POST /webhooks/magic-hour HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        served = await sockets.open(world.http_url, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await served.response())[0] == 200

        assert await silent.closed_by_server()
        assert await partial.closed_by_server()
        assert await silent.status() is None and await partial.status() is None
        # The deadline is for the first request only: a served connection stays for the next one.
        await served.send(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert await served.status() == 200
        assert await metric(http, world, "bot_http_connections_closed_total", reason="no_request") == 2


async def test_a_genuine_event_is_delivered_while_many_stalled_sockets_are_open(
    tmp_path: Path, mh: FakeMagicHour, sockets: Sockets
) -> None:
    mh.job_duration = 0.5
    limits = HttpLimits(
        lingering_seconds=0.1, max_connections=64, first_request_seconds=1.0, max_body_reads=4, body_read_seconds=1.0
    )
    async with webhook_server(tmp_path, mh, limits) as world:
        mh.send_webhooks(f"{world.http_url}/webhooks/magic-hour", WEBHOOK_SECRET)
        url = world.http_url
        silent = await sockets.open_many(url, 30)
        half_heads = await sockets.open_many(url, 10, b"POST /webhooks/magic-hour HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        half_bodies = await sockets.open_many(url, 6, webhook_head(content_length=MAX_BODY_BYTES) + b" " * 1000)

        payload = world.discord.slash_command("remove-background", {"image": make_attachment("cat.png")})
        interaction_id = world.discord.dispatch(payload)
        async with asyncio.timeout(10):
            while (job := await world.bot.ledger.get_job(interaction_id)) is None or not job.delivered:
                await asyncio.sleep(0.02)
        assert job.status is JobStatus.COMPLETE
        assert next(iter(mh.jobs.values())).polls == 0  # the event got through: no poll was needed
        assert [d.status for d in mh.webhook_deliveries] == [200, 200]

        # And the stalled ones did not stay: bodies past the read bound refused, the others answered at their
        # time limit, the rest closed.
        assert sorted([await c.status() for c in half_bodies]) == [408] * 4 + [503] * 2
        for connection in (*silent, *half_heads, *half_bodies):
            assert await connection.closed_by_server()


@pytest.mark.parametrize(
    "extra",
    [
        "".join(f"X-Padding-{i}: x\r\n" for i in range(PATIENT.max_headers)),  # with Host, one line too many
        f"X-Padding: {'x' * (PATIENT.max_field_size + 1)}\r\n",  # one line too long
    ],
    ids=["too-many-lines", "too-long-a-line"],
)
async def test_request_heads_past_their_bounds_are_refused(
    tmp_path: Path, mh: FakeMagicHour, sockets: Sockets, extra: str
) -> None:
    async with webhook_server(tmp_path, mh, PATIENT) as world:
        head = f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n"
        connection = await sockets.open(world.http_url, head.encode())
        assert await connection.status() == 400
        assert await connection.closed_by_server()
