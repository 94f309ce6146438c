"""Migrations v7 (payers, user installs), v8 (result options, deletions) and v10 (languages), each from the version
before it with data in it, on both engines: no row lost, old rows read as they meant, the balances still agree."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot.ledger import ImageSpec, JobStatus, LedgerDefaults, Origin, Payer
from bot.ledger.migrations import LATEST_VERSION, migrate
from bot.ledger.schema import guild_settings, jobs, requests

from .conftest import NOW, Backend
from .test_migration_v6 import EDGE_SERVER, MEMBERS, VARIANTS, V5Job, build_v5, v5_history

USER_INSTALLER = 4_200_000_000_000_000_001


async def counts(backend: Backend) -> tuple[int, int]:
    engine = backend.raw_engine()
    async with engine.connect() as conn:
        job_count = (await conn.execute(select(func.count()).select_from(jobs))).scalar_one()
        request_count = (await conn.execute(select(func.count()).select_from(requests))).scalar_one()
    return int(job_count), int(request_count)


async def test_each_migration_after_v6_keeps_every_row_and_the_balances_agree(backend: Backend) -> None:
    history = v5_history()
    raw = backend.raw_engine()
    await build_v5(raw, history, V5Job(999, EDGE_SERVER, MEMBERS[0], NOW, VARIANTS[4], 5, None, "tok-edge"))
    assert await migrate(raw, target=6) == [6]
    before = await counts(backend)
    for version in range(7, LATEST_VERSION + 1):
        assert await migrate(raw, target=version) == [version]
        assert await counts(backend) == before, f"v{version} lost rows"

    ledger = await backend.open(LedgerDefaults(credit_limit=100, user_install_limit=20))
    assert await ledger.verify() == []
    async with raw.connect() as conn:
        payers = set((await conn.execute(select(jobs.c.payer))).scalars())
        routes = set((await conn.execute(select(requests.c.payer, requests.c.channel_posts))).all())
        options = set((await conn.execute(select(requests.c.options, requests.c.locale))).all())
        deletions = set(await conn.execute(select(jobs.c.delete_after, jobs.c.deleted_at, jobs.c.delete_attempts)))
        locales = set((await conn.execute(select(guild_settings.c.locale))).scalars())
    assert payers == {Payer.GUILD.value}  # every job before v7 was a server's
    assert routes == {(Payer.GUILD.value, True)}  # and answered where the bot was installed
    assert options == {(None, None)}  # no options, no language known: English, as Magic Hour made them
    assert deletions == {(None, None, 0)}  # nothing delivered before v8 is deleted behind anyone's back
    assert locales == {None}

    # The migrated ledger takes what v7 made possible: a member's own install, in a DM, beside the old history.
    origin = Origin(9_100_000_000_000_000_001, None, 5, USER_INSTALLER, NOW + timedelta(minutes=1), locale="ja")
    request, [job] = await ledger.reserve_request(
        origin, [ImageSpec("https://cdn.example/a.png")], private=True, payer=Payer.USER, channel_posts=False
    )
    assert (job.payer, job.guild_id, job.status) == (Payer.USER, None, JobStatus.RESERVED)
    assert (request.origin.locale, request.channel_posts) == ("ja", False)
    assert (await ledger.user_usage(USER_INSTALLER)).reserved == 5
    assert await ledger.verify() == []
