"""Canned Magic Hour answers, each checked against the vendored OpenAPI description when built, so the
answers these tests hand back through aioresponses are ones the real API can give."""

from __future__ import annotations

from typing import Any

from tests.fakes.magic_hour import (
    CREATE_PATH,
    DEFAULT_SPEC_PATH,
    PROJECT_TEMPLATE,
    UPLOAD_URLS_PATH,
    Contract,
)

CONTRACT = Contract(DEFAULT_SPEC_PATH)


def _checked(template: str, method: str, body: dict[str, Any]) -> dict[str, Any]:
    problems = CONTRACT.response_errors(template, method, 200, body)
    assert problems == [], f"a canned {method} {template} answer breaks the spec: {problems}"
    return body


def created(project_id: str) -> dict[str, Any]:
    return _checked(CREATE_PATH, "POST", {"id": project_id, "credits_charged": 5, "frame_cost": 5})


def project(project_id: str, status: str = "complete", *, download_url: str | None = None) -> dict[str, Any]:
    downloads = [{"url": download_url, "expires_at": "2030-01-01T00:00:00.000Z"}] if download_url else []
    body = {
        "id": project_id,
        "name": None,
        "status": status,
        "image_count": len(downloads),
        "type": "BACKGROUND_REMOVER",
        "created_at": "2029-12-31T23:59:50.000Z",
        "enabled": True,
        "credits_charged": 5,
        "total_frame_cost": 5,
        "downloads": downloads,
        "error": None,
    }
    return _checked(PROJECT_TEMPLATE, "GET", body)


def upload_urls(storage: str) -> dict[str, Any]:
    item = {
        "upload_url": f"{storage}/uploads/api-assets/f0/0.png?sig=upload",
        "expires_at": "2030-01-01T00:00:00.000Z",
        "file_path": "api-assets/f0/0.png",
    }
    return _checked(UPLOAD_URLS_PATH, "POST", {"items": [item]})
