"""Rows to records, and the keys that name a job: shared by every part of the ledger."""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import and_
from sqlalchemy.engine import Row
from sqlalchemy.sql import ColumnElement

from .balances import JournalEntry
from .lifecycle import JobStatus
from .models import JobRecord, Origin, Payer, RequestRecord
from .schema import jobs


def job_record(row: Row[Any]) -> JobRecord:
    data = row._mapping
    return JobRecord(
        id=int(data["id"]),
        interaction_id=int(data["interaction_id"]),
        guild_id=_optional_id(data["guild_id"]),
        channel_id=int(data["channel_id"]),
        user_id=int(data["user_id"]),
        project_id=data["project_id"],
        status=JobStatus(data["status"]),
        credits_reserved=int(data["credits_reserved"]),
        credits_charged=data["credits_charged"],
        error=data["error"],
        input_url=data["input_url"],
        background_url=data["background_url"],
        name=data["name"],
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        delivered=bool(data["delivered"]),
        sent_at=data["sent_at"],
        delivery_owner=data["delivery_owner"],
        request_id=data["request_id"],
        position=int(data["position"] or 0),
        input_filename=data["input_filename"],
        payer=Payer(data["payer"]),
    )


def request_record(row: Row[Any]) -> RequestRecord:
    data = row._mapping
    origin = Origin(
        interaction_id=int(data["interaction_id"]),
        guild_id=_optional_id(data["guild_id"]),
        channel_id=int(data["channel_id"]),
        user_id=int(data["user_id"]),
        created_at=data["created_at"],
        application_id=data["application_id"],
        token=data["interaction_token"],
        locale=data["locale"],
    )
    return RequestRecord(
        id=data["id"],
        origin=origin,
        private=bool(data["private"]),
        images=int(data["images"]),
        payer=Payer(data["payer"]),
        channel_posts=bool(data["channel_posts"]),
        options=data["options"],
    )


def journal_entry(data: Any) -> JournalEntry:
    """A job as the balances see it (a row or a mapping with the same names)."""
    return JournalEntry(
        payer=Payer(data.payer),
        guild_id=_optional_id(data.guild_id),
        user_id=int(data.user_id),
        created_at=data.created_at,
        status=JobStatus(data.status),
        credits_reserved=int(data.credits_reserved),
        credits_charged=None if data.credits_charged is None else int(data.credits_charged),
    )


def _optional_id(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def job_key(interaction_id: int, position: int) -> ColumnElement[bool]:
    """One image's job: its request's interaction and its place in that request."""
    return and_(jobs.c.interaction_id == interaction_id, jobs.c.position == position)


def new_request_id() -> str:
    """Time-ordered and unique across processes (like a ULID): hex milliseconds, then randomness."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"
