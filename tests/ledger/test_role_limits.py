"""Role limits: a member's cap is the largest limit among their roles and replaces the member limit, inside the
server's limit and the bot's budget, enforced in the one reservation (all or nothing, never overspent), on both
engines; and the v9 migration that stores them, from a v8 database with data in it."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from bot.ledger import (
    ImageSpec,
    JobStatus,
    Ledger,
    LedgerDefaults,
    LimitExceeded,
    MemberCap,
    Origin,
    Period,
    RoleLimit,
)
from bot.ledger.engine import enable_sqlite_wal
from bot.ledger.limits import member_cap
from bot.ledger.migrations import LATEST_VERSION, migrate
from bot.ledger.schema import balances, guild_settings, jobs, requests, schema_version

from .conftest import NOW, Backend

GUILD = 1_200_000_000_000_000_001
OTHER_GUILD = 1_200_000_000_000_000_002
ARTISTS, PATRONS, GUESTS = 2_100_000_000_000_000_001, 2_100_000_000_000_000_002, 2_100_000_000_000_000_003
ALICE, BOB, CAROL = 3_100_000_000_000_000_001, 3_100_000_000_000_000_002, 3_100_000_000_000_000_003
REPO_ROOT = Path(__file__).resolve().parents[2]
_ids = itertools.count(4_000_000_000_000_000_000)


async def reserve(ledger: Ledger, user: int, roles: tuple[int, ...] = (), *, images: int = 1, **kw: object) -> None:
    """One request of `images` images by `user` carrying `roles` (as Discord sent them)."""
    origin = Origin(
        interaction_id=next(_ids), guild_id=GUILD, channel_id=7, user_id=user, created_at=kw.pop("now", NOW)
    )
    specs = [ImageSpec(f"https://cdn.example/{n}.png") for n in range(images)]
    await ledger.reserve_request(origin, specs, private=False, roles=roles)


async def accepted(ledger: Ledger, user: int, roles: tuple[int, ...] = (), tries: int = 10) -> int:
    """How many one-image requests pass, trying one after another until refused (each costs 5)."""
    for done in range(tries):
        try:
            await reserve(ledger, user, roles)
        except LimitExceeded:
            return done
    return tries


@pytest.fixture
async def daily(ledger: Ledger) -> Ledger:
    """A server with plenty of room per day, so only member caps bind."""
    await ledger.set_limit(GUILD, 1000, "day")
    return ledger


# -- the cap rule ------------------------------------------------------------------------------------------------


def test_member_cap_is_the_largest_role_limit_else_the_member_limit() -> None:
    assert member_cap(20, {ARTISTS: 10, PATRONS: 50}) == MemberCap(50, PATRONS)
    assert member_cap(20, {ARTISTS: 10}) == MemberCap(10, ARTISTS)  # lower than the member limit: still replaces it
    assert member_cap(20, {}) == MemberCap(20, None)
    assert member_cap(None, {}) == MemberCap(None, None)
    assert member_cap(None, {PATRONS: 10, ARTISTS: 10}) == MemberCap(10, ARTISTS)  # a tie names the lower id


# -- storing them --------------------------------------------------------------------------------------------------


async def test_set_update_list_and_remove_role_limits(ledger: Ledger) -> None:
    assert await ledger.role_limits(GUILD) == []
    first = await ledger.set_role_limit(GUILD, ARTISTS, 10)
    assert first == RoleLimit(ARTISTS, 10, NOW)
    await ledger.set_role_limit(GUILD, PATRONS, 40)
    await ledger.set_role_limit(GUILD, GUESTS, 5)
    await ledger.set_role_limit(OTHER_GUILD, ARTISTS, 99)
    await ledger.set_role_limit(GUILD, ARTISTS, 15)  # an update, not a second row

    assert [(r.role_id, r.credits) for r in await ledger.role_limits(GUILD)] == [
        (PATRONS, 40),
        (ARTISTS, 15),
        (GUESTS, 5),
    ]
    assert await ledger.set_role_limit(GUILD, PATRONS, 0) is None
    assert [(r.role_id, r.credits) for r in await ledger.role_limits(GUILD)] == [(ARTISTS, 15), (GUESTS, 5)]
    assert [(r.role_id, r.credits) for r in await ledger.role_limits(OTHER_GUILD)] == [(ARTISTS, 99)]
    assert await ledger.set_role_limit(GUILD, PATRONS, 0) is None  # removing what is not there is not an error


@pytest.mark.parametrize("credits", [-1, 2**31, 1.5, True])
async def test_role_limits_must_fit_the_credit_columns(ledger: Ledger, credits: object) -> None:
    with pytest.raises(ValueError, match="role limit"):
        await ledger.set_role_limit(GUILD, ARTISTS, credits)  # type: ignore[arg-type]
    assert await ledger.role_limits(GUILD) == []


# -- enforcing them ------------------------------------------------------------------------------------------------


async def test_a_role_limit_of_10_a_day_allows_two_jobs_and_refuses_the_third_naming_it(daily: Ledger) -> None:
    await daily.set_role_limit(GUILD, ARTISTS, 10)
    await reserve(daily, ALICE, (ARTISTS,))
    await reserve(daily, ALICE, (ARTISTS,))
    with pytest.raises(LimitExceeded) as refused:
        await reserve(daily, ALICE, (ARTISTS,))
    error = refused.value
    assert (error.scope, error.used, error.limit, error.role_id, error.cost) == ("member", 10, 10, ARTISTS, 5)
    assert error.period is Period.DAY
    assert error.resets_at == (NOW + timedelta(days=1)).replace(hour=0)
    assert len(await daily.export_rows(GUILD, now=NOW)) == 2


async def test_two_limited_roles_give_the_larger_and_no_role_gives_the_member_limit(daily: Ledger) -> None:
    await daily.set_member_limit(GUILD, 5)
    await daily.set_role_limit(GUILD, ARTISTS, 10)
    await daily.set_role_limit(GUILD, PATRONS, 20)
    assert await accepted(daily, ALICE, (GUESTS, ARTISTS, PATRONS)) == 4
    assert await accepted(daily, BOB, (ARTISTS,)) == 2
    assert await accepted(daily, CAROL, (GUESTS,)) == 1  # an unlimited role: the member limit


async def test_a_role_limit_replaces_the_member_limit_whether_higher_or_lower(daily: Ledger) -> None:
    await daily.set_member_limit(GUILD, 15)
    await daily.set_role_limit(GUILD, ARTISTS, 5)
    await daily.set_role_limit(GUILD, PATRONS, 25)
    assert await accepted(daily, ALICE, (ARTISTS,)) == 1
    assert await accepted(daily, BOB, (PATRONS,)) == 5
    assert await accepted(daily, CAROL) == 3


async def test_without_a_member_limit_only_limited_roles_are_capped(daily: Ledger) -> None:
    await daily.set_role_limit(GUILD, ARTISTS, 10)
    assert await accepted(daily, ALICE, (ARTISTS,)) == 2
    assert await accepted(daily, BOB, (GUESTS,), tries=6) == 6


async def test_the_server_limit_and_the_bot_budget_still_bind_a_member_with_a_large_role_limit(
    backend: Backend,
) -> None:
    ledger = await backend.open(LedgerDefaults(credit_limit=1000, bot_budget=40))
    await ledger.set_limit(GUILD, 15, "day")
    await ledger.set_role_limit(GUILD, PATRONS, 500)
    assert await accepted(ledger, ALICE, (PATRONS,)) == 3
    with pytest.raises(LimitExceeded) as refused:
        await reserve(ledger, ALICE, (PATRONS,))
    assert (refused.value.scope, refused.value.role_id) == ("guild", None)

    await ledger.set_limit(GUILD, 1000, "day")
    assert await accepted(ledger, ALICE, (PATRONS,)) == 5  # 40 bot-wide: 15 + 25
    with pytest.raises(LimitExceeded) as refused:
        await reserve(ledger, ALICE, (PATRONS,))
    assert refused.value.scope == "bot"


async def test_a_request_of_several_images_over_the_role_cap_is_refused_whole(daily: Ledger) -> None:
    await daily.set_role_limit(GUILD, ARTISTS, 10)
    await reserve(daily, ALICE, (ARTISTS,))
    with pytest.raises(LimitExceeded) as refused:
        await reserve(daily, ALICE, (ARTISTS,), images=2)
    error = refused.value
    assert (error.images, error.cost, error.used, error.limit, error.role_id) == (2, 10, 5, 10, ARTISTS)
    assert len(await daily.export_rows(GUILD, now=NOW)) == 1  # nothing of the refused request was held
    await reserve(daily, ALICE, (ARTISTS,))  # the one image that fits still does


async def test_role_limits_count_in_the_servers_period(ledger: Ledger) -> None:
    await ledger.set_limit(GUILD, 1000, "week")  # Monday to Monday; NOW is a Saturday
    await ledger.set_role_limit(GUILD, ARTISTS, 10)
    await reserve(ledger, ALICE, (ARTISTS,), now=NOW - timedelta(days=4))  # Tuesday, same week
    await reserve(ledger, ALICE, (ARTISTS,))
    with pytest.raises(LimitExceeded) as refused:
        await reserve(ledger, ALICE, (ARTISTS,), now=NOW + timedelta(days=1))  # Sunday: still this week
    assert refused.value.period is Period.WEEK
    await reserve(ledger, ALICE, (ARTISTS,), now=NOW + timedelta(days=2))  # Monday: a new week


async def test_a_role_the_member_no_longer_carries_no_longer_caps_them(daily: Ledger) -> None:
    """Deleting a role (or taking it away) shows in the roles Discord sends: its stored limit simply goes unused."""
    await daily.set_member_limit(GUILD, 20)
    await daily.set_role_limit(GUILD, ARTISTS, 5)
    await reserve(daily, ALICE, (ARTISTS,))
    with pytest.raises(LimitExceeded):
        await reserve(daily, ALICE, (ARTISTS,))
    await reserve(daily, ALICE, ())  # the member limit again: 10 of 20
    assert [r.role_id for r in await daily.role_limits(GUILD)] == [ARTISTS]


async def test_usage_reports_the_members_cap_and_the_role_that_gives_it(daily: Ledger) -> None:
    await daily.set_member_limit(GUILD, 20)
    await daily.set_role_limit(GUILD, ARTISTS, 10)
    await daily.set_role_limit(GUILD, PATRONS, 30)
    await reserve(daily, ALICE, (ARTISTS,))

    with_roles = await daily.usage(GUILD, user_id=ALICE, roles=(ARTISTS, PATRONS, GUESTS))
    assert (with_roles.member_used, with_roles.member_cap, with_roles.member_cap_role_id) == (5, 30, PATRONS)
    assert with_roles.member_limit == 20
    plain = await daily.usage(GUILD, user_id=ALICE)
    assert (plain.member_cap, plain.member_cap_role_id) == (20, None)
    server_only = await daily.usage(GUILD)
    assert (server_only.member_used, server_only.member_cap, server_only.member_cap_role_id) == (None, None, None)


# -- concurrency ---------------------------------------------------------------------------------------------------


async def test_ten_members_with_the_role_at_once_never_exceed_it_across_engines(backend: Backend) -> None:
    ledgers = [await backend.open() for _ in range(4)]  # separate engines and connection pools
    await ledgers[0].set_limit(GUILD, 10_000, "day")
    await ledgers[0].set_role_limit(GUILD, ARTISTS, 10)
    members = [5_000 + n for n in range(10)]

    async def attempt(n: int) -> int | None:
        user = members[n % len(members)]
        try:
            await reserve(ledgers[n % len(ledgers)], user, (GUESTS, ARTISTS))
        except LimitExceeded as refused:
            assert (refused.scope, refused.role_id, refused.limit) == ("member", ARTISTS, 10)
            return None
        return user

    results = await asyncio.gather(*(attempt(n) for n in range(60)))  # six each, all at once
    assert Counter(user for user in results if user is not None) == dict.fromkeys(members, 2)
    for user in members:
        usage = await ledgers[1].usage(GUILD, user_id=user, roles=(ARTISTS,))
        assert usage.member_used == 10


async def test_two_processes_never_let_a_member_past_the_role_limit(backend: Backend) -> None:
    ledger = await backend.open()  # creates the schema and sets the limits before the race
    await ledger.set_limit(GUILD, 10_000, "day")
    await ledger.set_role_limit(GUILD, ARTISTS, 10)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.ledger.role_reserve_worker",
            backend.url,
            backend.schema or "",
            str(6_000_000 * (p + 1)),
            str(GUILD),
            str(ARTISTS),
            "10",
            "3",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
            env=env,
        )
        for p in range(2)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = await asyncio.wait_for(worker.stdout.readline(), 60)
            assert line.strip() == b"ready", (line, await worker.stderr.read() if worker.stderr else b"")
        for worker in workers:  # release them together so their reservations overlap
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
        totals: Counter[str] = Counter()
        for worker in workers:
            stdout, stderr = await asyncio.wait_for(worker.communicate(), 120)
            assert worker.returncode == 0, stderr.decode()
            totals.update(json.loads(stdout.decode().strip().splitlines()[-1]))
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()
    assert totals == {str(user): 2 for user in range(1, 11)}  # 3 tries per process each: 6, of which 2 fit


# -- the v9 migration ------------------------------------------------------------------------------------------------


async def test_a_v8_database_with_data_is_upgraded_and_role_limits_apply_to_its_history(backend: Backend) -> None:
    """Built through the shipped migration steps up to v8, filled, then opened by this release."""
    raw = backend.raw_engine()
    if backend.name == "sqlite":
        await enable_sqlite_wal(raw)
    assert await migrate(raw, target=8) == list(range(1, 9))

    def tables(conn) -> set[str]:
        return set(inspect(conn).get_table_names())

    async with raw.connect() as conn:
        assert "role_limits" not in await conn.run_sync(tables)
    async with raw.begin() as conn:
        await conn.execute(
            guild_settings.insert().values(
                guild_id=GUILD, credit_limit=500, period="day", member_limit=25, updated_at=NOW
            )
        )
        await conn.execute(
            requests.insert().values(
                id="v8-request", interaction_id=11, guild_id=GUILD, channel_id=7, user_id=ALICE, private=False,
                images=2, created_at=NOW, payer="guild", channel_posts=True,
            )
        )  # fmt: skip
        for position in range(2):
            await conn.execute(
                jobs.insert().values(
                    interaction_id=11, request_id="v8-request", position=position, guild_id=GUILD, channel_id=7,
                    user_id=ALICE, project_id=f"v8-{position}", status="complete", credits_reserved=5,
                    credits_charged=5, created_at=NOW, updated_at=NOW, delivered=True, payer="guild",
                )
            )  # fmt: skip
        day = (NOW.date() - date(1970, 1, 1)).days  # the balances' bucket: UTC days since 1970
        for scope, user in (("guild", 0), ("member", ALICE), ("bot", 0)):
            guild = 0 if scope == "bot" else GUILD
            for bucket in (day, -1):
                await conn.execute(
                    balances.insert().values(
                        scope=scope, guild_id=guild, user_id=user, day=bucket, used=10, reserved=0, held=0, jobs=2,
                        failures=0,
                    )
                )  # fmt: skip

    ledger = await backend.open()

    async with raw.connect() as conn:
        assert "role_limits" in await conn.run_sync(tables)
        found = await conn.execute(select(schema_version.c.version).order_by(schema_version.c.version))
        applied = list(found.scalars())
    assert applied == list(range(1, LATEST_VERSION + 1)) and 9 in applied
    settings = await ledger.get_settings(GUILD)
    assert (settings.credit_limit, settings.period, settings.member_limit) == (500, Period.DAY, 25)
    kept = [await ledger.get_job(11, position) for position in range(2)]
    assert [(job.status, job.credits_charged, job.project_id) for job in kept if job] == [
        (JobStatus.COMPLETE, 5, "v8-0"),
        (JobStatus.COMPLETE, 5, "v8-1"),
    ]
    assert await ledger.role_limits(GUILD) == []

    await ledger.set_role_limit(GUILD, ARTISTS, 15)  # the v8 jobs already spent 10 of it today
    usage = await ledger.usage(GUILD, user_id=ALICE, roles=(ARTISTS,))
    assert (usage.member_used, usage.member_cap, usage.member_cap_role_id) == (10, 15, ARTISTS)
    await reserve(ledger, ALICE, (ARTISTS,))
    with pytest.raises(LimitExceeded) as refused:
        await reserve(ledger, ALICE, (ARTISTS,))
    assert (refused.value.used, refused.value.limit, refused.value.role_id) == (15, 15, ARTISTS)
    assert await accepted(ledger, ALICE) == 2  # without the role: the v8 member limit of 25
