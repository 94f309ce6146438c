"""A server's jobs as CSV for spreadsheets: every cell is neutralised against formula injection, and
the file can be capped in bytes so it fits Discord's upload limit.

One row per image; `request_id` and `position` (from 0, in the member's order) say which images were one request.
They come last so columns a spreadsheet already refers to by position keep their place."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from .models import JobRecord

COLUMNS = (
    "created_at",
    "interaction_id",
    "user_id",
    "channel_id",
    "project_id",
    "status",
    "credits_reserved",
    "credits_charged",
    "error",
    "request_id",
    "position",
)
# Spreadsheets evaluate a cell starting with these as a formula (or strip them and then evaluate).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: object) -> str:
    """The cell as text, prefixed with a quote when a spreadsheet would read it as a formula."""
    text = "" if cell is None else str(cell)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def job_row(record: JobRecord) -> list[object]:
    return [
        record.created_at.isoformat(),
        record.interaction_id,
        record.user_id,
        record.channel_id,
        record.project_id,
        record.status.value,
        record.credits_reserved,
        record.credits_charged,
        record.error,
        record.request_id,
        record.position,
    ]


def _line(cells: Iterable[object]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerow([neutralise(cell) for cell in cells])
    return out.getvalue().encode()


def export_csv(records: Sequence[JobRecord], *, max_bytes: int | None = None) -> tuple[bytes, int]:
    """(CSV bytes, rows left out): the header and as many records, in order, as fit within max_bytes."""
    header = _line(COLUMNS)
    if max_bytes is not None and len(header) > max_bytes:
        raise ValueError(f"max_bytes={max_bytes} cannot hold even the header")
    parts = [header]
    size = len(header)
    for written, record in enumerate(records):
        line = _line(job_row(record))
        if max_bytes is not None and size + len(line) > max_bytes:
            return b"".join(parts), len(records) - written
        parts.append(line)
        size += len(line)
    return b"".join(parts), 0
