"""Typed payloads parsed from the API's JSON: required fields checked, unknown extra fields ignored."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from .errors import APIResponseValidationError

logger = logging.getLogger("bot.magic_hour")


class ProjectStatus(StrEnum):
    """A project's lifecycle; only complete, error and canceled are final."""

    TERMINAL: ClassVar[frozenset[ProjectStatus]]

    DRAFT = "draft"
    QUEUED = "queued"
    RENDERING = "rendering"
    COMPLETE = "complete"
    ERROR = "error"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        return self in ProjectStatus.TERMINAL


ProjectStatus.TERMINAL = frozenset({ProjectStatus.COMPLETE, ProjectStatus.ERROR, ProjectStatus.CANCELED})


def _require(data: Mapping[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(data, Mapping) or key not in data:
        raise APIResponseValidationError(f"Unexpected {what} from Magic Hour: missing field {key!r}.")
    value = data[key]
    # bool is an int subclass; an integer field must not accept true/false.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise APIResponseValidationError(f"Unexpected {what} from Magic Hour: field {key!r} has the wrong type.")
    return value


def parse_datetime(value: str, what: str = "timestamp") -> datetime:
    """ISO 8601 as the API writes it (with a trailing Z)."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise APIResponseValidationError(f"Unexpected {what} from Magic Hour: {value!r} is not a date.") from None


def parse_status(value: str) -> ProjectStatus | str:
    """An unknown status is kept as a plain string (non-terminal) so a new API status cannot crash polling."""
    try:
        return ProjectStatus(value)
    except ValueError:
        logger.warning("Unknown Magic Hour project status %r; treating it as still running", value)
        return value


@dataclass(frozen=True)
class Download:
    url: str
    expires_at: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Download:
        return cls(
            url=_require(data, "url", str, "download"),
            expires_at=parse_datetime(_require(data, "expires_at", str, "download"), "download expiry"),
        )


@dataclass(frozen=True)
class ProjectError:
    code: str
    message: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProjectError:
        return cls(
            code=_require(data, "code", str, "project error"),
            message=_require(data, "message", str, "project error"),
        )


@dataclass(frozen=True)
class ImageProject:
    id: str
    name: str | None
    status: ProjectStatus | str
    image_count: int
    type: str
    created_at: datetime
    enabled: bool
    credits_charged: int
    downloads: list[Download] = field(default_factory=list)
    error: ProjectError | None = None

    @property
    def is_terminal(self) -> bool:
        return isinstance(self.status, ProjectStatus) and self.status.is_terminal

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageProject:
        what = "project"
        name = _require(data, "name", (str, type(None)), what)
        error = _require(data, "error", (Mapping, type(None)), what)
        return cls(
            id=_require(data, "id", str, what),
            name=name,
            status=parse_status(_require(data, "status", str, what)),
            image_count=_require(data, "image_count", int, what),
            type=_require(data, "type", str, what),
            created_at=parse_datetime(_require(data, "created_at", str, what), "project creation time"),
            enabled=_require(data, "enabled", bool, what),
            credits_charged=_require(data, "credits_charged", int, what),
            downloads=[Download.from_json(d) for d in _require(data, "downloads", list, what)],
            error=ProjectError.from_json(error) if error is not None else None,
        )


@dataclass(frozen=True)
class CreateResult:
    id: str
    credits_charged: int
    frame_cost: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CreateResult:
        frame_cost = data.get("frame_cost") if isinstance(data, Mapping) else None
        return cls(
            id=_require(data, "id", str, "create result"),
            credits_charged=_require(data, "credits_charged", int, "create result"),
            frame_cost=frame_cost if isinstance(frame_cost, int) and not isinstance(frame_cost, bool) else None,
        )


@dataclass(frozen=True)
class UploadUrl:
    upload_url: str
    expires_at: datetime
    file_path: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UploadUrl:
        what = "upload URL"
        return cls(
            upload_url=_require(data, "upload_url", str, what),
            expires_at=parse_datetime(_require(data, "expires_at", str, what), "upload URL expiry"),
            file_path=_require(data, "file_path", str, what),
        )


@dataclass(frozen=True)
class GenerateResult:
    project: ImageProject
    downloaded_paths: list[Path] = field(default_factory=list)


@dataclass
class DownloadedFile:
    """A finished download: on disk (`path`) or in a spooled buffer (`file`, positioned at 0)."""

    path: Path | None
    file: BinaryIO | None
    size: int
    filename: str
    content_type: str | None
    url: str
    expires_at: datetime

    def read_bytes(self) -> bytes:
        """Whole content; fine for images, which is what this client downloads."""
        if self.file is not None:
            self.file.seek(0)
            data = self.file.read()
            self.file.seek(0)
            return data
        if self.path is not None:
            return self.path.read_bytes()
        raise ValueError("This download has no content.")

    def close(self) -> None:
        """Free the buffer; a file on disk stays (the caller owns it)."""
        if self.file is not None:
            with contextlib.suppress(Exception):
                self.file.close()

    def __enter__(self) -> DownloadedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
