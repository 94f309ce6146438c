"""Accounting periods as pure functions of a UTC instant, so usage needs no reset job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Period(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    NONE = "none"


def parse_period(value: Period | str) -> Period:
    """Accept the enum or its name in any case, with a message an admin can act on."""
    if isinstance(value, Period):
        return value
    try:
        return Period(str(value).strip().lower())
    except ValueError:
        choices = ", ".join(p.value for p in Period)
        raise ValueError(f"period must be one of {choices} (got {value!r})") from None


def as_utc(moment: datetime) -> datetime:
    """Refuse naive datetimes: guessing their zone would shift period boundaries silently."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware (use datetime.now(UTC))")
    return moment.astimezone(UTC)


def period_bounds(period: Period | str, now: datetime) -> tuple[datetime, datetime | None]:
    """[start, end) of the period containing `now`, in UTC; `none` never resets (end is None)."""
    period = parse_period(period)
    now = as_utc(now)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return midnight, midnight + timedelta(days=1)
    if period is Period.WEEK:
        start = midnight - timedelta(days=now.weekday())
        return start, start + timedelta(days=7)
    if period is Period.MONTH:
        start = midnight.replace(day=1)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    return EPOCH, None
