"""A server's usage chart from its ledger: which days it covers, which limit line applies, and the numbers drawn.

`bot/usage_chart.py` turns rows into a picture; this decides which rows. The ledger keeps each member's credits
per UTC day (its running balances), so the chart costs one bounded query whatever the server's history.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from bot.ledger import Period, parse_period
from bot.usage_chart import ChartData, build_chart_data, chart_window


class MemberDays(Protocol):
    async def member_days(self, guild_id: int, start: datetime, end: datetime) -> list[tuple[datetime, int, int]]: ...


def chart_limit(period: Period | str, limit: int) -> int | None:
    """The server's limit as a line only where the chart's window is its period (week, month): a daily limit
    against 30 days of running total, or a one-off budget against its last 30 days, would be a false comparison."""
    return limit if parse_period(period) in (Period.WEEK, Period.MONTH) else None


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


async def server_chart_data(
    ledger: MemberDays, guild_id: int, *, period: Period | str, limit: int, now: datetime
) -> ChartData | None:
    """The chart of the server's current window (see `chart_window`); None when nobody spent anything in it."""
    first, last = chart_window(period, now)
    rows = await ledger.member_days(guild_id, _midnight(first), _midnight(last + timedelta(days=1)))
    return build_chart_data(
        ((moment.date(), user_id, credits) for moment, user_id, credits in rows),
        start=first,
        end=last,
        limit=chart_limit(period, limit),
    )
