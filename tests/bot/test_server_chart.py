"""Which days and which limit a server's chart shows: the ledger is asked for exactly the window, whole UTC days."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.server_chart import chart_limit, server_chart_data

NOW = datetime(2025, 3, 15, 12, 0, tzinfo=UTC)  # a Saturday


class Days:
    """A ledger's daily per-member rows, answering only for the range asked."""

    def __init__(self, rows: list[tuple[datetime, int, int]]) -> None:
        self.rows = rows
        self.asked: list[tuple[datetime, datetime]] = []

    async def member_days(self, guild_id: int, start: datetime, end: datetime) -> list[tuple[datetime, int, int]]:
        self.asked.append((start, end))
        return [row for row in self.rows if start <= row[0] < end]


def midnight(day: int, month: int = 3) -> datetime:
    return datetime(2025, month, day, tzinfo=UTC)


@pytest.mark.parametrize(
    ("period", "first", "limit"),
    [("month", date(2025, 3, 1), 500), ("week", date(2025, 3, 10), 500), ("day", date(2025, 2, 14), None),
     ("none", date(2025, 2, 14), None)],
)  # fmt: skip
async def test_the_window_and_the_limit_line_follow_the_period(period: str, first: date, limit: int | None) -> None:
    ledger = Days([(midnight(10, 2), 1, 5), (midnight(14, 2), 2, 5), (midnight(1), 3, 5), (midnight(15), 4, 5)])
    data = await server_chart_data(ledger, 9, period=period, limit=500, now=NOW)
    assert data is not None
    assert ledger.asked == [(datetime(first.year, first.month, first.day, tzinfo=UTC), midnight(16))]
    assert (data.days[0], data.days[-1], data.limit) == (first, date(2025, 3, 15), limit)
    assert data.total == 5 * sum(1 for day, _, _ in ledger.rows if day.date() >= first)


async def test_no_spend_in_the_window_gives_no_chart() -> None:
    assert await server_chart_data(Days([(midnight(1, 1), 1, 5)]), 9, period="day", limit=10, now=NOW) is None


def test_chart_limit() -> None:
    assert [chart_limit(p, 70) for p in ("day", "week", "month", "none")] == [None, 70, 70, None]
