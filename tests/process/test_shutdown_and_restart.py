"""A running job across process boundaries: SIGTERM drains it, kill -9 leaves it for the next start."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bot.ledger import JobRecord, JobStatus, Ledger
from bot.ledger.schema import jobs, requests
from tests.fakes.discord_api import RecordedRequest
from tests.fakes.interactions import make_attachment, make_member, make_user
from tests.fakes.magic_hour import PNG_BYTES
from tests.process.conftest import Fakes

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


async def start_job(fakes: Fakes, **env: str) -> tuple[int, str]:
    """Start a bot, run /remove-background through the gateway, return once Magic Hour has the job."""
    await fakes.start_bot("run", **env)
    await fakes.gateway.wait_ready(count=len(fakes.processes), timeout=20)
    payload = fakes.harness.slash_command("remove-background", {"image": make_attachment("cat.png")})
    interaction_id = await fakes.gateway.push_interaction(payload)
    await fakes.api.wait_for(lambda _: bool(fakes.api.callbacks(interaction_id)), timeout=10)
    assert fakes.api.callbacks(interaction_id)[0].json == {"type": 5}, "expected a deferred reply"
    await fakes.wait_mh_creates(1)
    return interaction_id, payload["token"]


def png_edits(fakes: Fakes, token: str) -> list[RecordedRequest]:
    return [r for r in fakes.api.original_edits(token) if r.files and r.status == 200]


async def test_sigterm_lets_the_running_job_finish_and_exits_0(fakes: Fakes) -> None:
    interaction_id, token = await start_job(fakes, SHUTDOWN_GRACE_SECONDS="15")
    bot = fakes.processes[0]
    bot.send(signal.SIGTERM)
    assert await bot.wait(timeout=20) == 0, bot.output

    edits = png_edits(fakes, token)
    assert len(edits) == 1, bot.output
    assert edits[0].files[0].data == PNG_BYTES and edits[0].files[0].data.startswith(PNG_MAGIC)
    record = await fakes.ledger_job(interaction_id)
    assert record is not None and record.status == JobStatus.COMPLETE
    assert record.credits_charged == 5 and record.delivered
    assert "SIGTERM received" in bot.stderr
    await fakes.gateway.wait_disconnected(timeout=5)


async def test_sigterm_past_the_grace_period_tells_the_member_and_keeps_the_job(fakes: Fakes) -> None:
    fakes.mh.job_duration = 5.0
    interaction_id, token = await start_job(fakes, SHUTDOWN_GRACE_SECONDS="0.5")
    bot = fakes.processes[0]
    bot.send(signal.SIGTERM)
    assert await bot.wait(timeout=10) == 0, bot.output

    assert png_edits(fakes, token) == []
    texts = [(r.json or {}).get("content", "") for r in fakes.api.original_edits(token)]
    assert "restarting" in texts[-1], texts
    record = await fakes.ledger_job(interaction_id)
    assert record is not None and record.status == JobStatus.SUBMITTED
    assert record.project_id in fakes.mh.jobs and record.credits_reserved == 5


async def kill_mid_job(fakes: Fakes) -> tuple[int, str]:
    fakes.mh.job_duration = 3.0
    interaction_id, token = await start_job(fakes)
    record = await fakes.wait_job(interaction_id, JobStatus.SUBMITTED)
    fakes.processes[0].send(signal.SIGKILL)
    assert await fakes.processes[0].wait(timeout=10) == -signal.SIGKILL
    assert record.project_id in fakes.mh.jobs
    return interaction_id, token


async def test_after_kill_9_a_restart_resumes_the_job_and_edits_the_reply(fakes: Fakes) -> None:
    interaction_id, token = await kill_mid_job(fakes)
    assert png_edits(fakes, token) == []

    restarted = await fakes.start_bot("run")
    await fakes.api.wait_for(lambda _: bool(png_edits(fakes, token)), timeout=20)
    record = await fakes.wait_job(interaction_id, JobStatus.COMPLETE)
    assert record.credits_charged == 5
    assert png_edits(fakes, token)[0].files[0].data == PNG_BYTES
    assert fakes.mh.created == 1, "the restart must poll the job it had, not create another"
    restarted.send(signal.SIGTERM)
    assert await restarted.wait(timeout=20) == 0, restarted.output
    assert "resuming 1 job(s)" in restarted.stderr


async def test_after_kill_9_an_expired_reply_becomes_a_channel_post_mentioning_the_member(fakes: Fakes) -> None:
    interaction_id, token = await kill_mid_job(fakes)
    async with await Ledger.open(fakes.database_url) as ledger, ledger.engine.begin() as conn:
        past = datetime.now(UTC) - timedelta(minutes=16)  # the 15-minute interaction token has run out
        await conn.execute(update(jobs).where(jobs.c.interaction_id == interaction_id).values(created_at=past))
        # The reply route (and its token's age) is stored once per request since schema v5.
        await conn.execute(update(requests).where(requests.c.interaction_id == interaction_id).values(created_at=past))

    fakes.api.expire_interaction(interaction_id)  # and Discord refuses the token from now on
    edits_before = len(fakes.api.original_edits(token))

    restarted = await fakes.start_bot("run")
    channel_id = fakes.harness.channel_id
    await fakes.api.wait_for(lambda _: bool(fakes.api.channel_messages(channel_id)), timeout=20)
    record = await fakes.wait_job(interaction_id, JobStatus.COMPLETE)
    assert record.credits_charged == 5

    [post] = fakes.api.channel_messages(channel_id)
    user_id = fakes.harness.user.id
    assert post.status == 200 and post.json["content"].startswith(f"<@{user_id}>")
    assert [int(u) for u in post.json["allowed_mentions"]["users"]] == [user_id]
    assert not post.json["allowed_mentions"].get("parse"), "only the member may be pinged"
    assert post.files and post.files[0].data == PNG_BYTES
    assert len(fakes.api.original_edits(token)) == edits_before, "an expired token must not even be tried"
    restarted.send(signal.SIGTERM)
    assert await restarted.wait(timeout=20) == 0, restarted.output


async def test_sigterm_during_a_slow_create_records_the_project_and_promises_nothing(fakes: Fakes) -> None:
    """The create outlives the grace period but answers during the drain: its project id is kept."""
    fakes.mh.fail_next("POST", "/v1/image-background-remover", delay=2.0)
    interaction_id, token = await start_job(fakes, SHUTDOWN_GRACE_SECONDS="0.2")
    bot = fakes.processes[0]
    bot.send(signal.SIGTERM)
    assert await bot.wait(timeout=20) == 0, bot.output

    record = await fakes.ledger_job(interaction_id)
    assert record is not None and record.status == JobStatus.SUBMITTED, record
    assert record.project_id in fakes.mh.jobs
    texts = [(r.json or {}).get("content", "") for r in fakes.api.original_edits(token)]
    assert "can't promise a result" in texts[-1] and "will be posted" not in texts[-1], texts

    restarted = await fakes.start_bot("run")  # the confirmed job is resumed and delivered after all
    await fakes.api.wait_for(lambda _: bool(png_edits(fakes, token)), timeout=20)
    assert (await fakes.wait_job(interaction_id, JobStatus.COMPLETE)).credits_charged == 5
    assert fakes.mh.created == 1
    restarted.send(signal.SIGTERM)
    assert await restarted.wait(timeout=20) == 0, restarted.output


async def test_sigterm_during_a_create_that_never_answers_holds_the_credits(fakes: Fakes) -> None:
    fakes.mh.fail_next("POST", "/v1/image-background-remover", delay=30.0)
    interaction_id, token = await start_job(fakes, SHUTDOWN_GRACE_SECONDS="0.2")
    bot = fakes.processes[0]
    bot.send(signal.SIGTERM)
    assert await bot.wait(timeout=20) == 0, bot.output

    record = await fakes.ledger_job(interaction_id)
    assert record is not None and record.status == JobStatus.HELD, record  # held, not left "reserved"
    assert record.project_id is None and "shut down" in (record.error or "")
    texts = [(r.json or {}).get("content", "") for r in fakes.api.original_edits(token)]
    assert "will be posted" not in texts[-1], texts


async def test_after_kill_9_a_queued_job_is_released_and_a_job_mid_create_is_held(fakes: Fakes) -> None:
    """Queued (never sent) costs nothing on the next start; a create that may have happened stays counted."""
    fakes.mh.fail_next("POST", "/v1/image-background-remover", delay=30.0)  # the first create hangs
    await fakes.start_bot("run", MAX_CONCURRENT_JOBS="1")
    await fakes.gateway.wait_ready(timeout=20)
    sending = fakes.harness.slash_command("remove-background", {"image": make_attachment("a.png")})
    sending_id = await fakes.gateway.push_interaction(sending)
    await fakes.wait_mh_creates(1)
    other = fakes.harness.slash_command(
        "remove-background", {"image": make_attachment("b.png")}, user=make_member(make_user("bob"))
    )
    queued_id = await fakes.gateway.push_interaction(other)
    await fakes.api.wait_for(
        lambda _: any("Queued" in (e.json or {}).get("content", "") for e in fakes.api.original_edits(other["token"])),
        timeout=10,
    )
    fakes.processes[0].send(signal.SIGKILL)
    assert await fakes.processes[0].wait(timeout=10) == -signal.SIGKILL

    restarted = await fakes.start_bot("run")
    await fakes.gateway.wait_ready(count=2, timeout=20)
    released = await fakes.wait_job(queued_id, JobStatus.REFUNDED)
    assert released.credits_charged == 0
    held = await fakes.wait_job(sending_id, JobStatus.HELD)
    assert held.project_id is None and held.credits_reserved == 5
    assert fakes.mh.creates == 1, "neither job may be sent again"
    restarted.send(signal.SIGTERM)
    assert await restarted.wait(timeout=20) == 0, restarted.output


async def test_after_kill_9_mid_batch_a_restart_resumes_every_image_and_delivers_them_together(
    fakes: Fakes,
) -> None:
    fakes.mh.job_duration = 3.0
    await fakes.start_bot("run")
    await fakes.gateway.wait_ready(count=1, timeout=20)
    options = {
        "image": make_attachment("a.png"),
        "image2": make_attachment("b.png"),
        "image3": make_attachment("c.png"),
    }
    payload = fakes.harness.slash_command("remove-background", options)
    interaction_id = await fakes.gateway.push_interaction(payload)
    await fakes.wait_mh_creates(3)
    for position in range(3):
        async with asyncio.timeout(10):
            while (job := await ledger_job(fakes, interaction_id, position)) is None or not job.project_id:
                await asyncio.sleep(0.05)
    fakes.processes[0].send(signal.SIGKILL)
    assert await fakes.processes[0].wait(timeout=10) == -signal.SIGKILL
    token = payload["token"]
    assert png_edits(fakes, token) == []

    restarted = await fakes.start_bot("run")
    await fakes.api.wait_for(lambda _: bool(png_edits(fakes, token)), timeout=20)
    [final] = png_edits(fakes, token)
    assert [f.filename for f in final.files] == ["a-no-background.png", "b-no-background.png", "c-no-background.png"]
    assert "from 3 of 3 images" in final.json["content"]
    for position in range(3):  # settled right after the delivery
        async with asyncio.timeout(10):
            while (job := await ledger_job(fakes, interaction_id, position)) is None or not job.delivered:
                await asyncio.sleep(0.05)
        assert job.status is JobStatus.COMPLETE and job.credits_charged == 5
    assert fakes.mh.created == 3, "the restart must poll the jobs it had, not create more"
    restarted.send(signal.SIGTERM)
    assert await restarted.wait(timeout=20) == 0, restarted.output
    assert "resuming 3 job(s) of 1 request(s)" in restarted.stderr


async def ledger_job(fakes: Fakes, interaction_id: int, position: int) -> JobRecord | None:
    async with await Ledger.open(fakes.database_url) as ledger:
        return await ledger.get_job(interaction_id, position)
