"""is_input_fetch_failure: only "could not fetch the input" earns a second create with a fresh link."""

from __future__ import annotations

import pytest

from bot.magic_hour import (
    BadRequestError,
    InternalServerError,
    JobFailedError,
    NotFoundError,
    RateLimitError,
    UnprocessableEntityError,
    is_input_fetch_failure,
)
from bot.magic_hour.models import ImageProject, ProjectError


def failed(code: str, message: str, status: str = "error") -> JobFailedError:
    project = ImageProject(
        id="cm1",
        name=None,
        status=status,
        image_count=0,
        type="BACKGROUND_REMOVER",
        created_at=None,  # type: ignore[arg-type]
        enabled=True,
        credits_charged=0,
        error=ProjectError(code, message),
    )
    return JobFailedError(project)


@pytest.mark.parametrize(
    "error",
    [
        failed("invalid_input", "Could not fetch the input image"),  # what the fake (and Magic Hour) send
        failed("invalid_input", "Unable to download file from assets.image_file_path"),
        failed("invalid_input", "The image URL could not be reached"),
        failed("input_fetch_failed", "Job failed"),
        failed("error", "Failed to retrieve the source image: 403 Forbidden"),
        failed("error", "The background image is not accessible"),
        BadRequestError(400, "Could not fetch image at assets.image_file_path"),
        UnprocessableEntityError(422, "Failed to download the input file"),
    ],
)
def test_fetch_failures_are_recognised(error: Exception):
    assert is_input_fetch_failure(error) is True


@pytest.mark.parametrize(
    "error",
    [
        failed("invalid_input", "Image dimensions are too small"),  # the code alone is not enough
        failed("invalid_input", "Unsupported image format"),
        failed("render_failed", "Rendering failed"),
        failed("render_failed", "Failed to download model weights"),
        failed("upload_failed", "Could not upload the output image"),
        failed("error", "Failed to download output image to storage"),
        failed("no_source_face", "No face found in the source image"),
        failed("canceled", "The job was canceled.", status="canceled"),
        failed("error", "Invalid URL"),
        BadRequestError(400, "The url field is required"),
        BadRequestError(400, "Bad request"),
        UnprocessableEntityError(422, "Unable to create image"),
        UnprocessableEntityError(422, "'gif' is an invalid image extension."),
        # Right words, wrong kind of error: not a verdict on the input.
        RateLimitError(429, "Could not fetch the input image"),
        InternalServerError(500, "Could not fetch the input image"),
        NotFoundError(404, "Could not fetch the input image"),
        ValueError("could not fetch the input image"),
    ],
)
def test_other_failures_are_not(error: Exception):
    assert is_input_fetch_failure(error) is False


async def test_the_fakes_fetch_failure_is_recognised_end_to_end(fake, client):
    fake.fetchable = lambda asset: False
    job = await client.v1.image_background_remover.create(assets={"image_file_path": "https://cdn.example/x.png"})
    with pytest.raises(JobFailedError) as caught:
        await client.v1.image_projects.wait(id=job.id)
    assert is_input_fetch_failure(caught.value) is True
