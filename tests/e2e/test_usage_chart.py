"""The usage chart in `/credits usage`, through discord.py's real dispatch, on SQLite and PostgreSQL: a manager's
answer carries a PNG whose numbers are the ledger's daily spend (checked against the jobs this test wrote, not
against the code's own sums), its legend is in the text, and plain members get no chart."""

from __future__ import annotations

import io
import random
import threading
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from PIL import Image

import bot.usage_chart
from bot.ledger import JobStatus
from bot.usage_chart import ChartData
from tests.e2e.conftest import BotWorld, bot_world
from tests.e2e.engines import database_url, engine_settings
from tests.e2e.test_credits import add_job, credits, ephemeral_reply
from tests.fakes.interactions import ADMIN_PERMISSIONS, DEFAULT_MEMBER_PERMISSIONS, snowflake
from tests.fakes.magic_hour import FakeMagicHour

__all__ = ["database_url"]  # the fixture, imported so pytest finds it here

SQUARES = ("🟦", "🟧", "🟩", "🟥", "🟪")


class Renders:
    """What the bot handed to matplotlib, and where: the real `render_png` still draws every picture."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.drawn: list[tuple[ChartData, bytes, bool]] = []
        real = bot.usage_chart.render_png

        def recording(data: ChartData, **kw: int) -> bytes:
            png = real(data, **kw)
            self.drawn.append((data, png, threading.current_thread() is threading.main_thread()))
            return png

        monkeypatch.setattr(bot.usage_chart, "render_png", recording)


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Renders:
    return Renders(monkeypatch)


@pytest.fixture
async def daily_world(tmp_path: Path, mh: FakeMagicHour, database_url: str | None) -> AsyncIterator[BotWorld]:
    """A daily limit: the chart covers the last 30 days."""
    overrides = {"DEFAULT_GUILD_CREDIT_LIMIT": "1000", "DEFAULT_GUILD_CREDIT_PERIOD": "day"}
    async with bot_world(tmp_path, mh, **overrides, **engine_settings(database_url)) as world:
        yield world


@pytest.fixture
async def monthly_world(tmp_path: Path, mh: FakeMagicHour, database_url: str | None) -> AsyncIterator[BotWorld]:
    async with bot_world(tmp_path, mh, DEFAULT_GUILD_CREDIT_LIMIT="1000", **engine_settings(database_url)) as world:
        yield world


def at_noon(day: date) -> datetime:
    return datetime.combine(day, time(12), tzinfo=UTC)


async def spend(world: BotWorld, days: list[date], seed: int) -> dict[tuple[date, int], int]:
    """Jobs by seven members on `days` (complete at 5 or 3 credits, refunded, or still running), written through the
    ledger; returns what each member's jobs count per day, worked out here from what was written."""
    rng = random.Random(seed)
    members = [snowflake() for _ in range(7)]
    counted: dict[tuple[date, int], int] = defaultdict(int)
    for day in days:
        for rank, user in enumerate(members):
            for _ in range(rng.randint(0, 7 - rank)):  # the first members spend most
                kind = rng.choice(["complete", "cheap", "failed", "running"])
                if kind == "complete":
                    await add_job(world, user, now=at_noon(day))
                    counted[(day, user)] += 5
                elif kind == "cheap":
                    await add_job(world, user, charged=3, now=at_noon(day))
                    counted[(day, user)] += 3
                elif kind == "failed":  # refunded: counts nothing
                    await add_job(world, user, status=JobStatus.FAILED, charged=0, now=at_noon(day))
                else:  # reserved, still running: counts its 5
                    await add_job(world, user, status=None, now=at_noon(day))
                    counted[(day, user)] += 5
    return counted


def expected_series(counted: dict[tuple[date, int], int]) -> list[tuple[int | None, int]]:
    """(member or None for others, total) in the chart's order: top five by total (ties: lower id), then others."""
    totals: Counter[int] = Counter()
    for (_, user), amount in counted.items():
        totals[user] += amount
    ranked = sorted((user for user in totals if totals[user]), key=lambda user: (-totals[user], user))
    series: list[tuple[int | None, int]] = [(user, totals[user]) for user in ranked[:5]]
    if rest := sum(totals[user] for user in ranked[5:]):
        series.append((None, rest))
    return series


def daily_totals(counted: dict[tuple[date, int], int]) -> Counter[date]:
    per_day: Counter[date] = Counter()
    for (day, _), amount in counted.items():
        per_day[day] += amount
    return per_day


def uploaded_png(world: BotWorld, iid: int) -> bytes:
    (upload,) = world.discord.original_edits(world.discord.token_of(iid))[-1].files
    assert upload.filename == "usage.png"
    return upload.data


async def test_a_managers_usage_carries_a_chart_of_the_last_30_days_that_matches_the_ledger(
    daily_world: BotWorld, renders: Renders
) -> None:
    world = daily_world
    today = world.bot.ledger.now().date()
    days = [today - timedelta(days=n) for n in (0, 1, 2, 5, 13, 29)]
    counted = await spend(world, days, seed=7)
    await add_job(world, snowflake(), now=at_noon(today - timedelta(days=30)))  # a day before the window

    iid = await credits(world, "usage", permissions=ADMIN_PERMISSIONS)
    text, body = ephemeral_reply(world, iid)

    ((data, png, on_main_thread),) = renders.drawn
    assert not on_main_thread, "the chart must be drawn off the event loop"
    assert data.days == tuple(today - timedelta(days=n) for n in range(29, -1, -1))
    assert data.day_totals == tuple(daily_totals(counted)[day] for day in data.days)
    assert [(s.key, s.total) for s in data.series] == expected_series(counted)
    assert data.limit is None  # a daily limit is not drawn against 30 days of running total
    assert data.cumulative[-1] == data.total == sum(counted.values())

    assert uploaded_png(world, iid) == png
    image = Image.open(io.BytesIO(png))
    assert (image.format, image.size) == ("PNG", (1200, 600))
    assert body["attachments"][0]["filename"] == "usage.png"

    assert (
        "📊 The chart shows credits per day over the last 30 days, stacked by member, with their running total." in text
    )
    legend = " · ".join(
        f"{SQUARES[n] if who is not None else '⬜'} {f'<@{who}>' if who is not None else 'others'} {total}"
        for n, (who, total) in enumerate(expected_series(counted))
    )
    assert legend in text


async def test_a_monthly_chart_runs_from_the_first_of_the_month_against_the_limit(
    monthly_world: BotWorld, renders: Renders
) -> None:
    world = monthly_world
    today = world.bot.ledger.now().date()
    first = today.replace(day=1)
    days = sorted({first, first + (today - first) // 2, today})
    counted = await spend(world, days, seed=11)
    if first > date(today.year, 1, 1):
        await add_job(world, snowflake(), now=at_noon(first - timedelta(days=1)))  # last month: not drawn

    iid = await credits(world, "usage", permissions=ADMIN_PERMISSIONS)
    text, _ = ephemeral_reply(world, iid)

    ((data, _, _),) = renders.drawn
    assert (data.days[0], data.days[-1], data.limit) == (first, today, 1000)
    assert data.day_totals == tuple(daily_totals(counted)[day] for day in data.days)
    usage = await world.bot.ledger.usage(world.discord.guild_id)
    assert data.total == usage.total == sum(counted.values())
    assert Image.open(io.BytesIO(uploaded_png(world, iid))).size == (1200, 600)
    assert (
        "📊 The chart shows credits per day this month, stacked by member, with their running total against the "
        "server's limit of 1,000 credits (dashed)." in text
    )


async def test_a_plain_members_usage_has_no_chart(daily_world: BotWorld, renders: Renders) -> None:
    world = daily_world
    await add_job(world, world.discord.user.id)
    iid = await credits(world, "usage", permissions=DEFAULT_MEMBER_PERMISSIONS)
    text, body = ephemeral_reply(world, iid)
    assert renders.drawn == []
    assert not body.get("attachments") and not world.discord.original_edits(world.discord.token_of(iid))[-1].files
    assert "📊" not in text and "<@" not in text


async def test_no_spend_no_chart_and_the_answer_says_so(daily_world: BotWorld, renders: Renders) -> None:
    world = daily_world
    await add_job(world, snowflake(), status=JobStatus.FAILED, charged=0)  # refunded: nothing spent
    iid = await credits(world, "usage", permissions=ADMIN_PERMISSIONS)
    text, body = ephemeral_reply(world, iid)
    assert renders.drawn == []
    assert not body.get("attachments")
    assert "📊 No credits were spent over the last 30 days, so there is no chart." in text


async def test_a_chart_that_fails_to_draw_leaves_the_rest_of_the_answer(
    daily_world: BotWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = daily_world

    def broken(data: ChartData, **kw: int) -> bytes:
        raise RuntimeError("no fonts today")

    monkeypatch.setattr(bot.usage_chart, "render_png", broken)
    await add_job(world, world.discord.user.id)
    iid = await credits(world, "usage", permissions=ADMIN_PERMISSIONS)
    text, body = ephemeral_reply(world, iid)
    assert not body.get("attachments")
    assert "This server has used 5 of 1,000 credits today." in text
    assert "📊 The chart could not be drawn this time" in text
