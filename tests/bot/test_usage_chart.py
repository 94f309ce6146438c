"""The usage chart: the numbers behind the picture match the ledger's rows, and the picture is a real PNG."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import threading
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from bot.usage_chart import (
    OTHERS,
    PALETTE,
    ChartData,
    build_chart_data,
    chart_window,
    legend_entries,
    render_chart,
    render_png,
)

START = date(2025, 3, 1)
END = date(2025, 3, 31)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def day(n: int) -> date:
    return START + timedelta(days=n)


def spread_rows(members: dict[int, int], days: int = 31) -> list[tuple[date, int, int]]:
    """Each member spends their amount on every third day they are active, offset by their id: varied, fixed."""
    return [(day(d), user, amount) for user, amount in members.items() for d in range(days) if (d + user) % 3 == 0]


def chart(rows, *, start: date = START, end: date = END, limit: int | None = 500, top: int = 5) -> ChartData:
    data = build_chart_data(rows, start=start, end=end, limit=limit, top=top)
    assert data is not None
    return data


# -- the data ------------------------------------------------------------------------------------------------


def test_daily_totals_equal_the_rows_summed_per_day() -> None:
    rows = spread_rows({11: 5, 12: 10, 13: 15, 14: 20, 15: 25, 16: 30, 17: 35, 18: 40})
    rows += [(day(4), 11, 7), (day(4), 11, 3)]  # two rows for one member and day add up
    expected: Counter[date] = Counter()
    for when, _, credits in rows:
        expected[when] += credits

    data = chart(rows)

    assert data.days == tuple(day(n) for n in range(31))
    assert data.day_totals == tuple(expected[d] for d in data.days)
    stacked = [sum(s.per_day[i] for s in data.series) for i in range(len(data.days))]
    assert stacked == [expected[d] for d in data.days]
    assert data.total == sum(expected.values())


def test_every_day_of_the_window_is_present_including_days_without_spend() -> None:
    data = chart([(day(2), 1, 5), (day(9), 1, 10)], start=day(0), end=day(12))

    assert data.days == tuple(day(n) for n in range(13))
    assert data.day_totals == (0, 0, 5, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0)


def test_the_top_five_by_total_are_named_biggest_first_and_the_rest_are_others() -> None:
    totals = {1: 10, 2: 60, 3: 30, 4: 50, 5: 20, 6: 40, 7: 5}
    rows = [(day(n % 31), user, 5) for user, total in totals.items() for n in range(total // 5)]

    data = chart(rows)

    assert [s.key for s in data.series] == [2, 4, 6, 3, 5, None]
    assert [s.total for s in data.series] == [60, 50, 40, 30, 20, 10 + 5]
    assert [s.label_index for s in data.series] == [0, 1, 2, 3, 4, 5]
    assert [s.colour for s in data.series] == [colour for colour, _ in PALETTE] + [OTHERS[0]]
    others = data.series[-1]
    by_day: defaultdict[date, int] = defaultdict(int)
    for when, user, credits in rows:
        if user in (1, 7):
            by_day[when] += credits
    assert others.per_day == tuple(by_day[d] for d in data.days)


def test_ties_go_to_the_lower_user_id_whatever_the_row_order() -> None:
    rows = [(day(0), user, 10) for user in (909, 101, 505, 303, 707, 202, 808)]

    forwards = chart(rows)
    backwards = chart(list(reversed(rows)))

    assert [s.key for s in forwards.series] == [101, 202, 303, 505, 707, None]
    assert forwards == backwards
    assert forwards.series[-1].total == 20  # 808 and 909


@pytest.mark.parametrize("members", [6, 12, 40])
def test_never_more_than_five_members_are_named(members: int) -> None:
    data = chart(spread_rows({user: user for user in range(1, members + 1)}))

    named = [s for s in data.series if s.key is not None]
    assert len(named) == 5
    assert [s.key for s in data.series].count(None) == 1
    assert len(legend_entries(data)) == 6


def test_a_smaller_top_names_fewer() -> None:
    data = chart(spread_rows({1: 5, 2: 10, 3: 15}), top=2)

    assert [s.key for s in data.series] == [3, 2, None]


def test_no_others_series_when_everyone_is_named() -> None:
    data = chart(spread_rows({1: 5, 2: 10, 3: 15}))

    assert [s.key for s in data.series] == [3, 2, 1]


@pytest.mark.parametrize(
    "rows",
    [[], [(day(3), 1, 0), (day(4), 2, 0)], [(START - timedelta(days=1), 1, 50), (END + timedelta(days=1), 2, 50)]],
    ids=["no rows", "only zeros", "only outside the window"],
)
def test_no_spend_gives_no_chart(rows) -> None:
    assert build_chart_data(rows, start=START, end=END, limit=100) is None


def test_days_outside_the_window_are_dropped_before_ranking() -> None:
    # Member 9 spent the most overall, but all of it before the window: they must not take a top-five place.
    rows = [(START - timedelta(days=1), 9, 1000), (END + timedelta(days=1), 9, 1000)]
    rows += [(day(0), user, 5 * user) for user in range(1, 7)]

    data = chart(rows)

    assert [s.key for s in data.series] == [6, 5, 4, 3, 2, None]
    assert data.total == 5 * sum(range(1, 7))
    assert data.days[0] == START and data.days[-1] == END


def test_cumulative_is_the_running_sum_of_the_daily_totals() -> None:
    data = chart([(day(0), 1, 5), (day(2), 2, 10), (day(2), 1, 5), (day(5), 3, 20)], start=day(0), end=day(6))

    assert data.day_totals == (5, 0, 15, 0, 0, 20, 0)
    assert data.cumulative == (5, 5, 20, 20, 20, 40, 40)
    assert data.total == 40


def test_the_limit_is_carried_through_or_absent() -> None:
    rows = [(day(0), 1, 5)]

    assert chart(rows, limit=250).limit == 250
    assert chart(rows, limit=None).limit is None


def test_negative_credits_and_backwards_windows_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        build_chart_data([(day(0), 1, -5)], start=START, end=END, limit=None)
    with pytest.raises(ValueError, match="before it starts"):
        build_chart_data([(day(0), 1, 5)], start=END, end=START, limit=None)


def test_legend_entries_pair_each_series_with_its_emoji_square_and_total() -> None:
    rows = [(day(0), user, 10 * user) for user in range(1, 8)]

    entries = legend_entries(chart(rows))

    assert entries == [("🟦", 7, 70), ("🟧", 6, 60), ("🟩", 5, 50), ("🟥", 4, 40), ("🟪", 3, 30), ("⬜", None, 30)]


# -- the window ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "now", "window"),
    [
        ("day", datetime(2025, 3, 12, 15, 0, tzinfo=UTC), (date(2025, 2, 11), date(2025, 3, 12))),
        ("none", datetime(2025, 3, 12, 0, 0, tzinfo=UTC), (date(2025, 2, 11), date(2025, 3, 12))),
        ("week", datetime(2025, 3, 12, 15, 0, tzinfo=UTC), (date(2025, 3, 10), date(2025, 3, 12))),  # a Wednesday
        ("week", datetime(2025, 3, 10, 0, 0, tzinfo=UTC), (date(2025, 3, 10), date(2025, 3, 10))),
        ("month", datetime(2025, 3, 12, 15, 0, tzinfo=UTC), (date(2025, 3, 1), date(2025, 3, 12))),
        ("MONTH", datetime(2025, 3, 31, 23, 59, tzinfo=UTC), (date(2025, 3, 1), date(2025, 3, 31))),
    ],
)
def test_chart_window(period: str, now: datetime, window: tuple[date, date]) -> None:
    assert chart_window(period, now) == window


def test_the_day_and_none_windows_hold_thirty_days() -> None:
    start, end = chart_window("day", datetime(2025, 3, 12, tzinfo=UTC))

    assert (end - start).days + 1 == 30


def test_chart_window_uses_utc_days() -> None:
    # 01:30 on 1 April in UTC+3 is still 31 March in UTC, where the ledger's periods live.
    now = datetime(2025, 4, 1, 1, 30, tzinfo=timezone(timedelta(hours=3)))

    assert chart_window("month", now) == (date(2025, 3, 1), date(2025, 3, 31))


def test_chart_window_refuses_naive_times_and_unknown_periods() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        chart_window("month", datetime(2025, 3, 12))
    with pytest.raises(ValueError, match="period must be one of"):
        chart_window("year", datetime(2025, 3, 12, tzinfo=UTC))


# -- the picture ---------------------------------------------------------------------------------------------


def read_png(png: bytes) -> Image.Image:
    assert png.startswith(PNG_MAGIC)
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    return image


@pytest.mark.parametrize("limit", [750, None])
def test_render_png_is_a_real_png_of_the_stated_size(limit: int | None) -> None:
    data = chart(spread_rows({user: 5 * user for user in range(1, 9)}), limit=limit)

    png = render_png(data)

    assert read_png(png).size == (1200, 600)
    assert len(png) < 100 * 1024


def test_render_png_honours_other_sizes_and_a_single_day() -> None:
    data = chart([(day(0), 1, 5)], start=day(0), end=day(0), limit=None)

    assert read_png(render_png(data, width_px=800, height_px=400)).size == (800, 400)


def test_the_picture_is_opaque_and_uses_the_series_colours() -> None:
    """Opaque, so it reads the same on either Discord theme; and the bars really are the legend's colours."""
    data = chart([(day(0), user, 10 * user) for user in range(1, 8)], start=day(0), end=day(6))

    image = read_png(render_png(data)).convert("RGBA")

    assert image.getextrema()[3] == (255, 255)
    present = {colour for _, colour in image.getcolors(maxcolors=1 << 20)}
    for series in data.series:
        rgb = tuple(int(series.colour[i : i + 2], 16) for i in (1, 3, 5))
        assert (*rgb, 255) in present, f"{series.colour} is not drawn"


def run_python(code: str) -> str:
    """A fresh interpreter, so what is imported is this module's doing and not another test's."""
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_matplotlib_is_imported_only_to_render_and_never_pyplot() -> None:
    code = (
        "import sys\n"
        "from datetime import date\n"
        "import bot.usage_chart as chart\n"
        "print('matplotlib' in sys.modules)\n"
        "chart.render_png(chart.build_chart_data([(date(2025, 3, 1), 1, 5)], start=date(2025, 3, 1),"
        " end=date(2025, 3, 1), limit=None))\n"
        "print('matplotlib' in sys.modules, 'matplotlib.pyplot' in sys.modules)\n"
    )

    assert run_python(code).splitlines() == ["False", "True False"]


# -- rendering off the event loop ----------------------------------------------------------------------------


async def test_render_chart_renders_the_png_in_a_worker_thread() -> None:
    data = chart(spread_rows({1: 5, 2: 10}))
    threads: list[int] = []

    def worker(given: ChartData) -> bytes:
        threads.append(threading.get_ident())
        return render_png(given)

    png = await render_chart(data, worker=worker)

    assert read_png(png).size == (1200, 600)
    assert threads and threads[0] != threading.get_ident()


async def test_render_chart_defaults_to_render_png() -> None:
    png = await render_chart(chart(spread_rows({1: 5})))

    assert read_png(png).size == (1200, 600)


async def test_render_chart_draws_one_chart_at_a_time() -> None:
    data = chart([(day(0), 1, 5)])
    lock = threading.Lock()
    running = 0
    most = 0

    def worker(_: ChartData) -> bytes:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.05)
        with lock:
            running -= 1
        return b"png"

    results = await asyncio.gather(*(render_chart(data, worker=worker) for _ in range(4)))

    assert results == [b"png"] * 4
    assert most == 1


async def test_a_cancelled_render_keeps_its_slot_until_its_thread_ends() -> None:
    data = chart([(day(0), 1, 5)])
    release_first = threading.Event()
    first_started = threading.Event()
    second_started = threading.Event()

    def slow(_: ChartData) -> bytes:
        first_started.set()
        release_first.wait(5)
        return b"first"

    def quick(_: ChartData) -> bytes:
        second_started.set()
        return b"second"

    first = asyncio.create_task(render_chart(data, worker=slow))
    await asyncio.to_thread(first_started.wait, 5)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first  # the caller is let go at once...

    second = asyncio.create_task(render_chart(data, worker=quick))
    await asyncio.sleep(0.05)
    assert not second_started.is_set()  # ...but the next render waits for the abandoned thread

    release_first.set()
    assert await second == b"second"


async def test_a_failing_render_raises_and_frees_the_slot() -> None:
    data = chart([(day(0), 1, 5)])

    def broken(_: ChartData) -> bytes:
        raise RuntimeError("no canvas")

    with pytest.raises(RuntimeError, match="no canvas"):
        await render_chart(data, worker=broken)
    assert await asyncio.wait_for(render_chart(data, worker=lambda _: b"ok"), 5) == b"ok"
