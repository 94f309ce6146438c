"""Error classes per status, request headers, timeouts, and the token never leaking."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import pytest

from bot.magic_hour import (
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    InternalServerError,
    MagicHourError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    UnprocessableEntityError,
)
from tests.fakes.magic_hour import CREATE_PATH, FakeMagicHour

from .conftest import TOKEN

ASSETS = {"image_file_path": "https://cdn.example.com/cat.png"}


@pytest.mark.parametrize(
    ("status", "error_class", "message"),
    [
        (400, BadRequestError, "Missing request body"),
        (401, AuthenticationError, "Unauthorized"),
        (402, InsufficientCreditsError, "Payment required"),
        (403, PermissionDeniedError, "Your plan does not include this feature"),
        (404, NotFoundError, "Not Found"),
        (422, UnprocessableEntityError, "Unable to create image"),
        (429, RateLimitError, "Too many requests"),
        (500, InternalServerError, "Internal server error"),
        (503, InternalServerError, "Service unavailable"),
    ],
)
async def test_each_status_maps_to_its_error_class(
    fake: FakeMagicHour, make_client, status: int, error_class: type[APIStatusError], message: str
):
    client = make_client(retry=RetryPolicy(max_retries=0))
    fake.fail_next("POST", CREATE_PATH, status, message=message)
    with pytest.raises(error_class) as caught:
        await client.v1.image_background_remover.create(assets=ASSETS)
    error = caught.value
    assert isinstance(error, APIStatusError) and isinstance(error, MagicHourError)
    assert error.status == status
    assert error.message == message
    assert error.body == {"message": message}
    assert str(status) in str(error) and message in str(error)
    assert fake.creates == 1  # none of these is retried with max_retries=0, and 4xx never are


@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 422])
async def test_client_errors_are_never_retried(fake: FakeMagicHour, client: AsyncClient, status: int):
    fake.fail_next("GET", "/v1/image-projects/", status, message="Not Found" if status == 404 else None)
    with pytest.raises(APIStatusError):
        await client.v1.image_projects.get(id="anything")
    assert fake.gets == 1


async def test_unknown_project_is_not_found_with_its_id(fake: FakeMagicHour, client: AsyncClient):
    with pytest.raises(NotFoundError) as caught:
        await client.v1.image_projects.get(id="cm-missing")
    assert caught.value.project_id == "cm-missing"


async def test_wrong_key_is_authentication_error_without_the_key(fake: FakeMagicHour, make_client, caplog):
    caplog.set_level(logging.DEBUG, logger="bot.magic_hour")
    wrong = "mhk_live_wrong_key_0123456789"
    client = make_client(token=wrong)
    with pytest.raises(AuthenticationError) as caught:
        await client.v1.image_background_remover.create(assets=ASSETS)
    assert caught.value.status == 401
    assert wrong not in str(caught.value) and wrong not in repr(caught.value)
    assert wrong not in caplog.text
    assert wrong not in repr(client)


async def test_requests_carry_auth_json_and_user_agent(fake: FakeMagicHour, client: AsyncClient):
    await client.v1.image_background_remover.create(assets=ASSETS, name="cat")
    [request] = fake.requests
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert request.headers["Accept"] == "application/json"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.headers["User-Agent"].startswith("magic-hour-background-bot/")
    assert request.json == {"assets": ASSETS, "name": "cat"}


async def test_name_is_left_out_when_not_given_and_comes_back_null(fake: FakeMagicHour, client: AsyncClient):
    created = await client.v1.image_background_remover.create(assets=ASSETS)
    assert fake.requests[0].json == {"assets": ASSETS}
    assert (await client.v1.image_projects.get(id=created.id)).name is None


async def test_timeouts_are_explicit_and_configurable(fake: FakeMagicHour, make_client):
    client = make_client(connect_timeout=3.0, request_timeout=45.0)
    assert client._transport.timeout == aiohttp.ClientTimeout(connect=3.0, total=45.0)
    assert AsyncClient(token=TOKEN)._transport.timeout == aiohttp.ClientTimeout(connect=10.0, total=60.0)


async def test_per_request_timeout_applies_to_a_shared_session(fake: FakeMagicHour, clock):
    """The bot's own session has no timeout at all; ours must still stop a hung request."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        client = AsyncClient(
            token=TOKEN,
            base_url=fake.base_url,
            session=session,
            request_timeout=0.2,
            retry=RetryPolicy(max_retries=0),
            sleep=clock.sleep,
            clock=clock,
        )
        fake.fail_next("GET", "/v1/image-projects/", delay=5.0)
        with pytest.raises(APITimeoutError):
            await asyncio.wait_for(client.v1.image_projects.get(id="x"), timeout=4.0)
        await client.close()
        assert not session.closed  # not ours to close


async def test_token_never_in_logs_or_errors_through_a_whole_run(fake: FakeMagicHour, client: AsyncClient, caplog):
    caplog.set_level(logging.DEBUG, logger="bot.magic_hour")
    fake.job_duration = 4.0
    fake.fail_next("POST", CREATE_PATH, 429, retry_after="1")
    fake.fail_next("GET", "/v1/image-projects/", 503)
    fake.script("error", code="invalid_input", message="Could not fetch the input image")
    errors: list[BaseException] = []
    try:
        await client.v1.image_background_remover.generate(assets=ASSETS, download_outputs=False)
    except MagicHourError as exc:
        errors.append(exc)
    assert errors, "the scripted job should fail"
    assert "Retrying" in caplog.text  # warnings on retries are logged ...
    assert "GET /v1/image-projects/" in caplog.text  # ... and one debug line per request
    assert TOKEN not in caplog.text
    assert all(TOKEN not in str(e) and TOKEN not in repr(e) for e in errors)


async def test_an_echoed_key_is_redacted_from_error_messages(fake: FakeMagicHour, client: AsyncClient):
    fake.fail_next("POST", CREATE_PATH, 400, message=f"Bad key format: {TOKEN}")
    with pytest.raises(BadRequestError) as caught:
        await client.v1.image_background_remover.create(assets=ASSETS)
    assert TOKEN not in str(caught.value)
    assert "[redacted]" in caught.value.message
