"""The admins' usage chart: credits per day, stacked by the top members, with the running spend against the limit.

Two halves. `build_chart_data` is pure: it turns the ledger's daily per-member credits into exactly the numbers the
picture shows, so tests check the data rather than pixels. `render_png` draws them with matplotlib's Agg canvas.

Only numbers and dates are drawn: matplotlib's bundled font has no CJK (or most other) glyphs and member names can be
in any script, so who is which colour goes in the message text (`legend_entries`, whose emoji squares match the bars).
matplotlib is imported inside the render path only, so the bot's start-up never pays for it.
"""

from __future__ import annotations

import asyncio
import io
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from bot.ledger.periods import Period, as_utc, parse_period, period_bounds

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WINDOW_DAYS = 30
"""`day` and `none` periods have no useful "current period" to draw, so they get the last 30 days."""

TOP_MEMBERS = 5

# Okabe–Ito hues (distinguishable with every common colour-vision deficiency), each paired with the Discord emoji
# square closest to it, so "🟦 <@id>" in the message names the blue bars. Yellow is left out: it vanishes on white.
PALETTE: tuple[tuple[str, str], ...] = (
    ("#0072B2", "🟦"),  # blue
    ("#E69F00", "🟧"),  # orange
    ("#009E73", "🟩"),  # bluish green
    ("#D55E00", "🟥"),  # vermillion
    ("#CC79A7", "🟪"),  # reddish purple
)
OTHERS: tuple[str, str] = ("#C4C4C4", "⬜")  # light grey: everyone else, the quietest colour, lighter than any hue

# An opaque light card: black text on it reads the same whatever the Discord theme around it, and its slight grey
# keeps it from glaring on the dark theme while still showing its edge on the light one.
BACKGROUND = "#F4F4F5"
INK = "#1F2328"
GRID = "#D0D3D8"
WIDTH_PX = 1200
HEIGHT_PX = 600
DPI = 100
FONT_SIZE = 17  # points at 100 dpi ≈ 24 px: about 10 px once Discord shrinks the image into a message
MAX_DATE_LABELS = 10
MIN_DAY_SLOTS = 7


@dataclass(frozen=True, slots=True)
class Series:
    """One stacked layer: a member (`key` is their user id) or, with `key` None, everyone outside the top five."""

    key: int | None
    label_index: int
    per_day: tuple[int, ...]
    colour: str

    @property
    def total(self) -> int:
        return sum(self.per_day)


@dataclass(frozen=True, slots=True)
class ChartData:
    """Everything the picture shows, and nothing else: what a test compares with the ledger."""

    days: tuple[date, ...]
    series: tuple[Series, ...]
    limit: int | None
    cumulative: tuple[int, ...]
    total: int

    @property
    def day_totals(self) -> tuple[int, ...]:
        return tuple(sum(values) for values in zip(*(s.per_day for s in self.series), strict=True))


def chart_window(period: Period | str, now: datetime) -> tuple[date, date]:
    """First and last day (both drawn) of the chart for a server's period, in UTC like the ledger's periods.

    `week` and `month` draw the current period up to today (days still to come have no spend to show);
    `day` and `none` draw the last 30 days, today included.
    """
    period = parse_period(period)
    today = as_utc(now).date()
    if period in (Period.WEEK, Period.MONTH):
        start, _ = period_bounds(period, now)
        return start.date(), today
    return today - timedelta(days=WINDOW_DAYS - 1), today


def build_chart_data(
    rows: Iterable[tuple[date, int, int]],
    *,
    start: date,
    end: date,
    limit: int | None,
    top: int = TOP_MEMBERS,
) -> ChartData | None:
    """The chart's numbers from `(day, user_id, credits)` rows; None when nobody spent anything in the window.

    Rows for the same member and day add up; days outside [start, end] are ignored. The top `top` members by
    total are named (ties go to the lower user id, so the same ledger always gives the same chart); everyone
    else is summed into one "others" series.
    """
    if end < start:
        raise ValueError(f"the window ends ({end}) before it starts ({start})")
    if not 0 <= top <= len(PALETTE):
        raise ValueError(f"top must be between 0 and {len(PALETTE)}: there are only that many colours")
    days = tuple(start + timedelta(days=i) for i in range((end - start).days + 1))
    index = {day: i for i, day in enumerate(days)}
    per_member: dict[int, list[int]] = defaultdict(lambda: [0] * len(days))
    for day, user_id, credits in rows:
        if credits < 0:
            raise ValueError(f"credits spent cannot be negative (user {user_id} on {day}: {credits})")
        position = index.get(day)
        if position is not None and credits:
            per_member[user_id][position] += credits

    ranked = sorted(per_member.items(), key=lambda item: (-sum(item[1]), item[0]))
    series = [
        Series(key=user_id, label_index=i, per_day=tuple(values), colour=PALETTE[i][0])
        for i, (user_id, values) in enumerate(ranked[:top])
    ]
    rest = [sum(column) for column in zip(*(values for _, values in ranked[top:]), strict=True)]
    if any(rest):
        series.append(Series(key=None, label_index=len(series), per_day=tuple(rest), colour=OTHERS[0]))
    if not series:
        return None

    day_totals = [sum(column) for column in zip(*(s.per_day for s in series), strict=True)]
    cumulative = []
    running = 0
    for amount in day_totals:
        running += amount
        cumulative.append(running)
    return ChartData(days=days, series=tuple(series), limit=limit, cumulative=tuple(cumulative), total=running)


def legend_entries(data: ChartData) -> list[tuple[str, int | None, int]]:
    """`(emoji square, user id or None for others, credits)` per series, in the chart's order, for the message text."""
    emoji = {colour: square for colour, square in (*PALETTE, OTHERS)}
    return [(emoji[s.colour], s.key, s.total) for s in data.series]


def render_png(data: ChartData, *, width_px: int = WIDTH_PX, height_px: int = HEIGHT_PX) -> bytes:
    """The chart as a PNG of exactly `width_px` × `height_px`.

    Uses a private Figure and Agg canvas (never pyplot's global state) and sets every style on the artists
    rather than in rcParams, so a render in a worker thread changes no setting another thread could see.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI, facecolor=BACKGROUND, layout="constrained")
    figure.get_layout_engine().set(w_pad=0.15, h_pad=0.15)  # inches of margin; the layout fits any label width
    canvas = FigureCanvasAgg(figure)
    try:
        _draw(figure, data)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", facecolor=BACKGROUND, metadata={"Software": None})
        return buffer.getvalue()
    finally:
        # Figures are reference cycles that wait for the garbage collector's rare full pass; emptied, with the
        # pixel buffer dropped, each waits as a few kB instead of megabytes (bench.usage_chart: +5 MiB, not +40).
        figure.clear()
        canvas.renderer = None


def _draw(figure: Figure, data: ChartData) -> None:
    from matplotlib.collections import PolyCollection
    from matplotlib.patheffects import withStroke
    from matplotlib.ticker import MaxNLocator, StrMethodFormatter

    bars = figure.add_subplot()
    line = bars.twinx()
    positions = range(len(data.days))

    # One PolyCollection per series rather than `bar()`: 186 separate patches cost more than the whole drawing.
    bottom = [0] * len(data.days)
    for series in data.series:
        boxes = [
            [(x - 0.4, base), (x - 0.4, base + value), (x + 0.4, base + value), (x + 0.4, base)]
            for x, base, value in zip(positions, bottom, series.per_day, strict=True)
            if value
        ]
        # A thin background-coloured edge parts neighbouring layers even where two hues look alike to some eyes.
        layer = PolyCollection(boxes, facecolors=series.colour, edgecolors=BACKGROUND, linewidths=1.2, zorder=2)
        bars.add_collection(layer, autolim=False)
        bottom = [b + v for b, v in zip(bottom, series.per_day, strict=True)]

    halo = [withStroke(linewidth=6, foreground=BACKGROUND)]  # keeps the line readable where it crosses bars
    line.plot(positions, data.cumulative, color=INK, linewidth=2.5, marker="o", markersize=5, path_effects=halo)
    top_of_line = max(data.cumulative[-1], data.limit or 0) or 1
    if data.limit is not None:
        line.axhline(data.limit, color=INK, linewidth=2, linestyle=(0, (6, 4)))
        line.annotate(
            f"{data.limit:,}",
            xy=(1, data.limit),
            xycoords=("axes fraction", "data"),
            xytext=(-6, 5),
            textcoords="offset points",
            ha="right",
            va="bottom",
            fontsize=FONT_SIZE,
            fontweight="bold",
            color=INK,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": BACKGROUND, "edgecolor": "none"},
        )

    spare = max(MIN_DAY_SLOTS - len(data.days), 0) / 2  # a one-day week is a bar, not a wall of colour
    bars.set_xlim(-0.6 - spare, len(data.days) - 0.4 + spare)
    bars.set_ylim(0, max(bottom) * 1.1)
    line.set_ylim(0, top_of_line * 1.12)
    for axes in (bars, line):
        axes.yaxis.set_major_locator(MaxNLocator(nbins=6, integer=True, min_n_ticks=1))
        axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        _style_axes(axes)
    bars.set_facecolor(BACKGROUND)
    bars.grid(axis="y", color=GRID, linewidth=1, zorder=0)
    bars.set_axisbelow(True)
    step = -(-len(data.days) // MAX_DATE_LABELS)  # ceiling division
    labelled = list(range(len(data.days) - 1, -1, -step))[::-1]  # count back from today so it is always labelled
    bars.set_xticks(list(positions), minor=True)
    bars.set_xticks(labelled, [data.days[i].strftime("%m-%d") for i in labelled])


def _style_axes(axes: Axes) -> None:
    axes.tick_params(colors=INK, labelsize=FONT_SIZE, length=5, width=1.2)
    axes.tick_params(which="minor", length=3, color=GRID)
    for name, spine in axes.spines.items():
        spine.set_visible(name == "bottom")
        spine.set_color(INK)


RenderWorker = Callable[[ChartData], bytes]
_render_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


async def render_chart(data: ChartData, *, worker: RenderWorker | None = None) -> bytes:
    """Render in a thread, one chart at a time per event loop, so drawing never blocks the gateway.

    One at a time keeps a burst of `/credits usage` from stacking up CPU and memory (and matplotlib's font cache
    is not meant for concurrent drawing). A cancelled caller stops waiting at once, but the slot stays taken until
    its thread really finishes: a thread cannot be stopped, and a second render must not overlap it.
    `worker` replaces `render_png` (same signature), e.g. to render at another size with `functools.partial`.
    """
    loop = asyncio.get_running_loop()
    slot = _render_slots.setdefault(loop, asyncio.Semaphore(1))
    await slot.acquire()
    try:
        task = loop.create_task(asyncio.to_thread(worker or render_png, data))
    except BaseException:
        slot.release()
        raise
    task.add_done_callback(lambda done: _release_after(done, slot))
    return await asyncio.shield(task)


def _release_after(task: asyncio.Task[bytes], slot: asyncio.Semaphore) -> None:
    slot.release()
    if not task.cancelled():
        task.exception()  # retrieved here so an abandoned render's error is not reported as never retrieved
