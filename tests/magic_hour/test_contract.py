"""The fake enforces the OpenAPI contract both ways, so passing tests mean spec-conforming traffic."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from bot.magic_hour import AsyncClient
from tests.fakes.magic_hour import CREATE_PATH, DEFAULT_SPEC_PATH, UPLOAD_URLS_PATH, FakeMagicHour

from .conftest import TOKEN


def test_the_spec_is_where_the_fake_looks():
    assert DEFAULT_SPEC_PATH.is_file()


async def test_every_endpoint_the_client_uses_conforms(fake: FakeMagicHour, client: AsyncClient, tmp_path: Path):
    image = tmp_path / "in.png"
    image.write_bytes(b"png")
    result = await client.v1.image_background_remover.generate(
        assets={"image_file_path": image, "background_image_file_path": "https://x.test/bg.jpg"},
        name="Contract",
        download_directory=tmp_path,
    )
    await client.v1.image_projects.delete(id=result.project.id)
    deleted = await client.v1.image_projects.get(id=result.project.id)
    assert deleted.enabled is False and deleted.downloads == []
    assert fake.count("POST", UPLOAD_URLS_PATH) == 1
    assert fake.count("POST", CREATE_PATH) == 1
    assert fake.count("DELETE", "/v1/image-projects/") == 1
    assert fake.violations == []


async def raw_post(fake: FakeMagicHour, path: str, body: object) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.base_url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as response,
    ):
        return response.status


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CREATE_PATH, {"name": "no assets"}),
        (CREATE_PATH, {"assets": {"image_path": "typo.png"}}),
        (CREATE_PATH, {"assets": {"image_file_path": "a.png"}, "name": None}),  # name is not nullable
        (UPLOAD_URLS_PATH, {"items": []}),
        (UPLOAD_URLS_PATH, {"items": [{"type": "image", "extension": ".png"}]}),
    ],
)
async def test_the_fake_refuses_and_records_bodies_that_break_the_spec(path: str, body: object):
    async with FakeMagicHour(token=TOKEN) as fake:
        assert await raw_post(fake, path, body) == 400
        assert fake.violations and fake.violations[0].startswith("client sent")
        assert fake.created == 0


async def test_the_fake_records_its_own_off_spec_answers():
    """A test that scripts an answer the real API could not give is caught, not silently believed."""
    async with FakeMagicHour(token=TOKEN) as fake:
        fake.fail_next("GET", "/v1/image-projects/", 401, message="Token expired")  # spec: "Unauthorized" only
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                fake.base_url + "/v1/image-projects/x", headers={"Authorization": f"Bearer {TOKEN}"}
            ) as response,
        ):
            assert response.status == 401
        assert any(v.startswith("fake answered") for v in fake.violations)


async def test_the_fake_checks_the_bearer_token():
    async with FakeMagicHour(token=TOKEN) as fake, aiohttp.ClientSession() as session:
        async with session.get(fake.base_url + "/v1/image-projects/x") as response:
            assert response.status == 401
            assert await response.json() == {"message": "Unauthorized"}
        assert fake.violations == []


async def test_the_spec_path_can_come_from_the_environment(monkeypatch, tmp_path: Path):
    copy = tmp_path / "spec.json"
    copy.write_text(DEFAULT_SPEC_PATH.read_text())
    monkeypatch.setenv("MAGIC_HOUR_SPEC", str(copy))
    assert FakeMagicHour().contract.spec_path == copy
