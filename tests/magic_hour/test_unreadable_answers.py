"""A 2xx we cannot read: retried like a 5xx for a GET, JobMayExistError for a create (credits held)."""

from __future__ import annotations

import pytest

from bot.magic_hour import (
    APIResponseValidationError,
    AsyncClient,
    InternalServerError,
    JobMayExistError,
    RetryPolicy,
)
from bot.magic_hour.transport import ERROR_BODY_CAP, JSON_BODY_CAP, MESSAGE_CAP
from tests.fakes.magic_hour import CREATE_PATH, UPLOAD_URLS_PATH, FakeMagicHour

ASSETS = {"image_file_path": "https://cdn.example.com/cat.png"}


async def created(client: AsyncClient) -> str:
    return (await client.v1.image_background_remover.create(assets=ASSETS)).id


def without(key: str):
    return lambda body: {k: v for k, v in body.items() if k != key}


@pytest.mark.parametrize(
    "fault",
    [
        {"raw_body": b"{not json"},
        {"raw_body": b"\xff\xfe\x00garbage"},
        {"raw_body": b"<html><body>502 Bad Gateway</body></html>", "content_type": "text/html"},
        {"mutate": without("status")},
        {"mutate": lambda body: {**body, "credits_charged": -1}},
        {"mutate": lambda body: {**body, "id": ""}},
        {"mutate": lambda body: [body]},
    ],
)
async def test_an_unreadable_project_answer_is_retried(fake: FakeMagicHour, client: AsyncClient, fault: dict):
    job = await created(client)
    fake.fail_next("GET", f"/v1/image-projects/{job}", **fault)
    project = await client.v1.image_projects.get(id=job)
    assert project.id == job
    assert fake.gets == 2


async def test_an_unreadable_answer_every_time_stops_at_the_retry_budget(fake: FakeMagicHour, make_client):
    client = make_client(retry=RetryPolicy(max_retries=2))
    job = await created(client)
    fake.fail_next("GET", "/v1/image-projects/", raw_body=b"{", times=10)
    with pytest.raises(APIResponseValidationError):
        await client.v1.image_projects.get(id=job)
    assert fake.gets == 3


async def test_an_oversized_answer_is_unreadable_not_buffered(fake: FakeMagicHour, make_client):
    client = make_client(retry=RetryPolicy(max_retries=0))
    fake.fail_next("POST", UPLOAD_URLS_PATH, raw_body=b" " * 65536, repeat=(JSON_BODY_CAP // 65536) * 8)
    with pytest.raises(APIResponseValidationError, match="over"):
        await client.v1.files.upload_urls.create(items=[{"type": "image", "extension": "png"}])


async def test_unreadable_upload_urls_are_retried(fake: FakeMagicHour, client: AsyncClient):
    fake.fail_next("POST", UPLOAD_URLS_PATH, mutate=lambda body: {"items": [{"file_path": 3}]})
    [url] = await client.v1.files.upload_urls.create(items=[{"type": "image", "extension": "png"}])
    assert url.file_path.startswith("api-assets/")
    assert fake.count("POST", UPLOAD_URLS_PATH) == 2


@pytest.mark.parametrize(
    "fault",
    [
        {"raw_body": b"{not json", "after_processing": True},
        {"raw_body": b"", "after_processing": True},
        {"mutate": without("id")},
        {"mutate": lambda body: {**body, "credits_charged": -5}},
        {"mutate": lambda body: {**body, "credits_charged": 10**12}},
        {"mutate": lambda body: {**body, "credits_charged": True}},
        {"mutate": lambda body: {**body, "id": "x" * 256}},
        {"mutate": lambda body: {**body, "id": "cm1\n"}},
    ],
)
async def test_an_unreadable_create_answer_holds_the_job_and_is_never_resent(
    fake: FakeMagicHour, client: AsyncClient, fault: dict
):
    fake.fail_next("POST", CREATE_PATH, **fault)
    with pytest.raises(JobMayExistError) as caught:
        await created(client)
    assert caught.value.status == 200
    assert (fake.creates, fake.created) == (1, 1)  # the job exists, charged once


async def test_an_error_body_is_read_only_up_to_the_cap(fake: FakeMagicHour, make_client):
    client = make_client(retry=RetryPolicy(max_retries=0))
    huge = b'{"message": "' + b"x" * (4 * ERROR_BODY_CAP) + b'"}'
    fake.fail_next("GET", "/v1/image-projects/", 500, raw_body=huge)
    with pytest.raises(InternalServerError) as caught:
        await client.v1.image_projects.get(id="cm1")
    assert len(caught.value.message) <= MESSAGE_CAP
    assert len(str(caught.value)) < 2 * MESSAGE_CAP
    assert not isinstance(caught.value.body, dict)  # cut short, so not the whole document


async def test_an_endless_error_body_is_not_read_to_the_end(fake: FakeMagicHour, make_client):
    client = make_client(retry=RetryPolicy(max_retries=0))
    chunk = b"x" * 65536
    fake.fail_next("GET", "/v1/image-projects/", 500, raw_body=chunk, repeat=1024, content_type="text/plain")
    with pytest.raises(InternalServerError) as caught:
        await client.v1.image_projects.get(id="cm1")
    assert caught.value.status == 500
    await fake.raw_finished.wait()
    assert fake.raw_bytes_sent < 1024 * len(chunk) // 4  # the client hung up long before the end
