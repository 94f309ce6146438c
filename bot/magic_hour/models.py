"""Typed payloads parsed from the API's JSON: required fields checked, unknown extra fields ignored.

Where money or identity is at stake the check is strict: a project id that is empty, longer than
MAX_ID_LENGTH or not printable, or a credits_charged below 0 or above MAX_CREDITS_CHARGED, fails
validation (APIResponseValidationError; the transport retries a GET and turns a create into
JobMayExistError). Informational numbers are clamped instead: a negative image_count becomes 0 and a
nonsensical deprecated frame_cost becomes None. So no model ever hands out a negative charge or an id
that cannot be stored.
"""

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


MAX_ID_LENGTH = 255
MAX_CREDITS_CHARGED = 1_000_000  # far above any single image job; beyond it the number is garbage


def _project_id(data: Mapping[str, Any], key: str, what: str) -> str:
    value = _require(data, key, str, what)
    if not value or len(value) > MAX_ID_LENGTH or not value.isprintable() or any(c.isspace() for c in value):
        raise APIResponseValidationError(
            f"Unexpected {what} from Magic Hour: field {key!r} is not a usable id ({len(value)} characters)."
        )
    return value


def _credits(data: Mapping[str, Any], key: str, what: str) -> int:
    value = _require(data, key, int, what)
    if not 0 <= value <= MAX_CREDITS_CHARGED:
        raise APIResponseValidationError(
            f"Unexpected {what} from Magic Hour: field {key!r} is {value}, outside 0..{MAX_CREDITS_CHARGED}."
        )
    return value


def _clamped_count(data: Mapping[str, Any], key: str, what: str) -> int:
    value = _require(data, key, int, what)
    if value < 0:
        logger.warning("Magic Hour sent a negative %s %s (%d); using 0", what, key, value)
        return 0
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
            id=_project_id(data, "id", what),
            name=name,
            status=parse_status(_require(data, "status", str, what)),
            image_count=_clamped_count(data, "image_count", what),
            type=_require(data, "type", str, what),
            created_at=parse_datetime(_require(data, "created_at", str, what), "project creation time"),
            enabled=_require(data, "enabled", bool, what),
            credits_charged=_credits(data, "credits_charged", what),
            downloads=[Download.from_json(d) for d in _require(data, "downloads", list, what)],
            error=ProjectError.from_json(error) if error is not None else None,
        )

    def to_json(self) -> dict[str, Any]:
        """The project as the API describes it, with only the fields this client reads (a stored event keeps
        no more than the bot needs)."""
        status = self.status.value if isinstance(self.status, ProjectStatus) else self.status
        return {
            "id": self.id,
            "name": self.name,
            "status": status,
            "image_count": self.image_count,
            "type": self.type,
            "created_at": self.created_at.isoformat(),
            "enabled": self.enabled,
            "credits_charged": self.credits_charged,
            "downloads": [{"url": d.url, "expires_at": d.expires_at.isoformat()} for d in self.downloads],
            "error": None if self.error is None else {"code": self.error.code, "message": self.error.message},
        }


@dataclass(frozen=True)
class CreateResult:
    id: str
    credits_charged: int
    frame_cost: int | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CreateResult:
        frame_cost = data.get("frame_cost") if isinstance(data, Mapping) else None
        usable = isinstance(frame_cost, int) and not isinstance(frame_cost, bool) and frame_cost >= 0
        return cls(
            id=_project_id(data, "id", "create result"),
            credits_charged=_credits(data, "credits_charged", "create result"),
            frame_cost=frame_cost if usable and frame_cost <= MAX_CREDITS_CHARGED else None,
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
class Subscription:
    status: str  # "active" or "past_due" today; a new value is kept as it is
    cancel_at_period_end: bool
    billing_interval: str | None = None  # "month", "year" or None
    current_period_end: str | None = None  # as the API writes it; not always a full timestamp
    name: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Subscription:
        what = "subscription"
        return cls(
            status=_require(data, "status", str, what),
            cancel_at_period_end=_require(data, "cancel_at_period_end", bool, what),
            billing_interval=_optional(data, "billing_interval", str, what),
            current_period_end=_optional(data, "current_period_end", str, what),
            name=_optional(data, "name", str, what),
        )


@dataclass(frozen=True)
class Account:
    """GET /v1/account: the balance the bot can still spend, and the plan behind it."""

    id: str
    credits: int  # as reported, not clamped: an overdrawn account is worth seeing as such
    email: str | None
    tier: str  # "free", "creator", "pro", "business"; a new tier is kept as it is
    subscription: Subscription | None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Account:
        what = "account"
        subscription = _require(data, "subscription", (Mapping, type(None)), what)
        return cls(
            id=_require(data, "id", str, what),
            credits=_require(data, "credits", int, what),
            email=_require(data, "email", (str, type(None)), what),
            tier=_require(data, "tier", str, what),
            subscription=Subscription.from_json(subscription) if subscription is not None else None,
        )


def _optional(data: Mapping[str, Any], key: str, kind: type, what: str) -> Any:
    """A field the spec lets be absent or null."""
    if data.get(key) is None:
        return None
    return _require(data, key, kind, what)


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
