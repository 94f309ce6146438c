"""Webhooks where they meet other features: a private request resolved after its token expired, events that
come while the create is still in flight, and events of projects that are not the bot's."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest

from bot.ledger import JobStatus
from tests.e2e.conftest import BotWorld
from tests.fakes.interactions import make_attachment
from tests.fakes.magic_hour import FakeMagicHour
from tests.web.conftest import signed
from tests.web.test_webhooks import CREATE, job_status, post, webhook_world

EPHEMERAL = 1 << 6


def dm_messages(world: BotWorld) -> list[dict]:
    opened = [r for r in world.discord.api.find("POST", r"^/users/@me/channels$") if r.status == 200]
    channels = {int(r.response["id"]) for r in opened}
    return [m.json | {"files": m.files} for c in channels for m in world.discord.channel_messages(c)]


@pytest.mark.parametrize("ending", ["complete", "error"])
async def test_a_private_held_request_found_after_its_token_expired_is_never_posted_in_the_channel(
    tmp_path: Path, mh: FakeMagicHour, ending: str
) -> None:
    mh.job_duration = 3.0  # long enough that the token is expired (below) well before the job's event comes
    if ending == "error":
        mh.script("error", code="render_failed", message="No subject found")
    mh.fail_next("POST", CREATE, delay=4.0, after_processing=True)  # the job exists; the answer never comes
    mh.drop_webhooks(1)  # image.started is lost: the first event comes after the create gave up
    async with webhook_world(tmp_path, mh, MAGIC_HOUR_REQUEST_TIMEOUT="0.5") as world:
        payload = world.discord.slash_command(
            "remove-background", {"image": make_attachment("secret-selfie.png"), "private": True}
        )
        interaction_id = world.discord.dispatch(payload)
        await job_status(world, interaction_id, JobStatus.HELD)
        async with asyncio.timeout(5):  # the member was told the outcome is unknown, in the (ephemeral) reply
            while not any(
                "can't tell" in e.json.get("content", "") for e in world.discord.original_edits(payload["token"])
            ):
                await asyncio.sleep(0.02)
        world.discord.api.expire_interaction(interaction_id)  # 15 minutes later, as far as Discord knows
        final = JobStatus.COMPLETE if ending == "complete" else JobStatus.FAILED
        await job_status(world, interaction_id, final, timeout=10)
        async with asyncio.timeout(5):
            while not dm_messages(world):
                await asyncio.sleep(0.02)

        assert world.discord.channel_messages(world.discord.channel_id) == []  # nothing in the server's channel
        [dm] = dm_messages(world)
        if ending == "complete":
            assert [f.filename for f in dm["files"]] == ["secret-selfie-no-background.png"]
            async with asyncio.timeout(5):  # settled and marked just after the DM went out
                while not (await world.bot.ledger.get_job(interaction_id)).delivered:
                    await asyncio.sleep(0.02)
        else:
            assert "No subject found" in dm["content"] and not dm["files"]
        answers = world.discord.callbacks(interaction_id) + world.discord.followups(payload["token"])
        assert all(a.json.get("data", a.json).get("flags", 0) & EPHEMERAL for a in answers if a.json)


async def test_events_that_arrive_while_the_create_is_in_flight_resolve_its_job(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    """The job takes 0.3 s at Magic Hour; its create's answer is lost after 1 s. Both events came meanwhile:
    the job is never held, is delivered once, and is charged once."""
    mh.job_duration = 0.3
    mh.fail_next("POST", CREATE, delay=3.0, after_processing=True)
    async with webhook_world(tmp_path, mh, MAGIC_HOUR_REQUEST_TIMEOUT="1.0") as world:
        payload = world.discord.slash_command("remove-background", {"image": make_attachment("cat.png")})
        interaction_id = world.discord.dispatch(payload)
        await job_status(world, interaction_id, JobStatus.COMPLETE, timeout=10)
        await world.discord.finished(interaction_id, timeout=10)

        record = await world.bot.ledger.get_job(interaction_id)
        [project_id] = mh.jobs
        assert (record.project_id, record.credits_charged, record.delivered) == (project_id, 5, True)
        assert mh.creates == 1  # never re-created
        [final] = [edit for edit in world.discord.original_edits(payload["token"]) if edit.files]
        assert [f.filename for f in final.files] == ["cat-no-background.png"]
        assert "can't tell whether" not in final.json["content"]
        usage = await world.bot.ledger.usage(world.discord.guild_id)
        assert (usage.used, usage.reserved, usage.held) == (5, 0, 0)
        assert await world.bot.ledger.verify() == []


async def test_events_of_projects_that_are_not_the_bots_are_acknowledged_and_not_stored(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession
) -> None:
    mh.job_duration = 0.2
    async with webhook_world(tmp_path, mh) as world:
        payload = world.discord.slash_command("remove-background", {"image": make_attachment("cat.png")})
        interaction_id = world.discord.dispatch(payload)
        await job_status(world, interaction_id, JobStatus.COMPLETE)
        template = mh._project_body(next(iter(mh.jobs.values())))
        for n in range(40):  # the owner's other use of the account, a staging bot, …
            stranger = {**template, "id": f"cm_other_{n}", "name": f"Product shot {n} #12345"}
            body = json.dumps({"type": "image.completed", "payload": stranger}).encode()
            status, answer = await post(http, world, body, signed(body))
            assert (status, answer["outcome"]) == (200, "unknown_project")
        assert await world.bot.ledger.count_webhook_events() == 0  # the bot's own events went with its job
