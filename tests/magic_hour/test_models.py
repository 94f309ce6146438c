"""Parsing the API's JSON: required fields enforced, extra fields tolerated, unknown statuses survivable."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from bot.magic_hour import (
    APIResponseValidationError,
    CreateResult,
    ImageProject,
    JobFailedError,
    ProjectStatus,
)
from bot.magic_hour.models import MAX_CREDITS_CHARGED, MAX_ID_LENGTH

PROJECT = {
    "id": "cuid-example",
    "name": None,
    "status": "complete",
    "image_count": 1,
    "type": "BACKGROUND_REMOVER",
    "created_at": "2024-10-19T05:16:19.027Z",
    "enabled": True,
    "credits_charged": 5,
    "total_frame_cost": 5,
    "downloads": [{"url": "https://videos.magichour.ai/id/output.png", "expires_at": "2024-10-20T05:16:19.027Z"}],
    "error": None,
}


def test_project_parses_with_typed_fields_and_ignores_extras():
    project = ImageProject.from_json(PROJECT)
    assert project.status is ProjectStatus.COMPLETE and project.is_terminal
    assert project.created_at == datetime(2024, 10, 19, 5, 16, 19, 27000, tzinfo=UTC)
    assert project.downloads[0].expires_at.tzinfo is not None
    assert project.name is None and project.error is None


@pytest.mark.parametrize("missing", ["id", "status", "downloads", "error", "credits_charged", "created_at"])
def test_a_missing_required_field_is_a_clear_error(missing: str):
    broken = {k: v for k, v in PROJECT.items() if k != missing}
    with pytest.raises(APIResponseValidationError, match=missing):
        ImageProject.from_json(broken)


def test_wrong_types_are_refused():
    with pytest.raises(APIResponseValidationError):
        ImageProject.from_json({**PROJECT, "credits_charged": True})
    with pytest.raises(APIResponseValidationError):
        ImageProject.from_json({**PROJECT, "created_at": "yesterday"})


def test_unknown_status_is_kept_and_not_terminal(caplog):
    caplog.set_level(logging.WARNING, logger="bot.magic_hour")
    project = ImageProject.from_json({**PROJECT, "status": "moderating"})
    assert project.status == "moderating" and not project.is_terminal
    assert "moderating" in caplog.text


def test_terminal_statuses():
    assert {ProjectStatus.COMPLETE, ProjectStatus.ERROR, ProjectStatus.CANCELED} == ProjectStatus.TERMINAL
    assert not ProjectStatus.QUEUED.is_terminal and ProjectStatus.CANCELED.is_terminal
    assert "TERMINAL" not in ProjectStatus.__members__


def test_create_result_frame_cost_is_optional():
    assert CreateResult.from_json({"id": "a", "credits_charged": 5}) == CreateResult("a", 5, None)
    assert CreateResult.from_json({"id": "a", "credits_charged": 5, "frame_cost": 5}).frame_cost == 5


def test_job_failed_error_for_an_error_project():
    failed = ImageProject.from_json(
        {
            **PROJECT,
            "status": "error",
            "credits_charged": 0,
            "downloads": [],
            "error": {"code": "no_source_face", "message": "Please use an image with a detectable face"},
        }
    )
    error = JobFailedError(failed)
    assert (error.code, error.message, error.project_id, error.status) == (
        "no_source_face",
        "Please use an image with a detectable face",
        "cuid-example",
        None,
    )


# --- money and identity are validated; informational numbers are clamped


def create_answer(**changes: object) -> dict:
    return {"id": "cm1abc", "credits_charged": 5, "frame_cost": 5, **changes}


@pytest.mark.parametrize(
    "changes",
    [
        {"credits_charged": -1},
        {"credits_charged": MAX_CREDITS_CHARGED + 1},
        {"credits_charged": 5.0},
        {"id": ""},
        {"id": "x" * (MAX_ID_LENGTH + 1)},
        {"id": "cm 1"},
        {"id": "cm1\x00"},
    ],
)
def test_unusable_charges_and_ids_fail_validation(changes: dict):
    with pytest.raises(APIResponseValidationError):
        CreateResult.from_json(create_answer(**changes))
    with pytest.raises(APIResponseValidationError):
        ImageProject.from_json({**PROJECT, **changes})


def test_the_largest_usable_values_pass():
    result = CreateResult.from_json(create_answer(id="c" * MAX_ID_LENGTH, credits_charged=MAX_CREDITS_CHARGED))
    assert (len(result.id), result.credits_charged) == (MAX_ID_LENGTH, MAX_CREDITS_CHARGED)
    assert CreateResult.from_json(create_answer(credits_charged=0)).credits_charged == 0


def test_informational_numbers_are_clamped_not_fatal():
    assert CreateResult.from_json(create_answer(frame_cost=-3)).frame_cost is None
    assert CreateResult.from_json(create_answer(frame_cost=10**15)).frame_cost is None
    assert ImageProject.from_json({**PROJECT, "image_count": -2}).image_count == 0
