"""Requests that are safe to repeat (reading a project, deleting it, asking for upload URLs) are retried
after any network fault, sent or not, with exponential back-off, and end in the fault's own error type
once the retry budget is spent. A poll that fails even so is skipped, not fatal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from bot.magic_hour import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    JobMayExistError,
    ProjectStatus,
)
from tests.fakes.magic_hour import FakeClock

from . import answers
from .conftest import STORAGE, UPLOAD_URLS_URL, assert_backed_off, project_url
from .faults import CONNECTION_FAULTS, MID_BODY, Fault, dns_failure
from .network import Network

PROJECT_ID = "cm_0001"


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    url: str
    status: int
    payload: dict[str, Any] | None
    call: Callable[[AsyncClient], Awaitable[Any]]

    def __str__(self) -> str:
        return self.name

    def answer(self, network: Network, **fault: Any) -> None:
        network.answer(self.method, self.url, status=self.status, payload=self.payload, **fault)


GET_PROJECT = Operation(
    "get-project",
    "GET",
    project_url(PROJECT_ID),
    200,
    answers.project(PROJECT_ID, "rendering"),
    lambda client: client.v1.image_projects.get(id=PROJECT_ID),
)
UPLOAD_URLS = Operation(
    "upload-urls",
    "POST",
    UPLOAD_URLS_URL,
    200,
    answers.upload_urls(STORAGE),
    lambda client: client.v1.files.upload_urls.create(items=[{"type": "image", "extension": "png"}]),
)
DELETE_PROJECT = Operation(
    "delete-project",
    "DELETE",
    project_url(PROJECT_ID),
    204,
    None,
    lambda client: client.v1.image_projects.delete(id=PROJECT_ID),
)
WITH_A_BODY = [GET_PROJECT, UPLOAD_URLS]


@pytest.mark.parametrize("fault", CONNECTION_FAULTS, ids=str)
@pytest.mark.parametrize("operation", [*WITH_A_BODY, DELETE_PROJECT], ids=str)
async def test_an_idempotent_request_is_retried_after_any_connection_fault(
    network: Network, client: AsyncClient, clock: FakeClock, operation: Operation, fault: Fault
):
    network.fail(operation.method, operation.url, fault.make)
    operation.answer(network)
    await operation.call(client)
    assert network.count(operation.method, operation.url) == 2
    assert_backed_off(clock.sleeps, 1)


@pytest.mark.parametrize("fault", MID_BODY, ids=str)
@pytest.mark.parametrize("operation", WITH_A_BODY, ids=str)
async def test_an_idempotent_answer_broken_off_mid_body_is_asked_for_again(
    network: Network, client: AsyncClient, clock: FakeClock, operation: Operation, fault: Fault
):
    operation.answer(network, cut_after=10, fault=fault.make)
    operation.answer(network)
    await operation.call(client)
    assert network.count(operation.method, operation.url) == 2
    assert_backed_off(clock.sleeps, 1)


async def test_a_project_read_answered_200_with_invalid_json_is_asked_for_again(
    network: Network, client: AsyncClient, clock: FakeClock
):
    network.answer("GET", GET_PROJECT.url, body=b'{"id": "cm_0001", "status": ')
    GET_PROJECT.answer(network)
    assert (await client.v1.image_projects.get(id=PROJECT_ID)).status == ProjectStatus.RENDERING
    assert network.count("GET", GET_PROJECT.url) == 2
    assert_backed_off(clock.sleeps, 1)


@pytest.mark.parametrize("fault", CONNECTION_FAULTS + MID_BODY, ids=str)
async def test_a_fault_that_persists_ends_in_its_own_error_after_the_retry_budget(
    network: Network, client: AsyncClient, clock: FakeClock, fault: Fault
):
    for _ in range(4):
        if fault in MID_BODY:
            GET_PROJECT.answer(network, cut_after=10, fault=fault.make)
        else:
            network.fail("GET", GET_PROJECT.url, fault.make)
    GET_PROJECT.answer(network)  # a fifth attempt would succeed: the budget is three retries
    with pytest.raises(APIConnectionError) as caught:
        await GET_PROJECT.call(client)
    assert not isinstance(caught.value, JobMayExistError)  # only a create can leave a job behind
    assert isinstance(caught.value, APITimeoutError) is fault.timed_out
    assert caught.value.request_sent is fault.request_sent
    assert network.count("GET", GET_PROJECT.url) == 4
    assert_backed_off(clock.sleeps, 3)


async def test_polling_rides_out_an_outage_longer_than_one_polls_retries(
    network: Network, client: AsyncClient, clock: FakeClock
):
    url = project_url(PROJECT_ID)
    network.fail("GET", url, dns_failure, times=4)  # one whole poll: the first try and its three retries
    network.answer("GET", url, payload=answers.project(PROJECT_ID, "rendering"))
    network.answer("GET", url, payload=answers.project(PROJECT_ID, "complete", download_url=f"{STORAGE}/o.png"))
    seen: list[str] = []
    project = await client.v1.image_projects.wait(id=PROJECT_ID, on_status=lambda p: seen.append(p.status))
    assert project.status == ProjectStatus.COMPLETE
    assert seen == ["rendering", "complete"]
    assert network.count("GET", url) == 6
    # A poll's sleep, the failed poll's three back-offs, then one sleep before each of the two good polls.
    assert len(clock.sleeps) == 6
    assert_backed_off(clock.sleeps[1:4], 3)
