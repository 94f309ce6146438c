"""The money path on a real PostgreSQL whose server connections are killed while jobs render: every job is
delivered exactly once and settled, and new commands work afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.ledger import JobStatus
from tests.e2e.conftest import bot_world
from tests.fakes.interactions import make_attachment, make_member, make_user
from tests.fakes.magic_hour import FakeMagicHour
from tests.postgres import fresh_postgres_database

pytestmark = pytest.mark.postgres
JOBS = 6


@pytest.fixture
async def database_url() -> AsyncIterator[str]:
    """A fresh database on the TEST_DATABASE_URL server, dropped afterwards."""
    async with fresh_postgres_database("bot_e2e") as url:
        yield url.render_as_string(hide_password=False)


async def kill_connections(database_url: str) -> int:
    url = make_url(database_url)
    killer = await asyncpg.connect(url.set(drivername="postgresql", database="postgres").render_as_string(False))
    try:
        rows = await killer.fetch(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            url.database,
        )
        return len(rows)
    finally:
        await killer.close()


async def test_killed_connections_while_jobs_render_lose_nothing(
    tmp_path: Path, mh: FakeMagicHour, database_url: str
) -> None:
    mh.job_duration = 1.0
    async with bot_world(
        tmp_path, mh, DATABASE_URL=database_url, MAX_JOBS_PER_MEMBER="1", DEFAULT_GUILD_CREDIT_LIMIT="1000"
    ) as world:
        payloads = [
            world.discord.slash_command(
                "remove-background", {"image": make_attachment(f"p{i}.png")}, user=make_member(make_user(f"m{i}"))
            )
            for i in range(JOBS)
        ]
        ids = [world.discord.dispatch(p) for p in payloads]
        await world.discord.wait_for(lambda _: mh.creates == JOBS, timeout=10)
        killed = 0
        for _ in range(3):  # while every job is rendering, and again as they finish
            killed += await kill_connections(database_url)
            await asyncio.sleep(0.3)
        assert killed > 0, "the test must really cut the bot's connections"
        for interaction_id in ids:
            await world.discord.finished(interaction_id, timeout=30)

        for payload, interaction_id in zip(payloads, ids, strict=True):
            with_image = [e for e in world.discord.original_edits(payload["token"]) if e.files and e.status == 200]
            assert len(with_image) == 1, f"job {interaction_id} delivered {len(with_image)} times"
            job = await world.bot.ledger.get_job(interaction_id)
            assert (job.status, job.credits_charged, job.delivered) == (JobStatus.COMPLETE, 5, True)
        assert mh.created == JOBS

        after = world.discord.slash_command("remove-background", {"image": make_attachment("after.png")})
        await world.discord.run(after, timeout=15)
        assert (await world.bot.ledger.get_job(int(after["id"]))).status is JobStatus.COMPLETE
