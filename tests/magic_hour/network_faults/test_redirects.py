"""Redirects: an authenticated request never follows one (the key would go to another host), and a
storage redirect whose next hop fails is retried from the first URL, not from the hop."""

from __future__ import annotations

import pytest

from bot.magic_hour import APIStatusError, AsyncClient, create_may_have_happened
from bot.magic_hour.models import ImageProject
from tests.fakes.magic_hour import PNG_BYTES, FakeClock

from . import answers
from .conftest import CREATE_URL, STORAGE, assert_backed_off, project_url
from .faults import dns_failure
from .network import Network

ELSEWHERE = "http://127.0.0.2:9"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirected_create_is_not_followed_or_resent_and_no_job_exists(
    network: Network, client: AsyncClient, clock: FakeClock, status: int
):
    network.answer("POST", CREATE_URL, status=status, headers={"Location": f"{ELSEWHERE}/v1/image-background-remover"})
    network.answer("POST", f"{ELSEWHERE}/v1/image-background-remover", payload=answers.created("cm_elsewhere"))
    network.answer("POST", CREATE_URL, payload=answers.created("cm_resent"))
    with pytest.raises(APIStatusError) as caught:
        await client.v1.image_background_remover.create(assets={"image_file_path": "https://cdn.example.com/a.png"})
    assert caught.value.status == status
    assert "redirect" in caught.value.message
    assert create_may_have_happened(caught.value) is False  # a redirect is an answer: nothing was made
    assert network.hosts() == {"localhost:9"}  # the key went nowhere else
    assert network.count("POST", CREATE_URL) == 1
    assert clock.sleeps == []


async def test_a_redirected_project_read_is_not_followed_or_retried(
    network: Network, client: AsyncClient, clock: FakeClock
):
    url = project_url("cm_0001")
    network.answer("GET", url, status=302, headers={"Location": f"{ELSEWHERE}/v1/image-projects/cm_0001"})
    network.answer("GET", f"{ELSEWHERE}/v1/image-projects/cm_0001", payload=answers.project("cm_0001"))
    network.answer("GET", url, payload=answers.project("cm_0001"))
    with pytest.raises(APIStatusError) as caught:
        await client.v1.image_projects.get(id="cm_0001")
    assert caught.value.status == 302
    assert network.hosts() == {"localhost:9"}
    assert network.count("GET", url) == 1
    assert clock.sleeps == []


async def test_a_storage_redirect_whose_hop_fails_is_retried_from_the_first_url(
    network: Network, client: AsyncClient, clock: FakeClock
):
    output_url = f"{STORAGE}/outputs/cm_0001/output.png?sig=first"
    hop = f"{ELSEWHERE}/cache/output.png?sig=hop"
    project = ImageProject.from_json(answers.project("cm_0001", download_url=output_url))
    network.answer("GET", output_url, status=302, headers={"Location": hop}, content_type="text/plain")
    network.fail("GET", hop, dns_failure)
    network.answer("GET", output_url, body=PNG_BYTES, content_type="image/png")
    with await client.v1.image_projects.download(project) as downloaded:
        assert downloaded.read_bytes() == PNG_BYTES
    assert network.count("GET", output_url) == 2
    assert network.count("GET", hop) == 1
    assert_backed_off(clock.sleeps, 1)
