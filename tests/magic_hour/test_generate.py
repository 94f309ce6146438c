"""The generate workflow and uploads: both local assets uploaded, URLs untouched, caller's dict unchanged."""

from __future__ import annotations

import copy
import io
from pathlib import Path

import pytest

from bot.magic_hour import AsyncClient, GenerateResult, JobFailedError, ProjectStatus
from tests.fakes.magic_hour import CREATE_PATH, PNG_BYTES, UPLOAD_URLS_PATH, FakeMagicHour


@pytest.fixture
def images(tmp_path: Path) -> tuple[Path, Path]:
    foreground, background = tmp_path / "cat.png", tmp_path / "beach.JPG"
    foreground.write_bytes(b"foreground-bytes")
    background.write_bytes(b"background-bytes")
    return foreground, background


async def test_generate_uploads_both_local_assets(
    fake: FakeMagicHour, client: AsyncClient, images: tuple[Path, Path], tmp_path: Path
):
    foreground, background = images
    assets = {"image_file_path": str(foreground), "background_image_file_path": str(background)}
    before = copy.deepcopy(assets)
    out = tmp_path / "outputs"
    result = await client.v1.image_background_remover.generate(assets=assets, name="cat", download_directory=out)

    assert assets == before  # never modified in place
    [urls_request] = [r for r in fake.requests if r.path == UPLOAD_URLS_PATH]
    assert urls_request.json == {
        "items": [{"type": "image", "extension": "png"}, {"type": "image", "extension": "jpg"}]
    }
    puts = [r for r in fake.requests if r.method == "PUT"]
    assert [r.body for r in puts] == [b"foreground-bytes", b"background-bytes"]
    assert all("Authorization" not in r.headers for r in puts)
    [create] = [r for r in fake.requests if r.path == CREATE_PATH]
    sent = create.json["assets"]
    assert fake.uploads[sent["image_file_path"]] == b"foreground-bytes"
    assert fake.uploads[sent["background_image_file_path"]] == b"background-bytes"
    assert create.json["name"] == "cat"

    assert isinstance(result, GenerateResult)
    assert result.project.status is ProjectStatus.COMPLETE
    [path] = result.downloaded_paths
    assert path.parent == out and path.read_bytes() == PNG_BYTES


async def test_generate_passes_urls_and_uploaded_paths_through(fake: FakeMagicHour, client: AsyncClient, tmp_path):
    assets = {
        "image_file_path": "https://cdn.discordapp.com/attachments/1/2/cat.png?ex=65&is=66&hm=abc",
        "background_image_file_path": "api-assets/id/1234.png",
    }
    await client.v1.image_background_remover.generate(assets=assets, download_directory=tmp_path)
    assert fake.count("POST", UPLOAD_URLS_PATH) == 0 and fake.count("PUT", "/") == 0
    [create] = [r for r in fake.requests if r.path == CREATE_PATH]
    assert create.json["assets"] == assets


async def test_generate_mixes_a_url_and_a_local_file(
    fake: FakeMagicHour, client: AsyncClient, images: tuple[Path, Path], tmp_path: Path
):
    _, background = images
    url = "https://cdn.example.com/cat.webp"
    assets = {"image_file_path": url, "background_image_file_path": background}
    await client.v1.image_background_remover.generate(assets=assets, download_directory=tmp_path)
    [create] = [r for r in fake.requests if r.path == CREATE_PATH]
    assert create.json["assets"]["image_file_path"] == url
    assert fake.uploads[create.json["assets"]["background_image_file_path"]] == b"background-bytes"
    assert assets["background_image_file_path"] == background


async def test_generate_downloads_to_the_current_directory_by_default(
    fake: FakeMagicHour, client: AsyncClient, tmp_path: Path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    result = await client.v1.image_background_remover.generate(assets={"image_file_path": "https://x.test/a.png"})
    assert [p.parent for p in result.downloaded_paths] == [tmp_path]


async def test_generate_without_waiting_returns_the_current_project(fake: FakeMagicHour, client: AsyncClient):
    result = await client.v1.image_background_remover.generate(
        assets={"image_file_path": "https://x.test/a.png"}, wait_for_completion=False
    )
    assert result.project.status is ProjectStatus.QUEUED
    assert result.downloaded_paths == []


async def test_generate_without_download(fake: FakeMagicHour, client: AsyncClient):
    seen = []
    result = await client.v1.image_background_remover.generate(
        assets={"image_file_path": "https://x.test/a.png"}, download_outputs=False, on_status=seen.append
    )
    assert result.downloaded_paths == [] and fake.count("GET", "/outputs/") == 0
    assert seen[-1].status is ProjectStatus.COMPLETE


async def test_generate_raises_when_the_job_fails(fake: FakeMagicHour, client: AsyncClient):
    fake.script("error", code="invalid_input", message="Could not fetch the input image")
    with pytest.raises(JobFailedError):
        await client.v1.image_background_remover.generate(assets={"image_file_path": "https://x.test/a.png"})


async def test_upload_file_from_a_file_object(fake: FakeMagicHour, client: AsyncClient):
    stream = io.BytesIO(b"webp-bytes")
    stream.name = "sticker.webp"
    file_path = await client.v1.files.upload_file(stream)
    assert fake.uploads[file_path] == b"webp-bytes"
    assert file_path.endswith(".webp")


async def test_upload_file_returns_urls_untouched(fake: FakeMagicHour, client: AsyncClient):
    assert await client.v1.files.upload_file("https://x.test/a.png") == "https://x.test/a.png"
    assert fake.requests == []


async def test_upload_refuses_an_unsupported_extension(fake: FakeMagicHour, client: AsyncClient, tmp_path: Path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hi")
    with pytest.raises(ValueError, match="txt"):
        await client.v1.files.upload_file(notes)
    assert fake.requests == []


async def test_upload_urls_create_returns_typed_items(fake: FakeMagicHour, client: AsyncClient):
    [upload] = await client.v1.files.upload_urls.create(items=[{"type": "image", "extension": "png"}])
    assert upload.file_path.startswith("api-assets/") and upload.upload_url.startswith(fake.base_url)
    assert upload.expires_at.tzinfo is not None


async def test_create_refuses_unknown_asset_keys_before_sending(fake: FakeMagicHour, client: AsyncClient):
    with pytest.raises(ValueError):
        await client.v1.image_background_remover.create(assets={"image_path": "https://x.test/a.png"})
    assert fake.requests == []
