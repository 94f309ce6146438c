"""Which failures are retried, which are not, and why: a create must never be charged twice."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from bot.magic_hour import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    InternalServerError,
    JobMayExistError,
    RateLimitError,
    RetryPolicy,
)
from bot.magic_hour.transport import parse_retry_after
from tests.fakes.magic_hour import CREATE_PATH, FakeClock, FakeMagicHour

from .conftest import TOKEN

ASSETS = {"image_file_path": "https://cdn.example.com/cat.png"}


async def create(client: AsyncClient):
    return await client.v1.image_background_remover.create(assets=ASSETS)


@pytest.mark.parametrize("status", [429, 502, 503])
async def test_create_is_retried_where_no_job_can_exist(fake: FakeMagicHour, client: AsyncClient, status: int):
    fake.fail_next("POST", CREATE_PATH, status)
    result = await create(client)
    assert fake.creates == 2
    assert fake.created == 1
    assert result.id in fake.jobs


async def test_create_500_is_not_retried_because_the_job_may_exist(fake: FakeMagicHour, client: AsyncClient):
    fake.fail_next("POST", CREATE_PATH, 500, after_processing=True)
    with pytest.raises(InternalServerError) as caught:
        await create(client)
    assert caught.value.status == 500
    assert fake.creates == 1


async def test_create_timeout_after_send_raises_job_may_exist_and_sends_once(fake: FakeMagicHour, make_client):
    fake.fail_next("POST", CREATE_PATH, delay=3.0, after_processing=True)
    client = make_client(request_timeout=0.2)
    with pytest.raises(JobMayExistError) as caught:
        await create(client)
    assert caught.value.request_sent is True
    assert "may exist" in str(caught.value) and "charged" in str(caught.value)
    assert fake.creates == 1
    assert fake.created == 1  # the job really exists: re-sending would have charged twice


async def test_create_dropped_connection_after_send_is_not_resent(fake: FakeMagicHour, client: AsyncClient):
    fake.fail_next("POST", CREATE_PATH, disconnect=True, after_processing=True)
    with pytest.raises(JobMayExistError):
        await create(client)
    assert fake.creates == 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_create_connection_refused_is_retried_until_the_server_is_up(clock: FakeClock):
    """Refused means the request never left: safe to re-send. The server comes up during the back-off."""
    port = free_port()
    server = FakeMagicHour(token=TOKEN, clock=clock, port=port)

    async def sleep_then_start(seconds: float) -> None:
        await clock.sleep(seconds)
        if server.base_url == "":
            await server.start()

    client = AsyncClient(token=TOKEN, base_url=f"http://127.0.0.1:{port}", sleep=sleep_then_start, clock=clock)
    try:
        result = await create(client)
    finally:
        await client.close()
        await server.close()
    assert len(clock.sleeps) == 1
    assert server.creates == 1
    assert result.id in server.jobs
    assert server.violations == []


async def test_connection_refused_gives_up_after_max_retries(clock: FakeClock):
    client = AsyncClient(
        token=TOKEN,
        base_url=f"http://127.0.0.1:{free_port()}",
        sleep=clock.sleep,
        clock=clock,
        retry=RetryPolicy(max_retries=2),
    )
    async with client:
        with pytest.raises(APIConnectionError) as caught:
            await create(client)
    assert caught.value.request_sent is False
    assert not isinstance(caught.value, JobMayExistError)
    assert len(clock.sleeps) == 2


async def test_retries_stop_at_max_retries(fake: FakeMagicHour, clock: FakeClock, make_client):
    fake.fail_next("GET", "/v1/image-projects/", 503, times=10)
    client = make_client(retry=RetryPolicy(max_retries=3))
    with pytest.raises(InternalServerError):
        await client.v1.image_projects.get(id="whatever")
    assert fake.gets == 4
    assert len(clock.sleeps) == 3


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_get_is_retried_on_transient_statuses(fake: FakeMagicHour, client: AsyncClient, status: int):
    job = (await create(client)).id
    fake.fail_next("GET", "/v1/image-projects/", status)
    project = await client.v1.image_projects.get(id=job)
    assert project.id == job
    assert fake.gets == 2


async def test_get_is_retried_after_a_dropped_connection_and_a_timeout(fake: FakeMagicHour, make_client):
    client = make_client(request_timeout=0.2)
    job = (await create(client)).id
    fake.fail_next("GET", "/v1/image-projects/", disconnect=True)
    fake.fail_next("GET", "/v1/image-projects/", delay=3.0)
    await client.v1.image_projects.get(id=job)
    assert fake.gets == 3


async def test_get_timeout_exhausted_raises_api_timeout(fake: FakeMagicHour, make_client):
    client = make_client(request_timeout=0.1, retry=RetryPolicy(max_retries=1))
    fake.fail_next("GET", "/v1/image-projects/", delay=3.0, times=2)
    with pytest.raises(APITimeoutError) as caught:
        await client.v1.image_projects.get(id="x")
    assert caught.value.request_sent is True
    assert fake.gets == 2


async def test_delete_and_upload_urls_are_retried(fake: FakeMagicHour, client: AsyncClient):
    job = (await create(client)).id
    fake.fail_next("DELETE", "/v1/image-projects/", 502)
    fake.fail_next("POST", "/v1/files/upload-urls", 503)
    await client.v1.image_projects.delete(id=job)
    await client.v1.files.upload_urls.create(items=[{"type": "image", "extension": "png"}])
    assert fake.count("DELETE", "/v1/image-projects/") == 2
    assert fake.count("POST", "/v1/files/upload-urls") == 2
    assert fake.jobs[job].enabled is False


async def test_retry_after_seconds_is_honoured(fake: FakeMagicHour, clock: FakeClock, client: AsyncClient):
    fake.fail_next("POST", CREATE_PATH, 429, retry_after="7")
    await create(client)
    assert clock.sleeps == [7.0]


async def test_retry_after_http_date_is_honoured(fake: FakeMagicHour, clock: FakeClock, client: AsyncClient):
    when = datetime.now(UTC) + timedelta(seconds=12)
    fake.fail_next("POST", CREATE_PATH, 503, retry_after=format_datetime(when, usegmt=True))
    await create(client)
    [slept] = clock.sleeps
    assert 9.0 < slept <= 12.0  # HTTP dates have whole seconds


async def test_retry_after_is_capped(fake: FakeMagicHour, clock: FakeClock, make_client):
    client = make_client(retry=RetryPolicy(max_retry_after=30.0))
    fake.fail_next("POST", CREATE_PATH, 429, retry_after="3600")
    await create(client)
    assert clock.sleeps == [30.0]


async def test_rate_limit_error_exposes_retry_after_when_retries_run_out(fake: FakeMagicHour, make_client):
    client = make_client(retry=RetryPolicy(max_retries=0))
    fake.fail_next("POST", CREATE_PATH, 429, retry_after="4")
    with pytest.raises(RateLimitError) as caught:
        await create(client)
    assert caught.value.retry_after == 4.0
    assert caught.value.status == 429


async def test_backoff_is_exponential_with_jitter_and_capped(fake: FakeMagicHour, clock: FakeClock, make_client):
    client = make_client(retry=RetryPolicy(max_retries=5, base_delay=1.0, max_delay=4.0))
    fake.fail_next("GET", "/v1/image-projects/", 500, times=6)
    with pytest.raises(InternalServerError):
        await client.v1.image_projects.get(id="missing")
    ceilings = [1.0, 2.0, 4.0, 4.0, 4.0]
    assert len(clock.sleeps) == 5
    for slept, ceiling in zip(clock.sleeps, ceilings, strict=True):
        assert ceiling / 2 <= slept <= ceiling


def test_parse_retry_after_forms():
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("5", now) == 5.0
    assert parse_retry_after("1.5", now) == 1.5
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:09 GMT", now) == 9.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0.0  # in the past: no wait
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
