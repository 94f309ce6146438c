"""Where two features meet: an unexpected error beside running images, a job past its deadline, concurrent
creates against one balance. Each of these broke before the lifecycle was made explicit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.balance import BalanceTooLow, BalanceWatch
from bot.jobs import Phase, RequestEvents, RequestResult, StillRunning, Unexpected
from bot.ledger import COST_PER_JOB, JobStatus
from bot.magic_hour import ProjectStatus
from bot.metrics import Metrics
from tests.fakes.magic_hour import CREATE_PATH, CREDITS_PER_JOB
from tests.jobs.conftest import GUILD_ID, USER_ID, RecordingEvents, World, eventually


class Audience(RequestEvents):
    """Records a request's deliveries and failures; each image's later delivery lands in `later_results`."""

    def __init__(self) -> None:
        self.delivered: list[RequestResult] = []
        self.failures: list[BaseException] = []
        self.later_events: dict[int, RecordingEvents] = {}

    async def deliver(self, result: RequestResult) -> frozenset[int]:
        self.delivered.append(result)
        return frozenset(outcome.position for outcome in result.delivered)

    async def failed(self, error: BaseException) -> None:
        self.failures.append(error)

    async def status(self, image: int, status: ProjectStatus) -> None:
        pass

    def later(self, image: int, filename: str | None = None) -> RecordingEvents:
        return self.later_events.setdefault(image, RecordingEvents())


# -- point 3: one image's unexpected error abandons nothing -------------------------------------------


async def test_an_unexpected_error_in_one_image_ends_that_image_only(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Image 1's ledger write fails past its retries while image 0 is at Magic Hour: image 0 is still delivered
    and settled, the member's request counts until both have ended, and nothing is left running."""
    runner = world.make_runner(max_per_member=1)
    request = world.request(images=2)
    original = world.ledger.mark_sending

    async def broken_for_image_1(interaction_id: int, position: int = 0) -> bool:
        if position == 1:
            raise OSError("the database went away for good")
        return await original(interaction_id, position)

    monkeypatch.setattr(world.ledger, "mark_sending", broken_for_image_1)
    audience = Audience()
    running = asyncio.ensure_future(runner.run(request, audience))
    await eventually(lambda: world.mh.creates == 1)
    assert runner.member_active(USER_ID) == 1  # image 1 ended, image 0 still runs: the request still counts
    result = await asyncio.wait_for(running, 10)

    assert result is not None
    [delivered] = audience.delivered
    assert [outcome.position for outcome in delivered.delivered] == [0]
    [failed] = delivered.failures
    assert failed.position == 1 and isinstance(failed.error, Unexpected) and not failed.error.charged
    first = await world.ledger.get_job(request.interaction_id, 0)
    assert (first.status, first.delivered, first.credits_charged) == (JobStatus.COMPLETE, True, CREDITS_PER_JOB)
    second = await world.ledger.get_job(request.interaction_id, 1)
    assert (second.status, second.credits_charged) == (JobStatus.REFUNDED, 0)  # never sent: released
    assert runner.member_active(USER_ID) == 0
    assert not runner.phases.tasks() and runner.slots.in_use == 0
    assert world.mh.creates == 1


async def test_an_unexpected_error_after_the_create_keeps_following_the_charged_job(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug after Magic Hour confirmed the job (here: collecting its result) must not strand it: the job is
    paid for, so it is followed to its end and delivered on its own."""
    runner = world.make_runner()
    request = world.request()
    calls = 0
    original = runner._collect

    async def collect_once_broken(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug while collecting")
        return await original(*args)

    monkeypatch.setattr(runner, "_collect", collect_once_broken)
    audience = Audience()
    assert await runner.run(request, audience) is None
    [error] = audience.failures
    assert isinstance(error, StillRunning)
    later = audience.later_events[0]
    await asyncio.wait_for(later.handed_over.wait(), 5)
    await eventually(lambda: not runner.phases.tasks())
    record = await world.ledger.get_job(request.interaction_id)
    assert (record.status, record.delivered) == (JobStatus.COMPLETE, True)
    assert world.mh.creates == 1


# -- point 4: a job past its deadline is followed by one task --------------------------------------------


async def test_a_job_past_its_deadline_is_downloaded_and_settled_once(world: World) -> None:
    metrics = Metrics()
    runner = world.make_runner(slow_after=5.0, deadline=10.0, metrics=metrics)
    request = world.request()
    world.mh.script("complete", duration=30.0)
    events = RecordingEvents()

    assert await runner.run(request, events) is None
    assert isinstance(events.failure(), StillRunning)
    await asyncio.wait_for(events.handed_over.wait(), 5)
    await eventually(lambda: not runner.phases.tasks())
    await asyncio.sleep(0.05)  # a second tracker, if there were one, would finish now

    assert events.named("deliver") and len(events.named("deliver")) == 1
    assert world.mh.count("GET", "/outputs/") == 1
    assert world.settled == [GUILD_ID]
    charged = metrics.registry.get_sample_value("bot_credits_charged_total")
    assert charged == CREDITS_PER_JOB


async def test_a_job_cannot_be_followed_by_two_tasks(world: World) -> None:
    runner = world.make_runner()
    request = world.request()
    world.mh.script("complete", duration=30.0)
    project = await world.client.v1.image_background_remover.create(assets={"image_file_path": request.images[0].url})
    first, second = RecordingEvents(), RecordingEvents()
    job = request.image(0)
    assert runner.track(job, project.id, first)
    assert not runner.track(job, project.id, second)  # refused: one job, one task
    assert runner.phases.phase(job.key) is Phase.CONFIRMED
    for task in runner.phases.tasks():
        task.cancel()


# -- point 7: the balance is taken when a create is sent --------------------------------------------------


async def test_concurrent_creates_cannot_all_pass_against_the_same_balance(world: World) -> None:
    world.mh.credits = 2 * COST_PER_JOB  # enough for two jobs, not three
    balance = BalanceWatch(world.client, world.ledger, clock=world.clock)
    runner = world.make_runner(balance=balance, max_per_member=3)
    holding = [RecordingEvents(hold=True), RecordingEvents(hold=True)]
    running = [asyncio.ensure_future(runner.run(world.request(), held)) for held in holding]
    await eventually(lambda: world.mh.creates == 2)
    third = RecordingEvents()
    assert await runner.run(world.request(), third) is None
    assert isinstance(third.failure(), BalanceTooLow)
    assert world.mh.creates == 2  # the third never reached Magic Hour
    assert world.mh.count("GET", "/v1/account") == 1
    for held in holding:
        held.release.set()
    assert all(await asyncio.gather(*running))
    await balance.close()


async def test_a_failing_account_endpoint_does_not_turn_into_refusing_every_job(world: World) -> None:
    balance = BalanceWatch(world.client, world.ledger, clock=world.clock, refresh_every=60.0, trust_for=600.0)
    runner = world.make_runner(balance=balance)
    world.mh.credits = 12  # read once: enough for two jobs by the bot's arithmetic
    assert await runner.run(world.request(), RecordingEvents()) is not None
    world.mh.fail_next("GET", "/v1/account", status=500, times=1000)  # from now on the balance cannot be read
    world.mh.credits = 1_000_000  # the owner topped up, but the bot cannot see it
    world.clock.now += 700  # past trust_for: the last figure (7, then 2 after a job) is no longer believed
    for _ in range(3):
        events = RecordingEvents()
        assert await runner.run(world.request(), events) is not None, events.calls
    assert world.mh.creates == 4
    await balance.close()


async def test_every_create_settles_its_take_from_the_balance_whatever_it_ended_in(world: World) -> None:
    """A create answered, refused or lost: none leaves its cost pending, or the bot would slowly refuse everything."""
    world.mh.credits = 1_000
    balance = BalanceWatch(world.client, world.ledger, clock=world.clock)
    runner = world.make_runner(balance=balance, client=world.make_client(request_timeout=0.3))
    await runner.run(world.request(), RecordingEvents())  # answered
    world.mh.fail_next("POST", CREATE_PATH, status=400)
    await runner.run(world.request(), RecordingEvents())  # refused for certain
    world.mh.fail_next("POST", CREATE_PATH, delay=30.0, after_processing=True)
    await runner.run(world.request(), RecordingEvents())  # answer lost: held, its cost assumed
    assert balance.pending == 0
    assert balance.known == 1_000 - 2 * COST_PER_JOB  # read once: 5 charged, nothing for the refusal, 5 assumed
    await balance.close()
