"""Streamed, capped downloads: size limits, unique names, spooling, expired URLs, URL schemes."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from bot.magic_hour import AsyncClient, DownloadError, DownloadTooLargeError, ImageProject
from bot.magic_hour.download import SPOOL_MAX_BYTES
from tests.fakes.magic_hour import PNG_BYTES, FakeMagicHour

ASSETS = {"image_file_path": "https://cdn.example.com/cat.png"}


async def finished(client: AsyncClient) -> ImageProject:
    job = (await client.v1.image_background_remover.create(assets=ASSETS)).id
    return await client.v1.image_projects.wait(id=job)


def output_requests(fake: FakeMagicHour):
    return [r for r in fake.requests if r.path.startswith("/outputs/")]


async def test_download_into_a_spooled_buffer(fake: FakeMagicHour, client: AsyncClient):
    project = await finished(client)
    with await client.v1.image_projects.download(project) as downloaded:
        assert downloaded.path is None
        assert downloaded.file is not None and downloaded.file.tell() == 0
        assert downloaded.file._rolled is False  # small: stays in memory
        assert downloaded.read_bytes() == PNG_BYTES
        assert downloaded.size == len(PNG_BYTES)
        assert downloaded.content_type == "image/png"
        assert downloaded.filename == f"{project.id}.png"
        assert downloaded.expires_at == project.downloads[0].expires_at
    assert downloaded.file.closed


async def test_large_download_spills_to_disk(fake: FakeMagicHour, client: AsyncClient):
    fake.output_bytes = os.urandom(SPOOL_MAX_BYTES * 2)
    project = await finished(client)
    with await client.v1.image_projects.download(project) as downloaded:
        assert downloaded.file._rolled is True  # not held in memory
        assert downloaded.read_bytes() == fake.output_bytes


async def test_storage_requests_do_not_carry_the_api_key(fake: FakeMagicHour, client: AsyncClient):
    project = await finished(client)
    (await client.v1.image_projects.download(project)).close()
    [request] = output_requests(fake)
    assert "Authorization" not in request.headers


async def test_two_downloads_into_one_directory_never_overwrite(
    fake: FakeMagicHour, client: AsyncClient, tmp_path: Path
):
    project = await finished(client)
    first = await client.v1.image_projects.download(project, directory=tmp_path)
    fake.output_bytes = b"second"
    second = await client.v1.image_projects.download(project, directory=tmp_path)
    assert first.path != second.path
    assert first.path.parent == tmp_path and second.path.parent == tmp_path
    assert first.path.name.startswith(project.id) and first.path.suffix == ".png"
    assert first.path.read_bytes() == PNG_BYTES and second.path.read_bytes() == b"second"
    assert first.file is None and first.filename == first.path.name


async def test_content_length_over_the_cap_is_refused_before_reading(
    fake: FakeMagicHour, client: AsyncClient, tmp_path: Path
):
    fake.output_bytes = b"x" * 5_000
    project = await finished(client)
    with pytest.raises(DownloadTooLargeError) as caught:
        await client.v1.image_projects.download(project, directory=tmp_path, max_bytes=1_000)
    assert (caught.value.size, caught.value.limit) == (5_000, 1_000)  # the header's size: nothing read
    assert caught.value.project_id == project.id
    assert list(tmp_path.iterdir()) == []
    assert len(output_requests(fake)) == 1  # not retried


async def test_streamed_download_without_length_stops_at_the_cap(
    fake: FakeMagicHour, client: AsyncClient, tmp_path: Path
):
    fake.send_content_length = False
    fake.output_bytes = b"x" * (4 * 1024 * 1024)
    project = await finished(client)
    with pytest.raises(DownloadTooLargeError) as caught:
        await client.v1.image_projects.download(project, directory=tmp_path, max_bytes=256 * 1024)
    assert 256 * 1024 < caught.value.size < len(fake.output_bytes)  # stopped while streaming
    assert list(tmp_path.iterdir()) == []  # the partial file is removed


async def test_client_default_cap_applies(fake: FakeMagicHour, make_client):
    client = make_client(max_download_bytes=10)
    project = await finished(client)
    with pytest.raises(DownloadTooLargeError):
        await client.v1.image_projects.download(project)


async def test_expired_url_refetches_the_project_once(fake: FakeMagicHour, client: AsyncClient):
    project = await finished(client)
    polls_before = fake.jobs[project.id].polls
    fake.expire_next_downloads()
    with await client.v1.image_projects.download(project) as downloaded:
        assert downloaded.read_bytes() == PNG_BYTES
        assert downloaded.url != project.downloads[0].url  # the fresh URL
    assert fake.jobs[project.id].polls == polls_before + 1
    assert len(output_requests(fake)) == 2


async def test_expired_twice_gives_up_with_download_error(fake: FakeMagicHour, client: AsyncClient):
    project = await finished(client)
    fake.expire_next_downloads(times=2)
    with pytest.raises(DownloadError) as caught:
        await client.v1.image_projects.download(project)
    assert caught.value.status == 403
    assert len(output_requests(fake)) == 2


async def test_transient_storage_errors_are_retried(fake: FakeMagicHour, client: AsyncClient):
    project = await finished(client)
    fake.fail_next("GET", "/outputs/", 503)
    fake.fail_next("GET", "/outputs/", disconnect=True)
    with await client.v1.image_projects.download(project) as downloaded:
        assert downloaded.read_bytes() == PNG_BYTES
    assert len(output_requests(fake)) == 3


@pytest.mark.parametrize(
    "url",
    [
        "http://videos.magichour.ai/out.png",
        "ftp://127.0.0.1/out.png",
        "file:///etc/passwd",
        "http://10.0.0.1/x.png",
    ],
)
async def test_non_https_urls_are_refused(fake: FakeMagicHour, client: AsyncClient, url: str):
    project = await finished(client)
    forged = dataclasses.replace(project, downloads=[dataclasses.replace(project.downloads[0], url=url)])
    with pytest.raises(DownloadError, match="https only"):
        await client.v1.image_projects.download(forged)
    assert output_requests(fake) == []


async def test_missing_download_index_is_a_download_error(fake: FakeMagicHour, client: AsyncClient):
    project = await finished(client)
    with pytest.raises(DownloadError):
        await client.v1.image_projects.download(project, index=3)
