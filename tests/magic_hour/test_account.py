"""GET /v1/account: a typed balance the bot can watch fall, with the same transport rules as any GET."""

from __future__ import annotations

import pytest

from bot.magic_hour import (
    Account,
    APIResponseValidationError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    InsufficientCreditsError,
    JobFailedError,
    RetryPolicy,
    Subscription,
)
from tests.fakes.magic_hour import ACCOUNT_PATH, CREATE_PATH, CREDITS_PER_JOB, FakeMagicHour

from .conftest import TOKEN

ASSETS = {"image_file_path": "https://cdn.example.com/cat.png"}


async def test_account_is_a_typed_model(fake: FakeMagicHour, client: AsyncClient):
    fake.credits = 12_500
    account = await client.v1.account.get()
    assert account == Account(
        id="cuid-fake-account",
        credits=12_500,
        email="owner@example.com",
        tier="pro",
        subscription=Subscription(
            status="active",
            cancel_at_period_end=False,
            billing_interval="month",
            current_period_end="2030-01-01T00:00:00.000Z",
            name="Pro",
        ),
    )
    [request] = [r for r in fake.requests if r.path == ACCOUNT_PATH]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_a_free_account_has_no_subscription_and_may_have_no_email(fake: FakeMagicHour, client: AsyncClient):
    fake.account.update(tier="free", subscription=None, email=None)
    account = await client.v1.account.get()
    assert (account.tier, account.subscription, account.email) == ("free", None, None)


async def test_the_balance_falls_with_each_create_and_a_failed_job_is_refunded(
    fake: FakeMagicHour, client: AsyncClient
):
    fake.credits = 100
    fake.script("complete")
    fake.script("error", code="render_failed", message="Rendering failed")
    kept = await client.v1.image_background_remover.create(assets=ASSETS)
    assert (await client.v1.account.get()).credits == 100 - kept.credits_charged
    failed = await client.v1.image_background_remover.create(assets=ASSETS)
    assert (await client.v1.account.get()).credits == 100 - kept.credits_charged - failed.credits_charged
    with pytest.raises(JobFailedError):
        await client.v1.image_projects.wait(id=failed.id)
    assert (await client.v1.account.get()).credits == 100 - CREDITS_PER_JOB


async def test_an_empty_balance_refuses_creates(fake: FakeMagicHour, client: AsyncClient):
    fake.credits = CREDITS_PER_JOB - 1
    with pytest.raises(InsufficientCreditsError):
        await client.v1.image_background_remover.create(assets=ASSETS)
    assert fake.created == 0 and fake.count("POST", CREATE_PATH) == 1


async def test_account_is_retried_like_any_get(fake: FakeMagicHour, client: AsyncClient):
    fake.fail_next("GET", ACCOUNT_PATH, 503)
    fake.fail_next("GET", ACCOUNT_PATH, disconnect=True)
    fake.fail_next("GET", ACCOUNT_PATH, raw_body=b"{not json")
    assert (await client.v1.account.get()).credits == fake.credits
    assert fake.count("GET", ACCOUNT_PATH) == 4


async def test_account_timeout_and_wrong_key_are_typed(fake: FakeMagicHour, make_client):
    client = make_client(request_timeout=0.2, retry=RetryPolicy(max_retries=1))
    fake.fail_next("GET", ACCOUNT_PATH, delay=2.0, times=2)
    with pytest.raises(APITimeoutError):
        await client.v1.account.get()
    assert fake.count("GET", ACCOUNT_PATH) == 2
    with pytest.raises(AuthenticationError):
        await make_client(token="mhk_wrong").v1.account.get()


async def test_an_account_answer_off_the_spec_is_refused(fake: FakeMagicHour, make_client):
    client = make_client(retry=RetryPolicy(max_retries=1))
    fake.fail_next("GET", ACCOUNT_PATH, mutate=lambda body: {**body, "credits": "12500"}, times=2)
    with pytest.raises(APIResponseValidationError):
        await client.v1.account.get()
    assert fake.count("GET", ACCOUNT_PATH) == 2
