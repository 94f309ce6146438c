"""A create charges credits: after a network fault it is re-sent only if it cannot have reached Magic Hour.

Every test queues, after the fault, the answer a re-sent create would get; `count` shows whether the
client asked for it. create_may_have_happened() is what the runner reads to hold or release credits.
"""

from __future__ import annotations

import pytest

from bot.magic_hour import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    CreateResult,
    InternalServerError,
    JobMayExistError,
    create_may_have_happened,
)
from tests.fakes.magic_hour import FakeClock

from . import answers
from .conftest import CREATE_URL, assert_backed_off
from .faults import MID_BODY, NEVER_SENT, SENT_THEN_LOST, Fault, connection_reset, dns_failure, payload_cut_short
from .network import Network

ASSETS = {"image_file_path": "https://cdn.discordapp.com/attachments/1/2/cat.png?ex=1&hm=abc"}


async def create(client: AsyncClient) -> CreateResult:
    return await client.v1.image_background_remover.create(assets=ASSETS)


def answer_a_resend(network: Network) -> None:
    network.answer("POST", CREATE_URL, payload=answers.created("cm_resent"))


def assert_lost_to(error: JobMayExistError, fault: Fault) -> None:
    """The reason names the fault that was injected, not some other failure on the way."""
    assert ("timed out" if fault.timed_out else type(fault.make()).__name__) in error.reason


@pytest.mark.parametrize("fault", SENT_THEN_LOST, ids=str)
async def test_a_create_lost_after_sending_is_held_and_never_resent(
    network: Network, client: AsyncClient, clock: FakeClock, fault: Fault
):
    network.fail("POST", CREATE_URL, fault.make)
    answer_a_resend(network)
    with pytest.raises(JobMayExistError) as caught:
        await create(client)
    assert caught.value.request_sent is True
    assert_lost_to(caught.value, fault)
    assert create_may_have_happened(caught.value) is True
    assert network.count("POST", CREATE_URL) == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("fault", MID_BODY, ids=str)
async def test_a_create_answer_broken_off_mid_body_is_held_and_never_resent(
    network: Network, client: AsyncClient, clock: FakeClock, fault: Fault
):
    network.answer("POST", CREATE_URL, payload=answers.created("cm_first"), cut_after=8, fault=fault.make)
    answer_a_resend(network)
    with pytest.raises(JobMayExistError) as caught:
        await create(client)
    assert_lost_to(caught.value, fault)
    assert create_may_have_happened(caught.value) is True
    assert network.count("POST", CREATE_URL) == 1
    assert clock.sleeps == []


async def test_a_create_answered_200_with_invalid_json_is_held_with_its_status(
    network: Network, client: AsyncClient, clock: FakeClock
):
    network.answer("POST", CREATE_URL, body=b'{"id": "cm_first", "credits_charged": 5')
    answer_a_resend(network)
    with pytest.raises(JobMayExistError) as caught:
        await create(client)
    assert caught.value.status == 200
    assert create_may_have_happened(caught.value) is True
    assert network.count("POST", CREATE_URL) == 1


@pytest.mark.parametrize("fault", NEVER_SENT, ids=str)
async def test_a_create_that_never_left_is_sent_again_after_a_back_off(
    network: Network, client: AsyncClient, clock: FakeClock, fault: Fault
):
    network.fail("POST", CREATE_URL, fault.make)
    answer_a_resend(network)
    result = await create(client)
    assert result.id == "cm_resent"
    first, second = network.sent("POST", CREATE_URL)
    assert first.kwargs["json"] == second.kwargs["json"] == {"assets": ASSETS}  # the same create, once more
    assert_backed_off(clock.sleeps, 1)


@pytest.mark.parametrize("fault", NEVER_SENT, ids=str)
async def test_a_create_that_never_leaves_gives_up_and_says_no_job_exists(
    network: Network, client: AsyncClient, clock: FakeClock, fault: Fault
):
    network.fail("POST", CREATE_URL, fault.make, times=4)
    answer_a_resend(network)  # a fifth attempt would get through: the retry budget is three
    with pytest.raises(APIConnectionError) as caught:
        await create(client)
    assert not isinstance(caught.value, JobMayExistError)
    assert isinstance(caught.value, APITimeoutError) is fault.timed_out
    assert caught.value.request_sent is False
    assert create_may_have_happened(caught.value) is False  # the credits are released
    assert network.count("POST", CREATE_URL) == 4
    assert_backed_off(clock.sleeps, 3)


async def test_a_retried_create_that_then_reaches_the_server_and_is_lost_is_not_sent_a_third_time(
    network: Network, client: AsyncClient, clock: FakeClock
):
    network.fail("POST", CREATE_URL, dns_failure)
    network.fail("POST", CREATE_URL, connection_reset)
    answer_a_resend(network)
    with pytest.raises(JobMayExistError) as caught:
        await create(client)
    assert create_may_have_happened(caught.value) is True
    assert network.count("POST", CREATE_URL) == 2
    assert_backed_off(clock.sleeps, 1)


@pytest.mark.parametrize(("status", "job_may_exist"), [(502, False), (503, False), (500, True), (504, True)])
async def test_an_error_answer_whose_body_breaks_off_keeps_its_status(
    network: Network, client: AsyncClient, clock: FakeClock, status: int, job_may_exist: bool
):
    """The status line decides; a body lost after it must not turn a 503 (no job) into 'job may exist'."""
    network.answer(
        "POST", CREATE_URL, status=status, payload={"message": "x" * 40}, cut_after=5, fault=payload_cut_short
    )
    answer_a_resend(network)
    if job_may_exist:
        with pytest.raises(InternalServerError) as caught:
            await create(client)
        assert caught.value.status == status
        assert create_may_have_happened(caught.value) is True
        assert network.count("POST", CREATE_URL) == 1
    else:
        assert (await create(client)).id == "cm_resent"
        assert network.count("POST", CREATE_URL) == 2
        assert_backed_off(clock.sleeps, 1)


async def test_a_rate_limit_answer_whose_body_breaks_off_still_honours_retry_after(
    network: Network, client: AsyncClient, clock: FakeClock
):
    network.answer(
        "POST",
        CREATE_URL,
        status=429,
        payload={"message": "Too many requests"},
        headers={"Retry-After": "7"},
        cut_after=3,
        fault=connection_reset,
    )
    answer_a_resend(network)
    assert (await create(client)).id == "cm_resent"
    assert clock.sleeps == [7.0]
