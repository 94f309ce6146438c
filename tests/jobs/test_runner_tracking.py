"""Jobs that outlive their interaction: past the deadline, after a failed poll, and after a restart."""

from __future__ import annotations

import asyncio

from bot.jobs import StillRunning
from bot.ledger import COST_PER_JOB, SETTLED_STATUSES, JobStatus
from bot.magic_hour import JobFailedError
from tests.fakes.magic_hour import CREATE_PATH, CREDITS_PER_JOB, PNG_BYTES
from tests.jobs.conftest import GUILD_ID, RecordingEvents, World


async def test_a_slow_job_is_reported_slow_then_tracked_past_the_deadline_and_delivered(world: World) -> None:
    runner = world.make_runner(slow_after=5.0, deadline=10.0)
    request = world.request()
    world.mh.script("complete", duration=30.0)  # seconds on the shared manual clock
    events = RecordingEvents(probe=lambda: world.ledger.get_job(request.interaction_id))

    assert await runner.run(request, events) is None  # the interaction is answered "still running"...
    [project_id] = world.mh.jobs
    error = events.failure()
    assert isinstance(error, StillRunning) and error.project_id == project_id

    await asyncio.wait_for(events.handed_over.wait(), 5)  # ... and the result arrives later from the background
    assert events.without_status() == ["started", "slow", "failed", "deliver"]
    assert events.delivered_bytes == PNG_BYTES
    assert world.clock.now - world.mh.jobs[project_id].created_at >= 30.0
    # Until delivery the job stays submitted, its credits held; it is settled only after the hand-over.
    assert (events.probed.status, events.probed.project_id) == (JobStatus.SUBMITTED, project_id)
    await asyncio.wait_for(_settled(world, request.interaction_id), 5)
    record = await world.ledger.get_job(request.interaction_id)
    assert (record.status, record.credits_charged) == (JobStatus.COMPLETE, CREDITS_PER_JOB)
    assert world.mh.creates == 1  # tracked, never re-created


async def test_a_job_whose_polling_breaks_is_tracked_in_the_background(world: World) -> None:
    runner = world.make_runner()
    request = world.request()
    world.mh.fail_next("GET", "/v1/image-projects/", status=404)  # not a transient answer: the wait gives up
    events = RecordingEvents()

    assert await runner.run(request, events) is None
    assert isinstance(events.failure(), StillRunning)
    await asyncio.wait_for(events.handed_over.wait(), 5)
    await asyncio.wait_for(_settled(world, request.interaction_id), 5)

    assert events.without_status() == ["started", "failed", "deliver"]
    record = await world.ledger.get_job(request.interaction_id)
    assert (record.status, record.credits_charged) == (JobStatus.COMPLETE, CREDITS_PER_JOB)
    assert world.mh.creates == 1


async def test_jobs_left_by_an_earlier_process_are_resumed_from_the_ledger(world: World) -> None:
    """The earlier process reserved four jobs and crashed: one created, one created and failing, one sent but
    unanswered, and one still queued (never sent)."""
    ledger = world.ledger
    done, failing, unanswered, queued = (world.request() for _ in range(4))
    for request in (done, failing, unanswered, queued):
        await ledger.reserve_request(request.origin, request.specs(), private=False)
    for request in (done, failing, unanswered):
        assert await ledger.mark_sending(request.interaction_id)
    remover = world.client.v1.image_background_remover
    done_project = await remover.create(assets={"image_file_path": done.images[0].url})
    world.mh.script("error", code="render_failed", message="Rendering failed")
    failing_project = await remover.create(assets={"image_file_path": failing.images[0].url})
    for request, created in ((done, done_project), (failing, failing_project)):
        await ledger.mark_submitted(request.interaction_id, project_id=created.id, credits_charged=5)
    creates_before = world.mh.creates

    records = await ledger.recover_interrupted()

    assert [r.interaction_id for r in records] == [done.interaction_id, failing.interaction_id]
    request = await ledger.get_request(records[0].request_id)
    assert request.origin.token == done.origin.token  # what a restart needs to edit the reply
    still_unknown = await ledger.get_job(unanswered.interaction_id)
    assert still_unknown.status is JobStatus.HELD and still_unknown.credits_reserved == COST_PER_JOB
    never_sent = await ledger.get_job(queued.interaction_id)
    assert (never_sent.status, never_sent.credits_charged) == (JobStatus.REFUNDED, 0)  # released, not held

    runner = world.make_runner()
    done_events, failing_events, unknown_events = RecordingEvents(), RecordingEvents(), RecordingEvents()
    assert await runner.follow_record(records[0], done_events)
    assert await runner.follow_record(records[1], failing_events)
    assert not await runner.follow_record(still_unknown, unknown_events)  # no project id: nothing to poll
    await asyncio.wait_for(done_events.handed_over.wait(), 5)
    await asyncio.wait_for(failing_events.ended.wait(), 5)
    await asyncio.wait_for(_settled(world, done.interaction_id), 5)

    assert done_events.names == ["deliver"]
    result = done_events.result()
    assert result.project.id == done_project.id and done_events.delivered_bytes == PNG_BYTES
    assert failing_events.names == ["failed"]
    error = failing_events.failure()
    assert isinstance(error, JobFailedError) and error.code == "render_failed"
    assert unknown_events.names == []

    finished = await ledger.get_job(done.interaction_id)
    assert (finished.status, finished.credits_charged) == (JobStatus.COMPLETE, CREDITS_PER_JOB)
    refunded = await ledger.get_job(failing.interaction_id)
    assert (refunded.status, refunded.credits_charged) == (JobStatus.FAILED, 0)
    usage = await ledger.usage(GUILD_ID)
    assert (usage.used, usage.reserved) == (CREDITS_PER_JOB, COST_PER_JOB)  # the unanswered job still counts
    assert world.mh.creates == creates_before  # resuming only polls and downloads
    assert ("POST", CREATE_PATH) not in world.sent()[creates_before:]
    assert sorted(world.settled) == [GUILD_ID, GUILD_ID]


async def _settled(world: World, interaction_id: int) -> None:
    """The background settles just after delivery returns; wait for the ledger to show it."""
    while True:
        record = await world.ledger.get_job(interaction_id)
        if record is not None and record.status in SETTLED_STATUSES | {JobStatus.REFUNDED}:
            return
        await asyncio.sleep(0.005)
