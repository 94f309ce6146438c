"""/healthz and /metrics of the running bot, read by a real HTTP client as a platform and Prometheus do."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event

from bot.ledger import JobStatus
from bot.web.limits import HttpLimits
from tests.e2e.conftest import BotWorld, bot_world
from tests.fakes.interactions import make_attachment
from tests.fakes.magic_hour import FakeMagicHour
from tests.postgres import fresh_postgres_database
from tests.web.conftest import WEBHOOK_SECRET, TcpProxy

QUICK_HEALTH = HttpLimits(health_cache_seconds=0.2)


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, dict]:
    async with http.get(url) as response:
        return response.status, await response.json()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def test_nothing_listens_without_port_and_start_up_says_so(
    tmp_path: Path, mh: FakeMagicHour, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    async with bot_world(tmp_path, mh, MAGIC_HOUR_WEBHOOK_SECRET=WEBHOOK_SECRET) as world:
        assert world.http_url is None
        assert not world.bot.resources.project_events.live
    assert any("HTTP server off" in r.getMessage() and "webhooks off" in r.getMessage() for r in caplog.records)


async def test_start_up_says_webhooks_are_on(
    tmp_path: Path, mh: FakeMagicHour, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    async with bot_world(tmp_path, mh, http=True, MAGIC_HOUR_WEBHOOK_SECRET=WEBHOOK_SECRET) as world:
        assert world.bot.resources.project_events.live
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("HTTP server on")]
    assert "webhooks on at /webhooks/magic-hour" in line and WEBHOOK_SECRET not in line


async def test_healthz_names_the_gateway_when_it_is_not_connected(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession
) -> None:
    async with bot_world(tmp_path, mh, http=True, harness={"ready": False}) as world:
        status, body = await get_json(http, f"{world.http_url}/healthz")
    assert (status, body["failing"]) == (503, ["gateway"])


async def test_healthz_is_ok_then_names_the_database_once_it_stops(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession
) -> None:
    async with fresh_postgres_database() as url:
        proxy = await TcpProxy(url.host or "127.0.0.1", url.port or 5432).start()
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        try:
            async with bot_world(
                tmp_path, mh, http=True, harness={"ready": True}, http_limits=QUICK_HEALTH, DATABASE_URL=proxied
            ) as world:
                status, body = await get_json(http, f"{world.http_url}/healthz")
                assert (status, body) == (200, {"status": "ok", "failing": []})
                await proxy.stop()
                await asyncio.sleep(QUICK_HEALTH.health_cache_seconds * 1.5)  # the cached answer has expired
                status, body = await get_json(http, f"{world.http_url}/healthz")
                assert (status, body["failing"]) == (503, ["database"])
                assert url.database not in str(body) and "postgres" not in str(body)
        finally:
            await proxy.stop()


async def test_healthz_asks_the_database_once_however_many_ask_it_within_the_cache_time(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession
) -> None:
    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement)

    async with bot_world(tmp_path, mh, http=True, harness={"ready": True}) as world:
        url = f"{world.http_url}/healthz"
        engine = world.bot.ledger.engine.sync_engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            answers = list(await asyncio.gather(*(get_json(http, url) for _ in range(20))))
            answers += [await get_json(http, url) for _ in range(5)]
        finally:
            event.remove(engine, "before_cursor_execute", record)
    assert answers == [(200, {"status": "ok", "failing": []})] * 25
    queries = [s for s in statements if s.lstrip().upper().startswith("SELECT")]  # not SQLite's BEGIN
    assert len(queries) == 1, statements


async def test_metrics_count_jobs_credits_requests_polls_and_webhooks(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession
) -> None:
    mh.job_duration = 0.3
    async with bot_world(tmp_path, mh, http=True, MAGIC_HOUR_WEBHOOK_SECRET=WEBHOOK_SECRET) as world:
        mh.send_webhooks(f"{world.http_url}/webhooks/magic-hour", WEBHOOK_SECRET)
        await run_one(world)
        async with http.post(f"{world.http_url}/webhooks/magic-hour", data=b"{}") as response:
            assert response.status == 401
        async with http.get(f"{world.http_url}/metrics") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            found = samples(await response.text())

    assert found[("bot_jobs_total", (("outcome", "complete"),))] == 1
    assert found[("bot_credits_charged_total", ())] == 5
    assert found[("bot_queue_length", ())] == 0
    assert found[("bot_jobs_in_flight", ())] == 0
    assert (
        found[("bot_magic_hour_responses_total", (("route", "/v1/image-background-remover"), ("status", "200")))] == 1
    )
    assert (
        found[("bot_magic_hour_request_seconds_count", (("method", "POST"), ("route", "/v1/image-background-remover")))]
        == 1
    )
    assert found[("bot_polls_per_job_count", ())] == 1
    assert found[("bot_polls_per_job_sum", ())] == 0  # the completed event made every poll unnecessary
    assert found[("bot_completion_to_delivery_seconds_count", ())] == 1
    assert found[("bot_webhook_events_total", (("outcome", "woke_waiter"),))] >= 1
    assert found[("bot_webhook_events_total", (("outcome", "unsigned"),))] == 1


async def run_one(world: BotWorld) -> None:
    payload = world.discord.slash_command("remove-background", {"image": make_attachment()})
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id, timeout=10)
    async with asyncio.timeout(5):
        while (job := await world.bot.ledger.get_job(interaction_id)) is None or job.status != JobStatus.COMPLETE:
            await asyncio.sleep(0.02)
