"""Downloads: redirects only to URLs we would fetch anyway, images only, capped error bodies, size first."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.magic_hour import (
    AsyncClient,
    DownloadContentTypeError,
    DownloadError,
    ImageProject,
    OutputTooLargeError,
)
from tests.fakes.magic_hour import PNG_BYTES, FakeMagicHour

ASSETS = {"image_file_path": "https://cdn.example.com/cat.png"}


async def finished(client: AsyncClient) -> ImageProject:
    job = (await client.v1.image_background_remover.create(assets=ASSETS)).id
    return await client.v1.image_projects.wait(id=job)


def output_requests(fake: FakeMagicHour):
    return [r for r in fake.requests if r.path.startswith("/outputs/")]


async def test_a_redirect_to_an_allowed_url_is_followed(fake: FakeMagicHour, client: AsyncClient):
    project = await finished(client)
    fake.redirect_next_outputs(lambda path_qs: path_qs, times=2)  # relative, back to the same signed URL
    with await client.v1.image_projects.download(project) as downloaded:
        assert downloaded.read_bytes() == PNG_BYTES
    assert len(output_requests(fake)) == 3


@pytest.mark.parametrize("location", ["ftp://127.0.0.1/out.png", "file:///etc/passwd", "gopher://127.0.0.1/"])
async def test_a_redirect_to_a_url_we_would_not_fetch_is_refused(
    fake: FakeMagicHour, client: AsyncClient, location: str
):
    project = await finished(client)
    fake.redirect_next_outputs(location)
    with pytest.raises(DownloadError, match="https only"):
        await client.v1.image_projects.download(project)
    assert len(output_requests(fake)) == 1  # refused without following, and not retried


async def test_endless_redirects_stop(fake: FakeMagicHour, client: AsyncClient):
    project = await finished(client)
    fake.redirect_next_outputs(lambda path_qs: path_qs, times=50)
    with pytest.raises(DownloadError) as caught:
        await client.v1.image_projects.download(project)
    assert caught.value.status == 302
    assert len(output_requests(fake)) < 10


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", b"<html><body>AccessDenied</body></html>"),
        ("application/json", b'{"error": "expired"}'),
        ("image/svg+xml", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
        ("application/octet-stream", b"<html>not really an image</html>"),
    ],
)
async def test_a_body_that_is_not_an_image_is_refused(
    fake: FakeMagicHour, client: AsyncClient, tmp_path: Path, content_type: str, body: bytes
):
    fake.output_content_type, fake.output_bytes = content_type, body
    project = await finished(client)
    with pytest.raises(DownloadContentTypeError) as caught:
        await client.v1.image_projects.download(project, directory=tmp_path)
    assert caught.value.content_type == content_type
    assert caught.value.project_id == project.id
    assert list(tmp_path.iterdir()) == []
    assert len(output_requests(fake)) == 1  # not retried: it is an answer, not a glitch


async def test_an_untyped_body_that_is_an_image_is_accepted(fake: FakeMagicHour, client: AsyncClient):
    fake.output_content_type = "application/octet-stream"
    project = await finished(client)
    with await client.v1.image_projects.download(project) as downloaded:
        assert downloaded.read_bytes() == PNG_BYTES


async def test_too_large_carries_the_link_and_whether_the_size_is_exact(fake: FakeMagicHour, client: AsyncClient):
    fake.output_bytes = PNG_BYTES + b"\0" * 5_000
    project = await finished(client)
    with pytest.raises(OutputTooLargeError) as caught:
        await client.v1.image_projects.download(project, max_bytes=1_000)
    error = caught.value
    assert (error.size, error.size_known, error.limit) == (len(fake.output_bytes), True, 1_000)
    assert (error.url, error.expires_at) == (project.downloads[0].url, project.downloads[0].expires_at)
    assert "sig=" not in str(error)  # the signed link stays out of logs

    fake.send_content_length = False
    fake.output_bytes = PNG_BYTES + b"\0" * (1 << 20)
    with pytest.raises(OutputTooLargeError) as caught:
        await client.v1.image_projects.download(project, max_bytes=64 * 1024)
    assert caught.value.size_known is False and caught.value.size > 64 * 1024
    assert caught.value.url == project.downloads[0].url


async def test_a_storage_error_body_is_not_read_to_the_end(fake: FakeMagicHour, client: AsyncClient):
    project = await finished(client)
    chunk = b"<p>denied</p>" * 5000
    fake.fail_next("GET", "/outputs/", 404, raw_body=chunk, repeat=1000, content_type="text/html")
    with pytest.raises(DownloadError) as caught:
        await client.v1.image_projects.download(project)
    assert caught.value.status == 404
    await fake.raw_finished.wait()
    assert fake.raw_bytes_sent < 1000 * len(chunk) // 4
