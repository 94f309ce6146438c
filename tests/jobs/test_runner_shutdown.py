"""Cancelling a queued job, and draining the runner at shutdown: nothing charged for what never started,
nothing lost for what was running."""

from __future__ import annotations

import asyncio
import dataclasses

from bot.jobs import JobCancelled, JobRunner, ShuttingDown
from bot.ledger import COST_PER_JOB, JobStatus
from tests.fakes.magic_hour import CREDITS_PER_JOB, PNG_BYTES
from tests.jobs.conftest import GUILD_ID, USER_ID, RecordingEvents, World, eventually


@dataclasses.dataclass
class Line:
    """A job held at Magic Hour in the only slot, and another member's job waiting behind it."""

    running: asyncio.Task[object]
    running_events: RecordingEvents
    running_id: int
    queued: asyncio.Task[object]
    queued_events: RecordingEvents
    queued_id: int


async def one_running_one_queued(world: World, runner: JobRunner) -> Line:
    running_request, queued_request = world.request(), world.request(user_id=USER_ID + 1)
    running_events, queued_events = RecordingEvents(hold=True), RecordingEvents()
    running = asyncio.create_task(runner.run(running_request, running_events))
    await asyncio.wait_for(running_events.held.wait(), 5)
    queued = asyncio.create_task(runner.run(queued_request, queued_events))
    await eventually(lambda: queued_events.names == ["queued"])
    return Line(
        running, running_events, running_request.interaction_id, queued, queued_events, queued_request.interaction_id
    )


async def test_a_queued_job_can_be_cancelled_and_is_released(world: World) -> None:
    runner = world.make_runner(max_concurrent=1)
    line = await one_running_one_queued(world, runner)
    running, running_events, running_id = line.running, line.running_events, line.running_id
    queued, queued_events, queued_id = line.queued, line.queued_events, line.queued_id

    assert runner.cancel(running_id) is False  # already at Magic Hour: the Cancel button no longer applies
    assert runner.cancel(123) is False
    assert runner.cancel(queued_id) is True
    assert await queued is None  # the member's task ends normally, it is not itself cancelled

    assert queued_events.names == ["queued", "failed"]
    assert isinstance(queued_events.failure(), JobCancelled)
    record = await world.ledger.get_job(queued_id)
    assert (record.status, record.credits_charged, record.project_id) == (JobStatus.REFUNDED, 0, None)
    assert runner.member_active(USER_ID + 1) == 0
    assert runner.cancel(queued_id) is False  # a second press does nothing

    running_events.release.set()
    assert await running is not None
    assert world.mh.creates == 1  # the cancelled job never reached Magic Hour
    usage = await world.ledger.usage(GUILD_ID)
    assert (usage.used, usage.reserved) == (CREDITS_PER_JOB, 0)
    # The slot the cancelled job gave up is not lost: the next job starts straight away.
    next_events = RecordingEvents()
    assert await runner.run(world.request(), next_events) is not None
    assert "queued" not in next_events.names


async def test_drain_releases_queued_jobs_and_leaves_unfinished_ones_to_the_next_start(world: World) -> None:
    runner = world.make_runner(max_concurrent=1)
    line = await one_running_one_queued(world, runner)
    running, running_events, running_id = line.running, line.running_events, line.running_id
    queued, queued_events, queued_id = line.queued, line.queued_events, line.queued_id

    await runner.drain(grace=0.2)  # the running job is still held at Magic Hour when the grace runs out

    assert runner.accepting is False
    assert await queued is None
    assert queued_events.names == ["queued", "failed"]
    assert isinstance(queued_events.failure(), ShuttingDown)
    released = await world.ledger.get_job(queued_id)
    assert (released.status, released.credits_charged) == (JobStatus.REFUNDED, 0)

    assert running_events.without_status() == ["started", "interrupted"]
    assert running.cancelled()
    left = await world.ledger.get_job(running_id)
    [project_id] = world.mh.jobs
    assert (left.status, left.project_id) == (JobStatus.SUBMITTED, project_id)  # recorded for the next start
    assert (await world.ledger.usage(GUILD_ID)).reserved == COST_PER_JOB
    assert world.mh.creates == 1
    late_events = RecordingEvents()
    assert await runner.run(world.request(), late_events) is None
    assert isinstance(late_events.failure(), ShuttingDown)

    # The next process picks it up from the ledger and delivers it.
    records = await world.ledger.recover_interrupted()
    assert [r.interaction_id for r in records] == [running_id]
    restarted = world.make_runner()
    resumed_events = RecordingEvents()
    assert await restarted.follow_record(records[0], resumed_events)
    await asyncio.wait_for(resumed_events.handed_over.wait(), 5)
    assert resumed_events.delivered_bytes == PNG_BYTES
    await eventually(lambda: not restarted.phases.tasks())
    finished = await world.ledger.get_job(running_id)
    assert (finished.status, finished.credits_charged) == (JobStatus.COMPLETE, CREDITS_PER_JOB)
    assert world.mh.creates == 1


async def test_drain_lets_a_running_job_finish_within_the_grace_period(world: World) -> None:
    runner = world.make_runner(max_concurrent=1)
    line = await one_running_one_queued(world, runner)
    running, running_events, running_id = line.running, line.running_events, line.running_id
    queued, queued_events, queued_id = line.queued, line.queued_events, line.queued_id

    draining = asyncio.create_task(runner.drain(grace=10.0))
    await eventually(lambda: not runner.accepting)
    await asyncio.wait_for(queued, 5)
    running_events.release.set()  # Magic Hour finishes while the runner waits
    await asyncio.wait_for(draining, 10)

    assert await running is not None
    assert running_events.without_status() == ["started", "deliver"]  # no "restarting" notice for a finished job
    finished = await world.ledger.get_job(running_id)
    assert (finished.status, finished.credits_charged) == (JobStatus.COMPLETE, CREDITS_PER_JOB)
    assert isinstance(queued_events.failure(), ShuttingDown)
    assert (await world.ledger.get_job(queued_id)).status is JobStatus.REFUNDED
    assert world.mh.creates == 1
