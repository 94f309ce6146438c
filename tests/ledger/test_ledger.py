"""The ledger's contract, run against every engine in `conftest.backend`."""

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from itertools import count

import pytest
from sqlalchemy import text

from bot.ledger import (
    COST_PER_JOB,
    INTERRUPTED_ERROR,
    NEVER_SENT_ERROR,
    JobStatus,
    Ledger,
    LedgerDefaults,
    LimitExceeded,
    Period,
)

from .conftest import NOW, Backend
from .steps import hold, send, submit
from .steps import settle as settle_job

GUILD = 1_100_000_000_000_000_001  # real snowflakes exceed 2^53
OTHER_GUILD = 2
ALICE = 1_300_000_000_000_000_003
BOB = 1_300_000_000_000_000_004
_ids = count(900_000_000_000_000_000)


async def reserve(ledger: Ledger, *, guild: int = GUILD, user: int = ALICE, now: datetime = NOW, **extra):
    return await ledger.reserve(
        interaction_id=extra.pop("interaction_id", next(_ids)),
        guild_id=guild,
        channel_id=77,
        user_id=user,
        now=now,
        **extra,
    )


async def fill(ledger: Ledger, jobs: int, **kwargs) -> list:
    return [await reserve(ledger, **kwargs) for _ in range(jobs)]


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


async def test_reserve_records_the_job(backend: Backend, ledger: Ledger) -> None:
    job = await reserve(
        ledger,
        interaction_id=1_234_567_890_123_456_789,
        application_id=1_200_000_000_000_000_000,
        interaction_token="tok-very-secret",
        input_url="https://cdn.example/a.png",
        background_url="https://cdn.example/bg.png",
        name="cat",
    )
    assert job.status is JobStatus.RESERVED
    assert job.interaction_id == 1_234_567_890_123_456_789
    assert (job.guild_id, job.user_id, job.channel_id) == (GUILD, ALICE, 77)
    assert job.credits_reserved == COST_PER_JOB and job.credits_charged is None
    assert job.created_at == NOW and job.created_at.tzinfo is UTC
    assert job.delivered is False and job.project_id is None
    stored = await ledger.get_job(job.interaction_id)
    assert stored == job
    assert stored is not None and stored.input_url == "https://cdn.example/a.png" and stored.name == "cat"
    assert await ledger.get_job(42) is None
    # The reply route (and its token, a credential) belongs to the request, never to the image's job.
    request = await ledger.get_request(job.request_id or "")
    assert request is not None and request.origin.token == "tok-very-secret"
    assert request.origin.application_id == 1_200_000_000_000_000_000
    assert "tok-very-secret" not in repr(request) + repr(job)
    async with backend.raw_engine().connect() as conn:
        tokens = (await conn.execute(text("SELECT interaction_token FROM jobs"))).scalars().all()
    assert tokens == [None]


async def test_timestamps_come_back_as_utc(ledger: Ledger) -> None:
    paris = timezone(timedelta(hours=2))
    job = await reserve(ledger, now=datetime(2025, 3, 15, 14, 0, tzinfo=paris))
    assert job.created_at == NOW
    assert job.created_at.utcoffset() == timedelta(0)
    again = await ledger.get_job(job.interaction_id)
    assert again is not None and again.created_at.tzinfo is UTC and again.updated_at.tzinfo is UTC


async def test_limit_is_enforced_exactly(ledger: Ledger) -> None:
    await fill(ledger, 20)
    with pytest.raises(LimitExceeded) as caught:
        await reserve(ledger)
    refused = caught.value
    assert (refused.scope, refused.used, refused.limit, refused.cost) == ("guild", 100, 100, 5)
    assert refused.period is Period.MONTH
    assert refused.resets_at == utc(2025, 4, 1)
    usage = await ledger.usage(GUILD, now=NOW)
    assert (usage.used, usage.reserved, usage.total, usage.remaining) == (0, 100, 100, 0)
    # Another guild has its own budget.
    await reserve(ledger, guild=OTHER_GUILD)


async def test_cost_larger_than_what_is_left_is_refused(ledger: Ledger) -> None:
    await ledger.set_limit(GUILD, 12, "month")
    await fill(ledger, 2)
    with pytest.raises(LimitExceeded) as caught:
        await reserve(ledger)
    assert (caught.value.used, caught.value.limit) == (10, 12)
    await reserve(ledger, cost=2)
    assert (await ledger.usage(GUILD, now=NOW)).remaining == 0


async def test_zero_limit_refuses_everything(ledger: Ledger) -> None:
    await ledger.set_limit(GUILD, 0, "day")
    with pytest.raises(LimitExceeded):
        await reserve(ledger)
    usage = await ledger.usage(GUILD, now=NOW)
    assert usage.limit == 0 and usage.remaining == 0


async def test_duplicate_interaction_returns_the_same_job(ledger: Ledger) -> None:
    first = await reserve(ledger, interaction_id=555)
    second = await reserve(ledger, interaction_id=555)
    assert second == first
    assert (await ledger.usage(GUILD, now=NOW)).reserved == 5
    # Even when the guild is full now, a retry of an accepted interaction is not refused.
    await fill(ledger, 19)
    assert (await reserve(ledger, interaction_id=555)).id == first.id
    # Concurrent duplicates still make one job.
    results = await asyncio.gather(*(reserve(ledger, guild=OTHER_GUILD, interaction_id=556) for _ in range(10)))
    assert len({job.id for job in results}) == 1
    assert (await ledger.usage(OTHER_GUILD, now=NOW)).reserved == 5


async def test_job_lifecycle_and_charges(ledger: Ledger) -> None:
    job = await reserve(ledger)
    await send(ledger, job.interaction_id)
    submitted = await ledger.mark_submitted(job.interaction_id, project_id="cm-proj-1", credits_charged=5)
    assert submitted is not None
    assert (submitted.status, submitted.project_id, submitted.credits_charged) == (
        JobStatus.SUBMITTED,
        "cm-proj-1",
        5,
    )
    assert (await ledger.usage(GUILD, now=NOW)).reserved == 5
    done = await ledger.settle(job.interaction_id, status=JobStatus.COMPLETE, credits_charged=5)
    assert done is not None and done.status is JobStatus.COMPLETE
    usage = await ledger.usage(GUILD, user_id=ALICE, now=NOW)
    assert (usage.used, usage.reserved, usage.member_used) == (5, 0, 5)
    delivered = await ledger.mark_delivered(job.interaction_id)
    assert delivered is not None and delivered.delivered is True


async def test_failed_job_refunded_frees_its_credits(ledger: Ledger) -> None:
    jobs = await fill(ledger, 20)
    with pytest.raises(LimitExceeded):
        await reserve(ledger)
    job = jobs[0]
    await submit(ledger, job.interaction_id, project_id="p-err")
    failed = await ledger.settle(job.interaction_id, status="failed", credits_charged=0, error="no subject found")
    assert failed is not None and failed.status is JobStatus.FAILED and failed.error == "no subject found"
    assert (await ledger.usage(GUILD, now=NOW)).total == 95
    await reserve(ledger)  # the refunded 5 credits are usable again


async def test_failed_job_that_kept_its_charge_still_counts(ledger: Ledger) -> None:
    job = await reserve(ledger)
    await settle_job(ledger, job.interaction_id, status=JobStatus.FAILED, credits_charged=5)
    assert (await ledger.usage(GUILD, now=NOW)).used == 5
    # Magic Hour later updates credits_charged to include the refund: settling again is allowed.
    await ledger.settle(job.interaction_id, status=JobStatus.FAILED, credits_charged=0)
    assert (await ledger.usage(GUILD, now=NOW)).total == 0


async def test_settle_refuses_non_final_statuses(ledger: Ledger) -> None:
    job = await reserve(ledger)
    with pytest.raises(ValueError, match="complete or failed"):
        await ledger.settle(job.interaction_id, status=JobStatus.SUBMITTED, credits_charged=5)


async def test_release_frees_credits_and_is_final(ledger: Ledger) -> None:
    jobs = await fill(ledger, 20)
    released = await ledger.release(jobs[3].interaction_id, error="422 from Magic Hour")
    assert released is not None
    assert (released.status, released.credits_charged, released.error) == (
        JobStatus.REFUNDED,
        0,
        "422 from Magic Hour",
    )
    assert (await ledger.usage(GUILD, now=NOW)).total == 95
    await reserve(ledger)
    # A released job cannot be resurrected by a late settle.
    late = await ledger.settle(jobs[3].interaction_id, status=JobStatus.COMPLETE, credits_charged=5)
    assert late is not None and late.status is JobStatus.REFUNDED
    assert (await ledger.usage(GUILD, now=NOW)).total == 100


async def test_release_cannot_erase_a_settled_charge(ledger: Ledger) -> None:
    job = await reserve(ledger)
    await settle_job(ledger, job.interaction_id)
    after = await ledger.release(job.interaction_id, error="late")
    assert after is not None and after.status is JobStatus.COMPLETE
    assert (await ledger.usage(GUILD, now=NOW)).used == 5


async def test_a_held_outcome_keeps_counting_until_resolved(ledger: Ledger) -> None:
    jobs = await fill(ledger, 20)
    held = await hold(ledger, jobs[0].interaction_id, error="timeout after create was sent")
    assert held.error == "timeout after create was sent"
    usage = await ledger.usage(GUILD, now=NOW)
    assert (usage.reserved, usage.held, usage.total) == (100, 5, 100)
    with pytest.raises(LimitExceeded):
        await reserve(ledger)
    # Resolved: the project was found after all.
    found = await ledger.mark_submitted(jobs[0].interaction_id, project_id="p-found")
    assert found is not None and found.status is JobStatus.SUBMITTED
    await ledger.settle(jobs[0].interaction_id, status=JobStatus.FAILED, credits_charged=0)
    await reserve(ledger)


async def test_transitions_on_missing_jobs_return_none(ledger: Ledger) -> None:
    assert await ledger.mark_submitted(1, project_id="nope") is None
    assert await ledger.settle(1, status=JobStatus.COMPLETE, credits_charged=5) is None
    assert await ledger.release(1, error="x") is None
    assert await ledger.mark_held(1, error="x") is None
    assert await ledger.claim_project(1, project_id="nope", credits_charged=5) is None
    assert await ledger.mark_delivered(1) is None
    assert await ledger.mark_sending(1) is False
    assert await ledger.claim_delivery(1, "p1") is False


async def test_member_limit(ledger: Ledger) -> None:
    settings = await ledger.set_member_limit(GUILD, 10)
    assert settings.member_limit == 10 and settings.is_default  # the guild limit is still the default
    await fill(ledger, 2, user=ALICE)
    with pytest.raises(LimitExceeded) as caught:
        await reserve(ledger, user=ALICE)
    assert (caught.value.scope, caught.value.used, caught.value.limit) == ("member", 10, 10)
    await reserve(ledger, user=BOB)
    usage = await ledger.usage(GUILD, user_id=ALICE, now=NOW)
    assert (usage.member_used, usage.member_limit, usage.total) == (10, 10, 15)
    # A refund frees the member's budget too.
    first = (await ledger.history(GUILD, user_id=ALICE))[-1]
    await ledger.release(first.interaction_id, error="create failed")
    await reserve(ledger, user=ALICE)
    # 0 and None both clear it.
    assert (await ledger.set_member_limit(GUILD, 0)).member_limit is None
    await reserve(ledger, user=ALICE)
    await ledger.set_member_limit(GUILD, 5)
    assert (await ledger.set_member_limit(GUILD, None)).member_limit is None
    with pytest.raises(ValueError, match="negative"):
        await ledger.set_member_limit(GUILD, -1)


async def test_guild_limit_wins_over_a_larger_member_limit(ledger: Ledger) -> None:
    await ledger.set_limit(GUILD, 10, "week")
    await ledger.set_member_limit(GUILD, 50)
    await fill(ledger, 2)
    with pytest.raises(LimitExceeded) as caught:
        await reserve(ledger)
    assert caught.value.scope == "guild"
    assert caught.value.resets_at == utc(2025, 3, 17)


async def test_settings_default_then_explicit(ledger: Ledger) -> None:
    default = await ledger.get_settings(GUILD)
    assert (default.credit_limit, default.period, default.is_default) == (100, Period.MONTH, True)
    assert default.member_limit is None and default.alert_channel_id is None
    await reserve(ledger)  # creates the guild row as a lock target; still the default
    assert (await ledger.get_settings(GUILD)).is_default
    changed = await ledger.set_limit(GUILD, 250, Period.WEEK)
    assert (changed.credit_limit, changed.period, changed.is_default) == (250, Period.WEEK, False)
    with_alerts = await ledger.set_alert_channel(GUILD, 1_500_000_000_000_000_000)
    assert with_alerts.alert_channel_id == 1_500_000_000_000_000_000
    assert with_alerts.credit_limit == 250
    assert (await ledger.set_alert_channel(GUILD, None)).alert_channel_id is None


async def test_defaults_apply_to_servers_that_never_set_a_limit(backend: Backend) -> None:
    ledger = await backend.open(LedgerDefaults(credit_limit=10, period="day"))
    await fill(ledger, 2)
    with pytest.raises(LimitExceeded) as caught:
        await reserve(ledger)
    assert caught.value.period is Period.DAY and caught.value.resets_at == utc(2025, 3, 16)


async def test_owner_ceiling(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="1000"):
        await ledger.set_limit(GUILD, 1001, "month")
    assert (await ledger.get_settings(GUILD)).is_default
    owner = await ledger.set_limit(GUILD, 5000, "month", bypass_ceiling=True)
    assert owner.credit_limit == 5000
    assert (await ledger.set_limit(GUILD, 1000, "day")).credit_limit == 1000
    with pytest.raises(ValueError, match="negative"):
        await ledger.set_limit(GUILD, -5, "month")
    with pytest.raises(ValueError, match="period must be one of"):
        await ledger.set_limit(GUILD, 50, "fortnight")


def test_defaults_are_validated() -> None:
    with pytest.raises(ValueError, match="above the maximum"):
        LedgerDefaults(credit_limit=500, max_credit_limit=100)
    with pytest.raises(ValueError, match="period"):
        LedgerDefaults(period="yearly")
    assert LedgerDefaults(period="WEEK").period is Period.WEEK


@pytest.mark.parametrize(
    ("period", "last_moment", "next_period"),
    [
        ("day", utc(2025, 3, 15, 23, 59, 59), utc(2025, 3, 16)),
        ("week", utc(2025, 3, 16, 23, 59, 59), utc(2025, 3, 17)),  # Sunday night -> Monday
        ("month", utc(2025, 1, 31, 23, 59, 59), utc(2025, 2, 1)),
        ("month", utc(2025, 12, 31, 23, 59, 59), utc(2026, 1, 1)),  # year rollover
    ],
)
async def test_usage_resets_at_period_boundaries(
    ledger: Ledger, period: str, last_moment: datetime, next_period: datetime
) -> None:
    await ledger.set_limit(GUILD, 10, period)
    await fill(ledger, 2, now=last_moment)
    with pytest.raises(LimitExceeded) as caught:
        await reserve(ledger, now=last_moment)
    assert caught.value.resets_at == next_period
    usage = await ledger.usage(GUILD, now=next_period)
    assert (usage.total, usage.period_start) == (0, next_period)
    await fill(ledger, 2, now=next_period)
    # The earlier period's view is unchanged by the later jobs.
    assert (await ledger.usage(GUILD, now=last_moment)).total == 10


async def test_period_none_never_resets(ledger: Ledger) -> None:
    await ledger.set_limit(GUILD, 10, Period.NONE)
    await fill(ledger, 1, now=utc(2020, 1, 1))
    await fill(ledger, 1, now=utc(2025, 6, 1))
    with pytest.raises(LimitExceeded) as caught:
        await reserve(ledger, now=utc(2030, 1, 1))
    assert caught.value.resets_at is None
    usage = await ledger.usage(GUILD, now=utc(2030, 1, 1))
    assert (usage.total, usage.resets_at) == (10, None)


async def test_recover_interrupted(ledger: Ledger) -> None:
    queued = await reserve(ledger)  # never reached Magic Hour
    in_flight = await reserve(ledger)
    assert await ledger.mark_sending(in_flight.interaction_id) is True
    submitted = await reserve(ledger)
    await submit(ledger, submitted.interaction_id, project_id="p-sub")
    unanswered = await reserve(ledger)
    await hold(ledger, unanswered.interaction_id, error="the create timed out")
    finished = await reserve(ledger)
    await settle_job(ledger, finished.interaction_id, project_id="p-done")

    to_poll = await ledger.recover_interrupted()
    assert [job.project_id for job in to_poll] == ["p-sub"]
    released = await ledger.get_job(queued.interaction_id)
    assert released is not None and (released.status, released.credits_charged) == (JobStatus.REFUNDED, 0)
    assert released.error == NEVER_SENT_ERROR
    after = await ledger.get_job(in_flight.interaction_id)
    assert after is not None and (after.status, after.error) == (JobStatus.HELD, INTERRUPTED_ERROR)
    still_held = await ledger.get_job(unanswered.interaction_id)
    assert still_held is not None and (still_held.status, still_held.error) == (JobStatus.HELD, "the create timed out")
    # The sent one is never silently released: it still counts, as held (beside the one held before).
    usage = await ledger.usage(GUILD, now=NOW)
    assert (usage.total, usage.held, usage.held_since) == (20, 10, NOW)
    # Running it again changes nothing.
    assert [job.project_id for job in await ledger.recover_interrupted()] == ["p-sub"]
    assert (await ledger.usage(GUILD, now=NOW)).total == 20
    # A queued job released by a newer process must not be sent by the old one.
    assert await ledger.mark_sending(queued.interaction_id) is False


async def test_claim_alert_exactly_once(ledger: Ledger) -> None:
    march = utc(2025, 3, 1)
    assert await ledger.claim_alert(GUILD, 80, march) is True
    assert await ledger.claim_alert(GUILD, 80, march) is False
    assert await ledger.claim_alert(GUILD, 100, march) is True
    assert await ledger.claim_alert(GUILD, 80, utc(2025, 4, 1)) is True
    assert await ledger.claim_alert(OTHER_GUILD, 80, march) is True
    racing = await asyncio.gather(*(ledger.claim_alert(GUILD, 90, march) for _ in range(20)))
    assert racing.count(True) == 1


async def test_meta(ledger: Ledger) -> None:
    assert await ledger.get_meta("command_tree_hash") is None
    await ledger.set_meta("command_tree_hash", "abc")
    await ledger.set_meta("command_tree_hash", "def")
    assert await ledger.get_meta("command_tree_hash") == "def"


async def test_history_export_and_top_members(ledger: Ledger) -> None:
    feb = await reserve(ledger, user=BOB, now=utc(2025, 2, 10))
    a1 = await reserve(ledger, user=ALICE, now=utc(2025, 3, 2))
    b1 = await reserve(ledger, user=BOB, now=utc(2025, 3, 3))
    a2 = await reserve(ledger, user=ALICE, now=utc(2025, 3, 4))
    a3 = await reserve(ledger, user=ALICE, now=utc(2025, 3, 5))
    await ledger.release(a3.interaction_id, error="create failed")
    await reserve(ledger, guild=OTHER_GUILD, user=ALICE)

    newest_first = await ledger.history(GUILD)
    assert [j.id for j in newest_first] == [a3.id, a2.id, b1.id, a1.id, feb.id]
    assert [j.id for j in await ledger.history(GUILD, user_id=ALICE, limit=2)] == [a3.id, a2.id]

    assert [j.id for j in await ledger.export_rows(GUILD, now=NOW)] == [a1.id, b1.id, a2.id, a3.id]
    assert await ledger.top_members(GUILD, now=NOW) == [(ALICE, 10), (BOB, 5)]
    assert await ledger.top_members(GUILD, limit=1, now=NOW) == [(ALICE, 10)]
    assert await ledger.top_members(GUILD, now=utc(2025, 2, 20)) == [(BOB, 5)]
