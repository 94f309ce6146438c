"""A result download is a GET of signed storage: a body broken off mid-file starts over from the first
byte into a new file, the partial one is deleted, and when the faults persist the caller gets a
DownloadError that carries neither the URL's signature nor the API key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.magic_hour import AsyncClient, DownloadError
from bot.magic_hour.models import ImageProject
from tests.fakes.magic_hour import PNG_BYTES, FakeClock

from ..conftest import TOKEN
from . import answers
from .conftest import STORAGE, assert_backed_off
from .faults import CONNECTION_FAULTS, MID_BODY, Fault
from .network import Network

SIGNATURE = "s1gn3d-0utput-t0ken"
OUTPUT_URL = f"{STORAGE}/outputs/cm_0001/output.png?sig={SIGNATURE}"
# Two 64 KiB chunks, so the cut lands after the first was written to disk. (aioresponses feeds a body
# in one piece: over 128 KiB, aiohttp's stream would ask a transport that does not exist to pause.)
OUTPUT = PNG_BYTES + bytes(120_000)
CUT_AFTER = 70_000
PROJECT = ImageProject.from_json(answers.project("cm_0001", "complete", download_url=OUTPUT_URL))


def serve_output(network: Network, fault: Fault | None = None) -> None:
    """The output once: whole, or broken by `fault` (before the answer, or CUT_AFTER bytes into it)."""
    if fault is not None and fault not in MID_BODY:
        network.fail("GET", OUTPUT_URL, fault.make)
        return
    network.answer(
        "GET",
        OUTPUT_URL,
        body=OUTPUT,
        content_type="image/png",
        cut_after=CUT_AFTER if fault is not None else None,
        fault=fault.make if fault is not None else None,
    )


@pytest.mark.parametrize("fault", MID_BODY, ids=str)
async def test_a_download_broken_off_mid_file_starts_over_and_leaves_no_partial_file(
    network: Network, client: AsyncClient, clock: FakeClock, tmp_path: Path, fault: Fault
):
    serve_output(network, fault)
    serve_output(network)
    with await client.v1.image_projects.download(PROJECT, directory=tmp_path) as downloaded:
        assert downloaded.read_bytes() == OUTPUT
        assert list(tmp_path.iterdir()) == [downloaded.path]
    assert network.count("GET", OUTPUT_URL) == 2
    assert_backed_off(clock.sleeps, 1)


@pytest.mark.parametrize("fault", MID_BODY, ids=str)
async def test_a_buffered_download_broken_off_mid_file_holds_only_the_second_attempt(
    network: Network, client: AsyncClient, fault: Fault
):
    serve_output(network, fault)
    serve_output(network)
    with await client.v1.image_projects.download(PROJECT) as downloaded:
        assert downloaded.size == len(OUTPUT)
        assert downloaded.read_bytes() == OUTPUT  # not the first attempt's bytes followed by the second's


@pytest.mark.parametrize("fault", CONNECTION_FAULTS + MID_BODY, ids=str)
async def test_a_download_that_keeps_failing_is_a_download_error_without_secrets_or_files(
    network: Network, client: AsyncClient, clock: FakeClock, tmp_path: Path, caplog, fault: Fault
):
    caplog.set_level(logging.DEBUG, logger="bot.magic_hour")
    for _ in range(4):
        serve_output(network, fault)
    serve_output(network)  # a fifth attempt would succeed: the budget is three retries
    with pytest.raises(DownloadError) as caught:
        await client.v1.image_projects.download(PROJECT, directory=tmp_path)
    assert type(caught.value) is DownloadError
    assert caught.value.project_id == "cm_0001"
    assert list(tmp_path.iterdir()) == []
    assert network.count("GET", OUTPUT_URL) == 4
    assert_backed_off(clock.sleeps, 3)
    assert "Retrying GET" in caplog.text
    for text in (str(caught.value), repr(caught.value), caplog.text):
        assert SIGNATURE not in text
        assert TOKEN not in text
