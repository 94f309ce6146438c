"""A request of several images: one reservation, one job per image in parallel, one delivery, settled per image."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.jobs import JobRunner, Request, RequestEvents, RequestResult
from bot.ledger import COST_PER_JOB, JobStatus, LimitExceeded
from bot.magic_hour import ProjectStatus
from tests.jobs.conftest import GUILD_ID, USER_ID, World


class RecordingBatch(RequestEvents):
    def __init__(self, *, deliver_ok: bool = True) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.deliver_ok = deliver_ok
        self.bytes: dict[int, bytes] = {}

    def names(self) -> list[str]:
        return [name for name, _ in self.calls if name != "status"]

    async def queued(self, position: int) -> None:
        self.calls.append(("queued", position))

    async def started(self) -> None:
        self.calls.append(("started", None))

    async def status(self, image: int, status: ProjectStatus) -> None:
        self.calls.append(("status", (image, status)))

    async def image_ended(self, image: int, ok: bool) -> None:
        self.calls.append(("image_ended", (image, ok)))

    async def deliver(self, result: RequestResult) -> frozenset[int]:
        self.calls.append(("deliver", result))
        for outcome in result.delivered:
            assert outcome.result is not None and outcome.result.file is not None
            self.bytes[outcome.position] = outcome.result.file.read_bytes()
        return frozenset(o.position for o in result.delivered) if self.deliver_ok else frozenset()

    async def failed(self, error: BaseException) -> None:
        self.calls.append(("failed", error))


def batch(world: World, images: int) -> Request:
    return world.request(images=images)


async def test_every_image_runs_in_parallel_within_the_slots_and_is_delivered_once(world: World) -> None:
    runner = world.make_runner(max_concurrent=2)
    request = batch(world, 3)
    events = RecordingBatch()

    result = await runner.run(request, events)

    assert result is not None and len(result.delivered) == 3
    assert events.names().count("started") == 1 and events.names().count("deliver") == 1
    assert ("queued", 1) in events.calls  # the third image waited for one of the two slots
    assert events.names()[-1] == "deliver"
    [(_, delivered)] = [call for call in events.calls if call[0] == "deliver"]
    assert [o.filename for o in delivered.outcomes] == ["item0.png", "item1.png", "item2.png"]
    assert delivered.credits_charged == 3 * COST_PER_JOB and delivered.usage is not None
    assert world.mh.creates == 3
    for position in range(3):
        job = await world.ledger.get_job(request.interaction_id, position)
        assert job is not None and job.status is JobStatus.COMPLETE and job.delivered
    assert runner.member_active(USER_ID) == 0


async def test_a_request_that_does_not_fit_is_refused_whole_before_any_create(world: World) -> None:
    await world.ledger.set_limit(GUILD_ID, credits=4 * COST_PER_JOB, period="month")
    runner = world.make_runner()
    events = RecordingBatch()
    request = batch(world, 5)

    assert await runner.run(request, events) is None

    [(name, error)] = events.calls
    assert name == "failed" and isinstance(error, LimitExceeded)
    assert (error.cost, error.images, error.used, error.limit) == (5 * COST_PER_JOB, 5, 0, 4 * COST_PER_JOB)
    assert world.mh.creates == 0
    assert await world.ledger.get_job(request.interaction_id) is None


async def test_a_member_limit_counts_requests_not_images(world: World) -> None:
    runner: JobRunner = world.make_runner(max_per_member=1)
    task = asyncio.ensure_future(runner.run(batch(world, 3), RecordingBatch()))
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        while runner.member_active(USER_ID) == 0:
            await asyncio.sleep(0.001)
    assert runner.member_active(USER_ID) == 1
    second = RecordingBatch()
    assert await runner.run(batch(world, 1), second) is None
    assert second.names() == ["failed"]
    assert (await task) is not None


async def test_results_that_reached_no_one_are_settled_but_not_marked_delivered(world: World) -> None:
    runner = world.make_runner()
    request = batch(world, 2)
    await runner.run(request, RecordingBatch(deliver_ok=False))
    for position in range(2):
        job = await world.ledger.get_job(request.interaction_id, position)
        assert job is not None and job.status is JobStatus.COMPLETE and not job.delivered
