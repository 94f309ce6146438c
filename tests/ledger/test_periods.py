from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.ledger import Period, period_bounds
from bot.ledger.periods import EPOCH


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "now", "start", "end"),
    [
        ("day", utc(2025, 3, 15, 13, 45), utc(2025, 3, 15), utc(2025, 3, 16)),
        ("day", utc(2025, 3, 15), utc(2025, 3, 15), utc(2025, 3, 16)),
        ("day", utc(2025, 12, 31, 23, 59, 59), utc(2025, 12, 31), utc(2026, 1, 1)),
        # 2025-03-12 is a Wednesday; weeks start Monday 00:00 UTC.
        ("week", utc(2025, 3, 12, 8), utc(2025, 3, 10), utc(2025, 3, 17)),
        ("week", utc(2025, 3, 10), utc(2025, 3, 10), utc(2025, 3, 17)),
        ("week", utc(2025, 3, 16, 23, 59, 59), utc(2025, 3, 10), utc(2025, 3, 17)),
        ("week", utc(2025, 1, 1, 12), utc(2024, 12, 30), utc(2025, 1, 6)),
        ("month", utc(2025, 3, 15, 12), utc(2025, 3, 1), utc(2025, 4, 1)),
        ("month", utc(2025, 3, 1), utc(2025, 3, 1), utc(2025, 4, 1)),
        ("month", utc(2025, 2, 28, 23, 59, 59, 999999), utc(2025, 2, 1), utc(2025, 3, 1)),
        ("month", utc(2024, 2, 29, 12), utc(2024, 2, 1), utc(2024, 3, 1)),
        ("month", utc(2025, 12, 31, 23, 59, 59), utc(2025, 12, 1), utc(2026, 1, 1)),
        ("month", utc(2026, 1, 1), utc(2026, 1, 1), utc(2026, 2, 1)),
    ],
)
def test_period_bounds(period: str, now: datetime, start: datetime, end: datetime) -> None:
    assert period_bounds(period, now) == (start, end)
    got_start, got_end = period_bounds(Period(period), now)
    assert got_start.tzinfo is UTC and got_end is not None and got_end.tzinfo is UTC


def test_none_never_resets() -> None:
    assert period_bounds(Period.NONE, utc(2031, 5, 5)) == (EPOCH, None)


def test_other_zones_are_converted_to_utc_first() -> None:
    # 01:00 on 1 March in UTC+2 is still February in UTC.
    now = datetime(2025, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=2)))
    assert period_bounds("month", now) == (utc(2025, 2, 1), utc(2025, 3, 1))


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        period_bounds("day", datetime(2025, 3, 1))


def test_period_names_are_case_insensitive_and_checked() -> None:
    assert period_bounds("WEEK", utc(2025, 3, 12))[0] == utc(2025, 3, 10)
    with pytest.raises(ValueError, match="day, week, month, none"):
        period_bounds("fortnight", utc(2025, 3, 12))
