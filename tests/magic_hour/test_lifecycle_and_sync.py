"""Sessions are closed by whoever opened them; the sync Client wraps the async one on its own loop."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from collections.abc import Iterator

import aiohttp
import pytest

from bot.magic_hour import (
    AsyncClient,
    Client,
    JobFailedError,
    NotFoundError,
    PollPolicy,
    ProjectStatus,
    validate_base_url,
)
from tests.fakes.magic_hour import FakeMagicHour

from .conftest import TOKEN


async def test_client_closes_the_session_it_opened(fake: FakeMagicHour):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        async with AsyncClient(token=TOKEN, base_url=fake.base_url) as client:
            await client.v1.files.upload_urls.create(items=[{"type": "image", "extension": "png"}])
            session = client._transport._session
            assert session is not None and not session.closed
        assert session.closed
        del client, session
        gc.collect()
    # Only aiohttp's own warnings are this client's: gc may surface other tests' leftovers in this worker too.
    unclosed = [w for w in caught if issubclass(w.category, ResourceWarning) and "Unclosed" in str(w.message)]
    assert not [w for w in unclosed if "client session" in str(w.message) or "connector" in str(w.message)]


async def test_a_closed_client_refuses_new_requests(fake: FakeMagicHour):
    client = AsyncClient(token=TOKEN, base_url=fake.base_url)
    await client.close()
    await client.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        await client.v1.image_projects.get(id="x")


async def test_a_shared_session_is_used_and_left_open(fake: FakeMagicHour):
    async with aiohttp.ClientSession() as session:
        async with AsyncClient(token=TOKEN, base_url=fake.base_url, session=session) as client:
            await client.v1.files.upload_urls.create(items=[{"type": "image", "extension": "png"}])
            assert client._transport._session is session
        assert not session.closed


def test_base_url_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("MAGIC_HOUR_BASE_URL", "https://staging.magichour.test/")
    assert AsyncClient(token=TOKEN).base_url == "https://staging.magichour.test"
    monkeypatch.delenv("MAGIC_HOUR_BASE_URL")
    assert AsyncClient(token=TOKEN).base_url == "https://api.magichour.ai"


def test_a_key_is_required(monkeypatch):
    monkeypatch.delenv("MAGIC_HOUR_API_KEY", raising=False)
    with pytest.raises(ValueError, match="API key"):
        AsyncClient()


@pytest.fixture
def threaded_fake() -> Iterator[FakeMagicHour]:
    """A fake on its own loop in a thread: the sync client blocks the calling thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = FakeMagicHour(token=TOKEN, job_duration=0.0)
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    yield fake
    asyncio.run_coroutine_threadsafe(fake.close(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    assert fake.violations == []


def test_sync_client_runs_the_async_workflow(threaded_fake: FakeMagicHour, tmp_path):
    fast = PollPolicy(first_delay=0.0, dense_start=0.0, dense_end=0.0, dense_interval=0.01)
    with Client(token=TOKEN, base_url=threaded_fake.base_url, poll=fast) as client:
        created = client.v1.image_background_remover.create(assets={"image_file_path": "https://x.test/a.png"})
        project = client.v1.image_projects.wait(id=created.id)
        assert project.status is ProjectStatus.COMPLETE
        downloaded = client.v1.image_projects.download(project, directory=tmp_path)
        assert downloaded.path.read_bytes() == threaded_fake.output_bytes
        with pytest.raises(NotFoundError):
            client.v1.image_projects.get(id="missing")
        threaded_fake.script("canceled")
        with pytest.raises(JobFailedError):
            client.v1.image_background_remover.generate(assets={"image_file_path": "https://x.test/b.png"})
        inner = client._async._transport
    assert inner._session is None  # closed on exit
    assert not client._thread.is_alive()
    with pytest.raises(RuntimeError):
        client.v1.image_projects.get(id="x")


def test_sync_client_refuses_a_session():
    with pytest.raises(TypeError):
        Client(token=TOKEN, session=object())


def test_sync_client_reads_the_account(threaded_fake: FakeMagicHour):
    threaded_fake.credits = 42
    with Client(token=TOKEN, base_url=threaded_fake.base_url) as client:
        assert client.v1.account.get().credits == 42


@pytest.mark.parametrize(
    "url",
    [
        "http://api.magichour.ai",  # the key would travel in clear
        "http://10.0.0.5:8080",
        "http://127.0.0.1.example.com",
        "ftp://api.magichour.ai",
        "api.magichour.ai",
        "https://",
        "https://user:pw@api.magichour.ai",
        "https://api.magichour.ai?x=1",
        "https://api.magichour.ai:notaport",
    ],
)
def test_a_base_url_that_could_leak_the_key_is_refused(monkeypatch, url: str):
    with pytest.raises(ValueError, match="MAGIC_HOUR_BASE_URL"):
        validate_base_url(url)
    with pytest.raises(ValueError, match="MAGIC_HOUR_BASE_URL"):
        AsyncClient(token=TOKEN, base_url=url)
    monkeypatch.setenv("MAGIC_HOUR_BASE_URL", url)
    with pytest.raises(ValueError, match="MAGIC_HOUR_BASE_URL"):
        AsyncClient(token=TOKEN)


def test_the_refusal_names_the_rule_not_the_secret():
    with pytest.raises(ValueError) as caught:
        validate_base_url("https://user:hunter2@api.magichour.ai")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError, match="https://"):
        validate_base_url("http://api.magichour.ai")


@pytest.mark.parametrize(
    ("url", "normalised"),
    [
        ("https://api.magichour.ai/", "https://api.magichour.ai"),
        ("https://proxy.internal:8443/magic", "https://proxy.internal:8443/magic"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.5.0.1", "http://127.5.0.1"),
        ("http://localhost:9000/", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
    ],
)
def test_https_and_loopback_base_urls_are_accepted(url: str, normalised: str):
    assert validate_base_url(url) == normalised
    assert AsyncClient(token=TOKEN, base_url=url).base_url == normalised
