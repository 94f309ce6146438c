"""A job from reservation to delivered result, in the order that keeps credits and results safe."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.jobs import ImageJob
from bot.ledger import JobStatus
from bot.magic_hour import JobFailedError, ProjectStatus
from tests.fakes.magic_hour import CREATE_PATH, CREDITS_PER_JOB, PNG_BYTES, FakeJob
from tests.jobs.conftest import GUILD_ID, TOKEN, USER_ID, RecordingEvents, World, eventually


async def test_a_job_is_reserved_created_polled_delivered_and_settled(world: World) -> None:
    runner = world.make_runner()
    request = world.request(background_url="https://cdn.discordapp.com/attachments/1/2/beach.jpg?ex=1&hm=x")
    events = RecordingEvents(probe=lambda: world.ledger.get_job(request.interaction_id))

    result = await runner.run(request, events)

    assert result is not None
    assert events.without_status() == ["started", "deliver"]
    assert events.statuses() == [ProjectStatus.QUEUED, ProjectStatus.RENDERING, ProjectStatus.COMPLETE]
    assert result.delivered[0].result is events.result()
    assert events.delivered_bytes == PNG_BYTES
    assert result.credits_charged == CREDITS_PER_JOB
    # Delivery happens before settling: a crash in between leaves a submitted job that the next start re-delivers.
    assert events.probed.status is JobStatus.SUBMITTED
    assert result.usage.reserved == CREDITS_PER_JOB and result.usage.used == 0

    [project_id] = world.mh.jobs
    record = await world.ledger.get_job(request.interaction_id)
    assert record.status is JobStatus.COMPLETE
    assert record.project_id == project_id == events.result().project.id
    assert record.credits_charged == CREDITS_PER_JOB
    usage = await world.ledger.usage(GUILD_ID, user_id=USER_ID)
    assert (usage.used, usage.reserved, usage.member_used) == (CREDITS_PER_JOB, 0, CREDITS_PER_JOB)
    assert world.settled == [GUILD_ID]

    sent = world.sent()
    assert sent[0] == ("POST", CREATE_PATH)
    assert set(sent[1:-1]) == {("GET", f"/v1/image-projects/{project_id}")}
    assert sent[-1] == ("GET", f"/outputs/{project_id}/output.png")
    assert world.create_bodies() == [
        {
            "assets": {"image_file_path": request.images[0].url, "background_image_file_path": request.background_url},
            "name": request.images[0].name,
        }
    ]
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in world.mh.requests if r.path.startswith("/v1"))
    assert all("Authorization" not in r.headers for r in world.mh.requests if r.path.startswith("/outputs"))


async def test_the_settled_charge_is_the_projects_not_the_estimate(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Magic Hour's final credits_charged is what counts, whatever the create answer estimated."""
    runner = world.make_runner()
    request = world.request()
    original = world.mh._project_body

    def cheaper(job: FakeJob) -> dict[str, Any]:  # the project ends up cheaper than the create answer said
        body = original(job)
        if body["status"] == "complete":
            body["credits_charged"] = body["total_frame_cost"] = 3
        return body

    monkeypatch.setattr(world.mh, "_project_body", cheaper)
    result = await runner.run(request, RecordingEvents())

    assert result is not None and result.credits_charged == 3
    record = await world.ledger.get_job(request.interaction_id)
    assert (record.status, record.credits_charged) == (JobStatus.COMPLETE, 3)
    assert (await world.ledger.usage(GUILD_ID)).used == 3


async def test_a_job_waits_its_turn_and_is_told_its_place(world: World) -> None:
    runner = world.make_runner(max_concurrent=1)
    first_events, second_events = RecordingEvents(hold=True), RecordingEvents()
    first = asyncio.create_task(runner.run(world.request(), first_events))
    await asyncio.wait_for(first_events.held.wait(), 5)
    second_request = world.request(user_id=USER_ID + 1)
    second = asyncio.create_task(runner.run(second_request, second_events))
    await eventually(lambda: second_events.names == ["queued"])

    assert world.mh.creates == 1  # the second job holds its credits but has not reached Magic Hour
    assert (await world.ledger.get_job(second_request.interaction_id)).status is JobStatus.RESERVED
    first_events.release.set()
    assert await first is not None and await second is not None

    assert second_events.named("queued") == [(1,)]
    assert second_events.without_status() == ["queued", "started", "deliver"]
    assert world.mh.creates == 2
    assert (await world.ledger.get_job(second_request.interaction_id)).status is JobStatus.COMPLETE


async def test_a_failed_delivery_still_settles_the_job(world: World) -> None:
    runner = world.make_runner()
    request = world.request()
    events = RecordingEvents(deliver_error=RuntimeError("Discord answered 500"))

    result = await runner.run(request, events)

    assert result is not None
    assert events.without_status() == ["started", "deliver"]  # not reported as a failure: the job did succeed
    record = await world.ledger.get_job(request.interaction_id)
    assert (record.status, record.credits_charged) == (JobStatus.COMPLETE, CREDITS_PER_JOB)
    assert world.settled == [GUILD_ID]


async def test_delivered_only_when_delivery_succeeded(world: World) -> None:
    runner = world.make_runner()
    request = world.request()
    await runner.run(request, RecordingEvents(deliver_error=RuntimeError("Discord answered 500")))

    assert (await world.ledger.get_job(request.interaction_id)).delivered is False


async def test_an_output_that_cannot_be_fetched_is_delivered_as_a_link(world: World) -> None:
    runner = world.make_runner()
    request = world.request()
    world.mh.expire_next_downloads(2)  # the URL and its refreshed replacement both refused
    events = RecordingEvents()

    result = await runner.run(request, events)

    assert result is not None and events.result().file is None
    assert events.without_status() == ["started", "deliver"]
    assert events.result().project.downloads  # the link the member is given instead
    record = await world.ledger.get_job(request.interaction_id)
    assert (record.status, record.credits_charged) == (JobStatus.COMPLETE, CREDITS_PER_JOB)


@pytest.mark.parametrize(
    ("final_status", "code", "message"),
    [
        ("error", "render_failed", "The image could not be processed"),
        ("canceled", None, None),
    ],
)
async def test_a_job_that_ends_badly_is_settled_at_what_magic_hour_kept(
    world: World, final_status: str, code: str | None, message: str | None
) -> None:
    runner = world.make_runner()
    request = world.request()
    world.mh.script(final_status, code=code, message=message)
    refreshes: list[ImageJob] = []

    async def refresh(old: ImageJob) -> ImageJob:
        refreshes.append(old)
        return old

    events = RecordingEvents()
    assert await runner.run(request, events, refresh) is None

    assert events.without_status() == ["started", "failed"]
    assert events.statuses()[-1] == ProjectStatus(final_status)
    error = events.failure()
    assert isinstance(error, JobFailedError)
    assert error.code == (code or "canceled")
    assert refreshes == []  # not an input problem: a fresh URL would not help
    record = await world.ledger.get_job(request.interaction_id)
    assert record.status is JobStatus.FAILED
    assert record.credits_charged == error.project.credits_charged
    if final_status == "error":
        assert record.credits_charged == 0  # Magic Hour refunds failed renders
        assert record.error == f"{code}: {message}"
    assert world.mh.creates == 1
    assert world.mh.count("GET", "/outputs/") == 0
    assert world.settled == [GUILD_ID]


async def test_an_expired_input_url_is_refreshed_and_the_job_retried(world: World) -> None:
    runner = world.make_runner()
    request = world.request()
    world.mh.fetchable = lambda value: "hm=fresh" in value  # Discord's CDN refuses the expired signature
    refreshes: list[ImageJob] = []

    async def refresh(old: ImageJob) -> ImageJob:
        refreshes.append(old)
        return old.with_inputs(old.image.url.replace("hm=stale", "hm=fresh"), old.background_url)

    events = RecordingEvents()
    result = await runner.run(request, events, refresh)

    assert result is not None
    assert refreshes == [request.image(0)]
    assert events.without_status() == ["started", "deliver"]
    assert ProjectStatus.ERROR in events.statuses()  # the first project failed to fetch the input
    bodies = world.create_bodies()
    assert [body["assets"]["image_file_path"] for body in bodies] == [
        request.images[0].url,
        request.images[0].url.replace("hm=stale", "hm=fresh"),
    ]
    _, second_id = world.mh.jobs
    record = await world.ledger.get_job(request.interaction_id)
    assert record.status is JobStatus.COMPLETE
    assert record.project_id == second_id == events.result().project.id
    assert record.credits_charged == CREDITS_PER_JOB  # the failed first attempt was refunded, not added
    assert (await world.ledger.usage(GUILD_ID)).used == CREDITS_PER_JOB


@pytest.mark.parametrize("refresher_outcome", ["none", "raises", "still stale"])
async def test_an_expired_input_without_a_fresh_copy_fails_and_is_refunded(
    world: World, refresher_outcome: str
) -> None:
    runner = world.make_runner()
    request = world.request()
    world.mh.fetchable = lambda value: "hm=fresh" in value
    calls: list[ImageJob] = []

    async def refresh(old: ImageJob) -> ImageJob | None:
        calls.append(old)
        if refresher_outcome == "raises":
            raise LookupError("the message was deleted")
        return old if refresher_outcome == "still stale" else None

    events = RecordingEvents()
    assert await runner.run(request, events, refresh) is None

    assert len(calls) == 1  # one refresh per job, never a loop
    assert events.without_status() == ["started", "failed"]
    error = events.failure()
    assert isinstance(error, JobFailedError) and error.code == "invalid_input"
    assert world.mh.creates == (2 if refresher_outcome == "still stale" else 1)
    record = await world.ledger.get_job(request.interaction_id)
    assert (record.status, record.credits_charged) == (JobStatus.FAILED, 0)
    assert record.project_id == list(world.mh.jobs)[-1]
    assert (await world.ledger.usage(GUILD_ID)).total == 0
