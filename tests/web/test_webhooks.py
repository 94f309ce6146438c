"""Magic Hour's webhook events posted to the running bot over real HTTP, and what the bot then does.

The fake Magic Hour's webhook sender signs events the way the real API does; the hand-made requests
here are the ones an attacker or a broken proxy would send.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from bot.ledger import JobStatus
from bot.magic_hour import PollPolicy
from tests.e2e.conftest import BotWorld, bot_world
from tests.fakes.interactions import make_attachment
from tests.fakes.magic_hour import FakeMagicHour
from tests.web.conftest import WEBHOOK_SECRET, event_body, signed

CREATE = "/v1/image-background-remover"
QUICK_FALLBACK = PollPolicy(first_delay=0.5, dense_start=0.5, dense_end=0.5, dense_interval=0.2, max_interval=0.5)


@contextlib.asynccontextmanager
async def webhook_world(tmp_path: Path, mh: FakeMagicHour, **kw: object) -> AsyncIterator[BotWorld]:
    async with bot_world(tmp_path, mh, http=True, MAGIC_HOUR_WEBHOOK_SECRET=WEBHOOK_SECRET, **kw) as world:  # type: ignore[arg-type]
        assert world.http_url is not None
        mh.send_webhooks(f"{world.http_url}/webhooks/magic-hour", WEBHOOK_SECRET)
        yield world


async def start_job(world: BotWorld) -> tuple[int, str]:
    payload = world.discord.slash_command("remove-background", {"image": make_attachment("cat.png")})
    return world.discord.dispatch(payload), payload["token"]


async def job_status(world: BotWorld, interaction_id: int, status: JobStatus, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while (job := await world.bot.ledger.get_job(interaction_id)) is None or job.status != status:
            await asyncio.sleep(0.02)


async def wait_created(mh: FakeMagicHour, count: int = 1) -> str:
    async with asyncio.timeout(10):
        while len(mh.jobs) < count:
            await asyncio.sleep(0.01)
    return list(mh.jobs)[count - 1]


def deliveries_with_files(world: BotWorld, token: str) -> int:
    return sum(1 for edit in world.discord.original_edits(token) if edit.files)


async def post(http: aiohttp.ClientSession, world: BotWorld, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    data = io.BytesIO(body) if len(body) > 1024 * 1024 else body  # aiohttp wants large bodies streamed
    async with http.post(f"{world.http_url}/webhooks/magic-hour", data=data, headers=headers) as response:
        text = await response.text()
        return response.status, json.loads(text) if text.startswith("{") else {}


# -- the webhook path --------------------------------------------------------------------------------


async def test_the_completed_event_delivers_the_result_with_zero_polls(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 0.5
    async with webhook_world(tmp_path, mh) as world:
        interaction_id, token = await start_job(world)
        await world.discord.finished(interaction_id, timeout=10)
        await job_status(world, interaction_id, JobStatus.COMPLETE)
        [job] = mh.jobs.values()
        assert job.polls == 0  # no GET /v1/image-projects/{id} at all: the event carried the download URL
        assert deliveries_with_files(world, token) == 1
        assert [e.files[0].data for e in world.discord.original_edits(token) if e.files] == [mh.output_bytes]
        assert [(d.type, d.status) for d in mh.webhook_deliveries] == [("image.started", 200), ("image.completed", 200)]
        record = await world.bot.ledger.get_job(interaction_id)
        assert record.delivered and record.credits_charged == 5


async def test_the_errored_event_fails_the_job_with_magic_hours_reason(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 0.4
    mh.script("error", code="no_subject", message="No subject was found in the image")
    async with webhook_world(tmp_path, mh) as world:
        interaction_id, token = await start_job(world)
        await world.discord.finished(interaction_id, timeout=10)
        await job_status(world, interaction_id, JobStatus.FAILED)
        record = await world.bot.ledger.get_job(interaction_id)
        assert record.error == "no_subject: No subject was found in the image"
        assert record.credits_charged == 0
        assert next(iter(mh.jobs.values())).polls == 0
        assert "No subject was found" in world.discord.original_edits(token)[-1].json["content"]


async def test_a_lost_event_is_caught_by_the_fallback_polls(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 0.3
    mh.drop_webhooks(2)  # both the started and the completed event are lost
    async with webhook_world(tmp_path, mh, webhook_poll=QUICK_FALLBACK) as world:
        interaction_id, token = await start_job(world)
        await world.discord.finished(interaction_id, timeout=10)
        await job_status(world, interaction_id, JobStatus.COMPLETE)
        assert [d.status for d in mh.webhook_deliveries] == [None, None]
        assert next(iter(mh.jobs.values())).polls >= 1
        assert deliveries_with_files(world, token) == 1
        assert world.bot.resources.project_events.misses == 1  # counted: three in a row and polling turns dense


async def test_a_cancelled_job_has_no_event_and_the_fallback_reports_it(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 0.3
    mh.script("canceled")
    async with webhook_world(tmp_path, mh, webhook_poll=QUICK_FALLBACK) as world:
        interaction_id, _ = await start_job(world)
        await world.discord.finished(interaction_id, timeout=10)
        await job_status(world, interaction_id, JobStatus.FAILED)
        assert [d.type for d in mh.webhook_deliveries] == ["image.started"]


async def test_duplicate_deliveries_deliver_once(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession
) -> None:
    mh.job_duration = 0.4
    mh.duplicate_webhooks = True
    async with webhook_world(tmp_path, mh) as world:
        interaction_id, token = await start_job(world)
        await job_status(world, interaction_id, JobStatus.COMPLETE)
        async with asyncio.timeout(5):
            while len(mh.webhook_deliveries) < 4:
                await asyncio.sleep(0.02)
        project_id = next(iter(mh.jobs))
        status, answer = await post(http, world, body := event_body(mh, "image.completed", project_id), signed(body))
        await asyncio.sleep(0.3)
        assert (status, answer["outcome"]) == (200, "settled")  # a copy after the job settled: nothing to do
        assert deliveries_with_files(world, token) == 1
        assert await world.bot.ledger.count_webhook_events() == 0  # a settled job keeps none of its events
        assert all(d.status == 200 for d in mh.webhook_deliveries)


# -- refusals -----------------------------------------------------------------------------------------


async def test_forged_stale_malformed_and_oversized_events_change_nothing(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession, caplog: object
) -> None:
    mh.job_duration = 60.0  # still rendering throughout
    async with webhook_world(tmp_path, mh) as world:
        interaction_id, token = await start_job(world)
        project_id = await wait_created(mh)
        await job_status(world, interaction_id, JobStatus.SUBMITTED)
        job = mh.jobs[project_id]
        job.duration = 0.0  # complete at Magic Hour, so a forged "completed" would look plausible
        body = event_body(mh, "image.completed", project_id)
        job.duration = 60.0

        forged = signed(body, secret="not the secret")
        stale = signed(body, timestamp=time.time() - 600)
        garbage = b'{"type": "image.completed", "payload": {"id": "%s"}}' % project_id.encode()
        too_big = b" " * (1024 * 1024 + 10) + body
        answers = [
            await post(http, world, body, forged),
            await post(http, world, body, stale),
            await post(http, world, body, {"Content-Type": "application/json"}),
            await post(http, world, garbage, signed(garbage)),
            await post(http, world, b"not json", signed(b"not json")),
            await post(http, world, too_big, signed(too_big)),
        ]
        assert [status for status, _ in answers] == [401, 400, 401, 400, 400, 413]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the size is counted as it arrives
            for _ in range(20):
                yield b" " * 65536
            yield body

        async with http.post(f"{world.http_url}/webhooks/magic-hour", data=chunks(), headers=signed(b"x")) as resp:
            assert resp.status == 413

        record = await world.bot.ledger.get_job(interaction_id)
        assert record.status is JobStatus.SUBMITTED and not record.delivered
        assert deliveries_with_files(world, token) == 0
        assert world.bot.resources.project_events.is_waiting(project_id)

    lines = [r.getMessage() for r in caplog.records if r.name == "bot.web"]  # type: ignore[attr-defined]
    refused = [line for line in lines if "refused" in line]
    assert len(refused) == 7
    assert not any(WEBHOOK_SECRET in line or "payload" in line or "signature" in line.split(":")[0] for line in refused)


async def test_unknown_projects_and_other_event_types_are_acknowledged_and_ignored(
    tmp_path: Path, mh: FakeMagicHour, http: aiohttp.ClientSession
) -> None:
    mh.job_duration = 0.2
    async with webhook_world(tmp_path, mh) as world:
        interaction_id, _ = await start_job(world)
        await job_status(world, interaction_id, JobStatus.COMPLETE)
        project = mh._project_body(next(iter(mh.jobs.values())))
        stranger = {**project, "id": "cm_not_ours", "name": "Someone else's job"}
        video = {"type": "video.completed", "payload": {"id": "cm_video"}}
        for event in ({"type": "image.completed", "payload": stranger}, video):
            body = json.dumps(event).encode()
            status, answer = await post(http, world, body, signed(body))
            assert status == 200
            assert answer["outcome"] in ("unknown_project", "ignored_type")
        assert len(world.discord.original_edits(world.discord.token_of(interaction_id))) >= 1
        assert (await world.bot.ledger.get_job(interaction_id)).status is JobStatus.COMPLETE


# -- a held job ----------------------------------------------------------------------------------------


async def test_a_held_job_is_found_by_its_name_delivered_and_settled(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 1.5
    mh.fail_next("POST", CREATE, delay=2.0, after_processing=True)  # the job exists; the answer never comes
    mh.drop_webhooks(1)  # image.started is lost: the first event comes after the create gave up
    async with webhook_world(tmp_path, mh, MAGIC_HOUR_REQUEST_TIMEOUT="0.5") as world:
        interaction_id, token = await start_job(world)
        await job_status(world, interaction_id, JobStatus.HELD)
        [fake_job] = mh.jobs.values()
        assert fake_job.name.endswith(f" #{interaction_id}")
        await job_status(world, interaction_id, JobStatus.COMPLETE, timeout=10)
        async with asyncio.timeout(5):
            while not (record := await world.bot.ledger.get_job(interaction_id)).delivered:
                await asyncio.sleep(0.02)
        assert record.project_id == fake_job.id
        assert record.credits_charged == 5
        assert fake_job.downloaded_at is not None
        assert len(mh.jobs) == 1 and mh.creates == 1  # found, never re-created
        assert deliveries_with_files(world, token) == 1


async def test_a_held_image_of_a_request_is_found_by_its_position_and_follows_on_its_own(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    mh.job_duration = 1.0
    mh.script("complete", duration=4.0)  # the first create: its answer never comes, and it ends last
    mh.fail_next("POST", CREATE, delay=2.0, after_processing=True)
    async with webhook_world(tmp_path, mh, MAGIC_HOUR_REQUEST_TIMEOUT="0.5") as world:
        payload = world.discord.slash_command(
            "remove-background", {"image": make_attachment("a.png"), "image2": make_attachment("b.png")}
        )
        interaction_id, token = world.discord.dispatch(payload), payload["token"]
        await wait_created(mh, 2)
        held = next(job for job in mh.jobs.values() if job.duration == 4.0)
        position = 1 if held.name.endswith(f"#{interaction_id}/1") else 0
        assert held.name.endswith(f"#{interaction_id}" + ("/1" if position else ""))
        async with asyncio.timeout(10):
            while not (record := await world.bot.ledger.get_job(interaction_id, position)).delivered:
                await asyncio.sleep(0.02)
        assert record.status is JobStatus.COMPLETE and record.project_id == held.id
        [final] = [edit for edit in world.discord.original_edits(token) if edit.files]
        assert [f.filename for f in final.files] == [f"{'ab'[1 - position]}-no-background.png"]
        assert "can't tell whether your job started" in final.json["content"]
        late = [m for m in world.discord.followups(token) if m.files]
        assert [f.filename for m in late for f in m.files] == [f"{'ab'[position]}-no-background.png"]
        assert mh.creates == 2  # found by its name, never re-created
