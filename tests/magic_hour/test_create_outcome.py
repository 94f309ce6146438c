"""One answer to "could this create have happened?", checked against what the client really raises.

Each case makes the fake misbehave on a create, catches what the client raises, and asks
create_may_have_happened(): True holds the reserved credits, False releases them.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from bot.magic_hour import (
    APIResponseValidationError,
    AsyncClient,
    JobFailedError,
    JobMayExistError,
    PollTimeoutError,
    RetryPolicy,
    create_may_have_happened,
)
from bot.magic_hour.models import ImageProject
from tests.fakes.magic_hour import CREATE_PATH, FakeMagicHour

from .conftest import TOKEN

ASSETS = {"image_file_path": "https://cdn.example.com/cat.png"}


@pytest.mark.parametrize(
    ("fault", "happened"),
    [
        ({"status": 400}, False),
        ({"status": 401}, False),
        ({"status": 402}, False),
        ({"status": 403}, False),
        ({"status": 422}, False),
        ({"status": 429, "times": 9}, False),
        ({"status": 500, "after_processing": True}, True),
        ({"status": 501}, True),
        ({"status": 502, "times": 9}, False),
        ({"status": 503, "times": 9}, False),
        ({"status": 504, "after_processing": True}, True),
        ({"disconnect": True, "after_processing": True}, True),
        ({"delay": 2.0, "after_processing": True}, True),
        ({"raw_body": b"<html>oops</html>", "after_processing": True}, True),
        ({"mutate": lambda body: {**body, "credits_charged": -5}}, True),
        ({"mutate": lambda body: {**body, "id": "c" * 300}}, True),
    ],
)
async def test_each_create_failure_gets_one_answer(fake: FakeMagicHour, make_client, fault: dict, happened: bool):
    client: AsyncClient = make_client(request_timeout=0.3, retry=RetryPolicy(max_retries=2))
    fake.fail_next("POST", CREATE_PATH, **fault)
    with pytest.raises(Exception) as caught:
        await client.v1.image_background_remover.create(assets=ASSETS)
    assert create_may_have_happened(caught.value) is happened
    if happened:
        assert fake.creates == 1  # never re-sent once it may have arrived
    if fake.created:
        assert happened  # a job exists: the answer must never be "release the credits"


async def test_a_connection_refused_before_sending_did_not_happen(clock):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the socket closes
    client = AsyncClient(
        token=TOKEN, base_url=f"http://127.0.0.1:{port}", retry=RetryPolicy(max_retries=1), sleep=clock.sleep
    )
    async with client:
        with pytest.raises(Exception) as caught:
            await client.v1.image_background_remover.create(assets=ASSETS)
    assert create_may_have_happened(caught.value) is False


async def test_an_unreadable_create_answer_is_job_may_exist_with_its_status(fake: FakeMagicHour, client: AsyncClient):
    fake.fail_next("POST", CREATE_PATH, raw_body=b'{"id": ', after_processing=True)
    with pytest.raises(JobMayExistError) as caught:
        await client.v1.image_background_remover.create(assets=ASSETS)
    assert caught.value.status == 200 and "unreadable" in str(caught.value)
    assert (fake.creates, fake.created) == (1, 1)


def test_errors_that_are_not_create_outcomes_and_local_mistakes():
    project = ImageProject.from_json(
        {
            "id": "cm1",
            "name": None,
            "status": "error",
            "image_count": 0,
            "type": "BACKGROUND_REMOVER",
            "created_at": "2024-10-19T05:16:19.027Z",
            "enabled": True,
            "credits_charged": 0,
            "downloads": [],
            "error": {"code": "render_failed", "message": "Rendering failed"},
        }
    )
    assert create_may_have_happened(JobFailedError(project)) is False
    assert create_may_have_happened(PollTimeoutError("cm1", "queued")) is False
    assert create_may_have_happened(ValueError("assets needs image_file_path")) is False
    assert create_may_have_happened(APIResponseValidationError("bad")) is True
    assert create_may_have_happened(asyncio.CancelledError()) is True
    assert create_may_have_happened(RuntimeError("unknown")) is True  # unknown: hold the credits
