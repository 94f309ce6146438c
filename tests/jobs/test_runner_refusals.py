"""Jobs that never start, and creates Magic Hour refuses: credits are freed exactly when no job can exist."""

from __future__ import annotations

import asyncio
import socket

import pytest

from bot.jobs import MemberBusy, ShuttingDown
from bot.ledger import COST_PER_JOB, JobStatus, LimitExceeded
from bot.magic_hour import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    InternalServerError,
    JobMayExistError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
)
from tests.fakes.magic_hour import CREATE_PATH
from tests.jobs.conftest import GUILD_ID, USER_ID, RecordingEvents, World

# -- refused before anything is reserved ---------------------------------------------------------


async def test_a_job_over_the_limit_is_refused_before_magic_hour_is_called(world: World) -> None:
    await world.ledger.set_limit(GUILD_ID, credits=COST_PER_JOB + 2, period="month")
    runner = world.make_runner(max_per_member=2)
    assert await runner.run(world.request(), RecordingEvents()) is not None  # 5 of 7 used

    request = world.request()
    events = RecordingEvents()
    assert await runner.run(request, events) is None

    assert events.names == ["failed"]
    error = events.failure()
    assert isinstance(error, LimitExceeded)
    assert (error.scope, error.used, error.limit, error.cost) == ("guild", COST_PER_JOB, COST_PER_JOB + 2, COST_PER_JOB)
    assert await world.ledger.get_job(request.interaction_id) is None
    assert world.mh.creates == 1  # only the first job's
    assert runner.member_active(USER_ID) == 0


async def test_a_member_over_their_own_limit_is_refused(world: World) -> None:
    await world.ledger.set_member_limit(GUILD_ID, COST_PER_JOB - 1)
    runner = world.make_runner()
    events = RecordingEvents()

    assert await runner.run(world.request(), events) is None

    error = events.failure()
    assert isinstance(error, LimitExceeded) and error.scope == "member"
    assert world.mh.requests == []


async def test_a_second_job_from_a_busy_member_is_refused(world: World) -> None:
    runner = world.make_runner(max_per_member=1)
    first_events = RecordingEvents(hold=True)
    first = asyncio.create_task(runner.run(world.request(), first_events))
    await asyncio.wait_for(first_events.held.wait(), 5)

    request = world.request()
    events = RecordingEvents()
    assert await runner.run(request, events) is None

    assert events.names == ["failed"]
    error = events.failure()
    assert isinstance(error, MemberBusy) and (error.active, error.limit) == (1, 1)
    assert await world.ledger.get_job(request.interaction_id) is None
    assert world.mh.creates == 1
    # Another member is not held up by the busy one.
    assert await runner.run(world.request(user_id=USER_ID + 1), RecordingEvents()) is not None
    first_events.release.set()
    assert await first is not None
    assert runner.member_active(USER_ID) == 0


async def test_no_job_is_taken_while_shutting_down(world: World) -> None:
    runner = world.make_runner()
    runner.accepting = False
    request = world.request()
    events = RecordingEvents()

    assert await runner.run(request, events) is None

    assert events.names == ["failed"]
    assert isinstance(events.failure(), ShuttingDown)
    assert await world.ledger.get_job(request.interaction_id) is None
    assert world.mh.requests == []


# -- Magic Hour refuses the create ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, InsufficientCreditsError),
        (403, PermissionDeniedError),
        (422, UnprocessableEntityError),
    ],
)
async def test_a_create_refused_with_4xx_is_released(world: World, status: int, error_class: type) -> None:
    runner = world.make_runner()
    request = world.request()
    world.mh.fail_next("POST", CREATE_PATH, status=status)
    events = RecordingEvents()

    assert await runner.run(request, events) is None

    assert events.names == ["started", "failed"]
    assert type(events.failure()) is error_class
    await _assert_released(world, request.interaction_id)
    assert world.sent() == [("POST", CREATE_PATH)]  # a refusal is final: never re-sent, never polled
    assert world.mh.created == 0


@pytest.mark.parametrize(
    ("status", "error_class"), [(429, RateLimitError), (502, InternalServerError), (503, InternalServerError)]
)
async def test_a_create_refused_before_any_job_exists_is_retried_then_released(
    world: World, status: int, error_class: type
) -> None:
    runner = world.make_runner()  # the client retries twice
    request = world.request()
    world.mh.fail_next("POST", CREATE_PATH, status=status, retry_after="1", times=3)
    events = RecordingEvents()

    assert await runner.run(request, events) is None

    error = events.failure()
    assert type(error) is error_class and error.status == status
    assert events.names == ["started", "failed"]
    await _assert_released(world, request.interaction_id)
    assert world.sent() == [("POST", CREATE_PATH)] * 3
    assert world.mh.created == 0


async def test_a_create_that_recovers_on_retry_runs_normally(world: World) -> None:
    runner = world.make_runner()
    request = world.request()
    world.mh.fail_next("POST", CREATE_PATH, status=503, times=2)

    assert await runner.run(request, RecordingEvents()) is not None

    assert world.mh.creates == 3 and world.mh.created == 1
    assert (await world.ledger.get_job(request.interaction_id)).status is JobStatus.COMPLETE


async def test_a_create_that_cannot_connect_is_released(world: World) -> None:
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    runner = world.make_runner(client=world.make_client(base_url=f"http://127.0.0.1:{closed_port}"))
    request = world.request()
    events = RecordingEvents()

    assert await runner.run(request, events) is None

    error = events.failure()
    assert isinstance(error, APIConnectionError) and not error.request_sent
    await _assert_released(world, request.interaction_id)


@pytest.mark.parametrize("status", [500, 504])
async def test_a_create_answered_500_or_504_is_held(world: World, status: int) -> None:
    runner = world.make_runner()
    request = world.request()
    world.mh.fail_next("POST", CREATE_PATH, status=status, after_processing=True)  # the job was made regardless
    events = RecordingEvents()

    assert await runner.run(request, events) is None

    error = events.failure()
    assert isinstance(error, InternalServerError) and error.status == status
    await _assert_held(world, request.interaction_id)
    assert world.mh.created == 1


@pytest.mark.parametrize("how", ["timeout", "disconnect"])
async def test_a_create_whose_answer_was_lost_is_held(world: World, how: str) -> None:
    client = world.make_client(request_timeout=0.3)
    runner = world.make_runner(client=client)
    request = world.request()
    if how == "timeout":
        world.mh.fail_next("POST", CREATE_PATH, delay=30.0, after_processing=True)
    else:
        world.mh.fail_next("POST", CREATE_PATH, disconnect=True, after_processing=True)
    events = RecordingEvents()

    assert await runner.run(request, events) is None

    assert isinstance(events.failure(), JobMayExistError)
    await _assert_held(world, request.interaction_id)
    assert world.mh.created == 1


async def _assert_released(world: World, interaction_id: int) -> None:
    record = await world.ledger.get_job(interaction_id)
    assert (record.status, record.credits_charged, record.project_id) == (JobStatus.REFUNDED, 0, None)
    usage = await world.ledger.usage(GUILD_ID, user_id=USER_ID)
    assert (usage.total, usage.member_used) == (0, 0)
    assert world.settled == []


async def _assert_held(world: World, interaction_id: int) -> None:
    """The create may have made (and charged) a job: the credits keep counting until someone resolves it."""
    record = await world.ledger.get_job(interaction_id)
    assert (record.status, record.project_id) == (JobStatus.HELD, None)
    assert record.credits_reserved == COST_PER_JOB
    usage = await world.ledger.usage(GUILD_ID, user_id=USER_ID)
    assert (usage.reserved, usage.member_used) == (COST_PER_JOB, COST_PER_JOB)
    assert world.sent() == [("POST", CREATE_PATH)]  # never re-sent: that could charge twice


async def test_an_unreadable_create_answer_is_held(world: World) -> None:
    runner = world.make_runner()
    request = world.request()
    world.mh.fail_next("POST", CREATE_PATH, status=200, message="accepted", after_processing=True)
    events = RecordingEvents()

    assert await runner.run(request, events) is None

    assert isinstance(events.failure(), JobMayExistError)  # an unreadable 2xx from a create: the job may exist
    assert world.mh.created == 1
    # The fake was told to break the contract here; that one violation is the point of the test.
    assert world.mh.violations and all(" 200: " in v for v in world.mh.violations)
    world.mh.violations.clear()
    await _assert_held(world, request.interaction_id)
