"""Several images in one request: reserved all or nothing, one job per image, and old databases migrated (v5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from bot.ledger import ImageSpec, JobStatus, Ledger, LedgerDefaults, LimitExceeded, Origin
from bot.ledger.engine import enable_sqlite_wal
from bot.ledger.migrations import migrate

from .conftest import NOW, Backend
from .steps import settle

GUILD = 42
USER = 7


def images(count: int) -> list[ImageSpec]:
    return [ImageSpec(input_url=f"https://cdn/{i}.png", input_filename=f"shoe{i}.png") for i in range(count)]


async def reserve(ledger: Ledger, interaction_id: int, count: int, *, private: bool = False):
    origin = Origin(
        interaction_id=interaction_id,
        guild_id=GUILD,
        channel_id=3,
        user_id=USER,
        created_at=NOW,
        application_id=9,
        token="tok",
    )
    return await ledger.reserve_request(origin, images(count), private=private)


async def test_a_request_reserves_one_job_per_image_under_its_own_id(backend: Backend) -> None:
    ledger = await backend.open(LedgerDefaults(credit_limit=100))
    request, jobs = await reserve(ledger, 1001, 5, private=True)
    assert request.origin.token == "tok" and request.origin.created_at == NOW
    assert request.interaction_id == 1001 and request.id != "1001" and request.images == 5 and request.private
    assert [(job.position, job.request_id, job.input_filename) for job in jobs] == [
        (i, request.id, f"shoe{i}.png") for i in range(5)
    ]
    assert (await ledger.usage(GUILD)).reserved == 25
    # each image is settled on its own, keyed by (interaction, position)
    await settle(ledger, 1001, position=3)
    after = await ledger.request_jobs(request.id)
    assert [job.status for job in after] == [JobStatus.RESERVED] * 3 + [JobStatus.COMPLETE, JobStatus.RESERVED]
    assert (await ledger.get_request(request.id)) == request
    assert len(await ledger.history(GUILD)) == 5  # history stays per image


async def test_a_repeated_interaction_gets_its_request_back(backend: Backend) -> None:
    ledger = await backend.open(LedgerDefaults(credit_limit=100))
    first = await reserve(ledger, 1002, 3)
    again = await reserve(ledger, 1002, 3)
    assert again == first
    assert (await ledger.usage(GUILD)).reserved == 15


@pytest.mark.parametrize("scope", ["guild", "member", "bot"])
async def test_a_request_that_does_not_fit_is_refused_whole_with_the_total_it_needs(
    backend: Backend, scope: str
) -> None:
    defaults = LedgerDefaults(credit_limit=100 if scope != "guild" else 20, bot_budget=20 if scope == "bot" else None)
    ledger = await backend.open(defaults)
    if scope == "member":
        await ledger.set_member_limit(GUILD, 20)
    await reserve(ledger, 1003, 1)  # 5 used: 15 left
    with pytest.raises(LimitExceeded) as refused:
        await reserve(ledger, 1004, 5)
    assert (refused.value.scope, refused.value.cost, refused.value.images, refused.value.used) == (scope, 25, 5, 5)
    assert (await ledger.usage(GUILD)).reserved == 5  # nothing of the refused request was written
    assert await ledger.get_job(1004) is None
    # three images (15 credits) still fit exactly
    _, fitted = await reserve(ledger, 1005, 3)
    assert len(fitted) == 3


async def test_v4_database_gets_a_request_per_job_without_losing_a_row(backend: Backend) -> None:
    raw = backend.raw_engine()
    if backend.name == "sqlite":
        await enable_sqlite_wal(raw)
    assert await migrate(raw, target=4) == [1, 2, 3, 4]
    stamp = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
    at = stamp.replace(tzinfo=None) if backend.name == "sqlite" else stamp
    async with raw.begin() as conn:
        for n, status in enumerate(["complete", "submitted", "reserved"]):
            await conn.execute(
                text(
                    "INSERT INTO jobs (interaction_id, guild_id, channel_id, user_id, application_id,"
                    " interaction_token, project_id, status, credits_reserved, credits_charged, name, created_at,"
                    " updated_at, delivered)"
                    " VALUES (:iid, 42, 3, 7, 9, 'tok', :pid, :status, 5, 5, 'cat', :at, :at, false)"
                ),
                {"iid": 2000 + n, "pid": f"proj-{n}", "status": status, "at": at},
            )
    ledger = await backend.open(LedgerDefaults(credit_limit=100))
    async with raw.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM jobs"))).scalar_one() == 3
        assert (await conn.execute(text("SELECT count(*) FROM requests"))).scalar_one() == 3
    old = await ledger.get_job(2001)
    assert old is not None and old.project_id == "proj-1" and old.position == 0 and old.request_id
    request = await ledger.get_request(old.request_id)
    assert request is not None and (request.interaction_id, request.origin.channel_id, request.images) == (2001, 3, 1)
    assert request.origin.token == "tok" and not request.private  # the route moved to the request, token and all
    assert await ledger.get_job_by_project("proj-0") is not None
    assert (await ledger.usage(GUILD)).total == 15
    # new requests get new ids and may hold several images per interaction after the upgrade
    _, fresh = await reserve(ledger, 3000, 2)
    assert {job.id for job in fresh}.isdisjoint({old.id})
    async with raw.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(text("jobs")))).scalar_one()
    assert count == 5


async def test_a_requests_token_is_forgotten_once_every_image_is_final_and_15_minutes_passed(backend: Backend) -> None:
    ledger = await backend.open(LedgerDefaults(credit_limit=100))
    request, _ = await reserve(ledger, 1006, 2)
    later = NOW + timedelta(minutes=16)
    await settle(ledger, 1006, position=0)
    await ledger.clear_expired_tokens(later)
    assert (await ledger.get_request(request.id)).origin.token == "tok"  # image 1 is still open
    await settle(ledger, 1006, position=1)
    await ledger.clear_expired_tokens(later)
    assert (await ledger.get_request(request.id)).origin.token is None
