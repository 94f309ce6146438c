"""Held jobs, their release, shard-aware recovery, delivery claims and token clean-up (issue 8)."""

import asyncio
from datetime import timedelta

from sqlalchemy import update

from bot.ledger import INTERRUPTED_ERROR, JobStatus, Ledger
from bot.ledger.schema import jobs

from .conftest import NOW, Backend
from .steps import send, settle, submit
from .test_ledger import GUILD, OTHER_GUILD, reserve, utc


async def held_job(ledger: Ledger, **kwargs):
    """A job whose create was on its way when the process died: `recover_interrupted` holds it."""
    job = await reserve(ledger, **kwargs)
    await send(ledger, job.interaction_id)
    return job


async def test_held_summary_counts_unconfirmed_jobs_and_since_when(ledger: Ledger) -> None:
    assert (await ledger.held(GUILD)).count == 0
    old = await held_job(ledger, now=utc(2025, 2, 20))  # last month: held, but outside this month's usage
    recent = await held_job(ledger)
    resumable = await reserve(ledger)
    await submit(ledger, resumable.interaction_id, project_id="p-ok")  # has a project id: polled, not held
    await held_job(ledger, guild=OTHER_GUILD)
    await ledger.recover_interrupted()

    held = await ledger.held(GUILD)
    assert (held.count, held.credits, held.since) == (2, 10, utc(2025, 2, 20))
    usage = await ledger.usage(GUILD, now=NOW)
    assert (usage.held, usage.held_since, usage.reserved) == (5, NOW, 10)
    assert {old.interaction_id, recent.interaction_id} == {
        j.interaction_id for j in await ledger.history(GUILD) if j.status is JobStatus.HELD
    }
    assert all(j.project_id is None for j in await ledger.history(GUILD) if j.status is JobStatus.HELD)


async def test_release_held_frees_credits_records_who_and_is_idempotent(ledger: Ledger) -> None:
    first = await held_job(ledger)
    second = await held_job(ledger)
    still_running = await held_job(ledger)
    other = await held_job(ledger, guild=OTHER_GUILD)
    await ledger.recover_interrupted()
    assert (await ledger.usage(GUILD, now=NOW)).total == 15

    released = await ledger.release_held(GUILD, by="owner alice#1", exclude=[still_running.interaction_id])
    assert (released.count, released.credits) == (2, 10)
    assert released.interaction_ids == tuple(sorted([first.interaction_id, second.interaction_id]))
    job = await ledger.get_job(first.interaction_id)
    assert job is not None and (job.status, job.credits_charged) == (JobStatus.REFUNDED, 0)
    assert job.error == f"released by owner alice#1 at {NOW.isoformat(timespec='seconds')} (was: {INTERRUPTED_ERROR})"
    usage = await ledger.usage(GUILD, now=NOW)
    assert (usage.total, usage.held) == (5, 5)
    # Idempotent, and the other server's and the excluded job are untouched.
    assert (await ledger.release_held(GUILD, by="again", exclude=[still_running.interaction_id])).count == 0
    assert (await ledger.get_job(other.interaction_id)).status is JobStatus.HELD
    assert (await ledger.get_job(still_running.interaction_id)).status is JobStatus.HELD
    # Concurrent releases free each job once.
    results = await asyncio.gather(*(ledger.release_held(GUILD, by=f"r{i}") for i in range(5)))
    assert sorted(r.count for r in results) == [0, 0, 0, 0, 1]


async def test_recover_only_touches_the_guilds_this_process_owns(ledger: Ledger) -> None:
    mine_queued = await reserve(ledger)
    theirs_queued = await reserve(ledger, guild=OTHER_GUILD)
    theirs_sent = await held_job(ledger, guild=OTHER_GUILD)
    mine_running = await reserve(ledger)
    await submit(ledger, mine_running.interaction_id, project_id="p-mine")
    theirs_running = await reserve(ledger, guild=OTHER_GUILD)
    await submit(ledger, theirs_running.interaction_id, project_id="p-theirs")

    to_poll = await ledger.recover_interrupted(lambda guild_id: guild_id == GUILD)
    assert [j.project_id for j in to_poll] == ["p-mine"]
    assert (await ledger.get_job(mine_queued.interaction_id)).status is JobStatus.REFUNDED
    assert (await ledger.get_job(theirs_queued.interaction_id)).status is JobStatus.RESERVED
    assert (await ledger.get_job(theirs_sent.interaction_id)).status is JobStatus.SENDING


async def test_an_answer_without_a_storable_project_id_is_held(ledger: Ledger) -> None:
    job = await held_job(ledger)
    stored = await ledger.mark_submitted(job.interaction_id, project_id="x" * 300, credits_charged=5)
    assert stored is not None and stored.status is JobStatus.HELD and stored.project_id is None
    assert "too long" in (stored.error or "")
    assert await ledger.recover_interrupted() == []  # nothing to poll: it cannot be
    assert (await ledger.held(GUILD)).credits == 5


async def test_claim_delivery_lets_exactly_one_process_deliver(backend: Backend) -> None:
    old, new = await backend.open(), await backend.open()  # two processes overlapping during a deploy
    job = await reserve(old)
    claims = await asyncio.gather(
        *(ledger.claim_delivery(job.interaction_id, name) for ledger, name in [(old, "old"), (new, "new")] * 5)
    )
    winners = {name for ok, (_, name) in zip(claims, [(old, "old"), (new, "new")] * 5, strict=True) if ok}
    assert len(winners) == 1
    [winner] = winners
    loser = "new" if winner == "old" else "old"
    assert await old.claim_delivery(job.interaction_id, winner) is True  # a retried claim by the holder
    assert await old.claim_delivery(job.interaction_id, loser) is False
    await new.mark_delivered(job.interaction_id)
    assert await old.claim_delivery(job.interaction_id, winner) is False  # delivered: nobody delivers again


async def test_a_stale_delivery_claim_can_be_taken_over(backend: Backend, ledger: Ledger) -> None:
    job = await reserve(ledger)
    assert await ledger.claim_delivery(job.interaction_id, "dead-process") is True
    async with backend.raw_engine().begin() as conn:
        await conn.execute(
            update(jobs)
            .where(jobs.c.interaction_id == job.interaction_id)
            .values(delivery_claimed_at=NOW - timedelta(minutes=6))
        )
    assert await ledger.claim_delivery(job.interaction_id, "successor") is True
    assert (await ledger.get_job(job.interaction_id)).delivery_owner == "successor"


async def test_clear_expired_tokens_only_on_final_jobs_past_15_minutes(ledger: Ledger) -> None:
    early = NOW - timedelta(minutes=20)
    done = await reserve(ledger, now=early, interaction_token="tok-done")
    await settle(ledger, done.interaction_id)
    refunded = await reserve(ledger, now=early, interaction_token="tok-refunded")
    await ledger.release(refunded.interaction_id, error="422")
    running = await reserve(ledger, now=early, interaction_token="tok-running")
    fresh = await reserve(ledger, now=NOW - timedelta(minutes=5), interaction_token="tok-fresh")
    await settle(ledger, fresh.interaction_id)

    assert await ledger.clear_expired_tokens(NOW) == 2
    tokens = {
        j.interaction_id: (await ledger.get_request(j.request_id)).origin.token
        for j in (done, refunded, running, fresh)
    }
    assert tokens == {
        done.interaction_id: None,
        refunded.interaction_id: None,
        running.interaction_id: "tok-running",
        fresh.interaction_id: "tok-fresh",
    }
    assert await ledger.clear_expired_tokens(NOW) == 0
