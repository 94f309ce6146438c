"""Schema v5 → v6 on a database with history: statuses mapped, nothing lost, balances that agree with the
journal, and every figure a member or the owner reads the same as release v5 gave for the same data.

The v5 database is built through the shipped migration steps (`migrate(engine, target=5)`) and filled
with jobs in every v5 state, across periods, servers and members. "What v5 said" is computed here from
the rows, with v5's own definitions written out (not by the code under test):
  used = charged (else reserved) of complete/failed; reserved = reserved credits of reserved/submitted/
  unknown; held = unknown without a project id; jobs and failures counted per job; periods by created_at.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import count

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ledger import JobStatus, Ledger, LedgerDefaults, LimitExceeded, Period, period_bounds
from bot.ledger.engine import enable_sqlite_wal
from bot.ledger.migrations import migrate
from bot.ledger.schema import guild_settings, jobs, requests, webhook_events

from .conftest import NOW, Backend

# One server per period kind, so usage is read through every window; the members overlap across servers.
SERVERS = {
    1_100_000_000_000_000_001: (500, "month"),
    1_100_000_000_000_000_002: (300, "week"),
    1_100_000_000_000_000_003: (200, "day"),
    1_100_000_000_000_000_004: (1000, "none"),
}
MEMBERS = (1_300_000_000_000_000_001, 1_300_000_000_000_000_002, 1_300_000_000_000_000_003)
EDGE_SERVER = 1_100_000_000_000_000_009  # only the v5 job v6 deliberately reclassifies (see the last test)

# NOW is Saturday 2025-03-15 12:00 UTC: today, this week (from Monday the 10th), this month, and before.
MOMENTS = (
    NOW - timedelta(hours=3),  # today
    datetime(2025, 3, 15, 0, 0, tzinfo=UTC),  # today's first instant
    datetime(2025, 3, 12, 18, 30, tzinfo=UTC),  # this week
    datetime(2025, 3, 9, 23, 59, 59, 999_999, tzinfo=UTC),  # Sunday's last instant: last week, this month
    datetime(2025, 3, 1, 0, 0, tzinfo=UTC),  # the month's first instant
    datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC),  # last month
    datetime(2024, 12, 31, 23, 30, tzinfo=UTC),  # last year
)


@dataclass(frozen=True)
class Variant:
    """A v5 job's state: its status, whether the create was sent, whether a project id came back, the charge."""

    status: str
    sent: bool
    project: bool
    charged: int | None
    expected: JobStatus  # what v6 must call it

    def __str__(self) -> str:
        return f"{self.status} sent={self.sent} project={self.project} charged={self.charged}"


VARIANTS = (
    Variant("reserved", sent=False, project=False, charged=None, expected=JobStatus.RESERVED),  # queued only
    Variant("reserved", sent=True, project=False, charged=None, expected=JobStatus.SENDING),  # the create was out
    Variant("unknown", sent=True, project=False, charged=None, expected=JobStatus.HELD),  # v5's "held"
    Variant("unknown", sent=True, project=True, charged=5, expected=JobStatus.SUBMITTED),  # pollable
    Variant("submitted", sent=True, project=True, charged=5, expected=JobStatus.SUBMITTED),
    Variant("complete", sent=True, project=True, charged=5, expected=JobStatus.COMPLETE),
    Variant("complete", sent=True, project=True, charged=None, expected=JobStatus.COMPLETE),  # counts its reserve
    Variant("failed", sent=True, project=True, charged=0, expected=JobStatus.FAILED),
    Variant("failed", sent=True, project=True, charged=3, expected=JobStatus.FAILED),
    Variant("refunded", sent=False, project=False, charged=0, expected=JobStatus.REFUNDED),
)
OPEN_V5 = ("reserved", "submitted", "unknown")


@dataclass(frozen=True)
class V5Job:
    interaction_id: int
    guild_id: int
    user_id: int
    created_at: datetime
    variant: Variant
    credits_reserved: int
    project_id: str | None
    token: str

    @property
    def used(self) -> int:
        if self.variant.status in ("complete", "failed"):
            return self.credits_reserved if self.variant.charged is None else self.variant.charged
        return 0

    @property
    def reserved(self) -> int:
        return self.credits_reserved if self.variant.status in OPEN_V5 else 0

    @property
    def held(self) -> int:
        return self.credits_reserved if self.variant.status == "unknown" and self.project_id is None else 0


def v5_history() -> list[V5Job]:
    """Every variant at every moment, spread over the servers and members (70 jobs)."""
    ids = count(900_000_000_000_000_001)
    history = []
    for n, (variant, moment) in enumerate((v, m) for v in VARIANTS for m in MOMENTS):
        interaction_id = next(ids)
        history.append(
            V5Job(
                interaction_id=interaction_id,
                guild_id=list(SERVERS)[n % len(SERVERS)],
                user_id=MEMBERS[n % len(MEMBERS)],
                created_at=moment,
                variant=variant,
                credits_reserved=5 if n % 3 else 7,
                project_id=f"cm-{interaction_id}" if variant.project else None,
                token=f"tok-{interaction_id}",
            )
        )
    return history


def within(history: Iterable[V5Job], period: Period | str, **match: int) -> Iterator[V5Job]:
    start, end = period_bounds(period, NOW)
    for job in history:
        in_window = start <= job.created_at and (end is None or job.created_at < end)
        if in_window and all(getattr(job, name) == value for name, value in match.items()):
            yield job


@dataclass(frozen=True)
class V5Figures:
    used: int
    reserved: int
    held: int
    jobs: int
    failures: int

    @classmethod
    def of(cls, selected: Iterable[V5Job]) -> V5Figures:
        chosen = list(selected)
        return cls(
            used=sum(j.used for j in chosen),
            reserved=sum(j.reserved for j in chosen),
            held=sum(j.held for j in chosen),
            jobs=len(chosen),
            failures=sum(j.variant.status == "failed" for j in chosen),
        )


async def build_v5(raw: AsyncEngine, history: list[V5Job], edge: V5Job) -> None:
    if raw.dialect.name == "sqlite":
        await enable_sqlite_wal(raw)
    assert await migrate(raw, target=5) == [1, 2, 3, 4, 5]
    async with raw.begin() as conn:
        for guild, (limit, period) in SERVERS.items():
            await conn.execute(
                guild_settings.insert().values(guild_id=guild, credit_limit=limit, period=period, updated_at=NOW)
            )
        for job in [*history, edge]:
            request_id = f"legacy-{job.interaction_id}"
            await conn.execute(
                requests.insert().values(
                    id=request_id,
                    interaction_id=job.interaction_id,
                    guild_id=job.guild_id,
                    channel_id=77,
                    user_id=job.user_id,
                    application_id=5,
                    interaction_token=job.token,
                    private=False,
                    images=1,
                    created_at=job.created_at,
                )
            )
            await conn.execute(
                jobs.insert().values(
                    interaction_id=job.interaction_id,
                    request_id=request_id,
                    position=0,
                    guild_id=job.guild_id,
                    channel_id=77,
                    user_id=job.user_id,
                    application_id=5,
                    interaction_token=job.token,  # v5 kept the token on the job too
                    project_id=job.project_id,
                    status=job.variant.status,
                    credits_reserved=job.credits_reserved,
                    credits_charged=job.variant.charged,
                    created_at=job.created_at,
                    updated_at=job.created_at,
                    sent_at=job.created_at if job.variant.sent else None,
                    delivered=job.variant.status == "complete",
                )
            )


def events_for(history: list[V5Job]) -> dict[str, bool]:
    """Project id → whether v6 keeps its events (its job is still open)."""
    chosen: dict[str, bool] = {"cm-never-the-bots": False}
    for job in history:
        if job.project_id is not None:
            chosen.setdefault(job.project_id, job.variant.expected in (JobStatus.SUBMITTED,))
    return chosen


async def open_v6(backend: Backend) -> Ledger:
    """On PostgreSQL in a session time zone far from UTC, so a day computed in local time would show."""
    if backend.name == "sqlite":
        return await backend.open(LedgerDefaults(credit_limit=100, bot_budget=10_000))
    args = {"server_settings": {**backend.connect_args["server_settings"], "timezone": "Pacific/Kiritimati"}}
    ledger = await Ledger.open(
        backend.url, LedgerDefaults(credit_limit=100, bot_budget=10_000), connect_args=args, clock=lambda: NOW
    )
    backend._ledgers.append(ledger)
    return ledger


async def test_v5_history_migrates_to_v6_with_every_figure_unchanged(backend: Backend) -> None:
    history = v5_history()
    edge = V5Job(999, EDGE_SERVER, MEMBERS[0], NOW, VARIANTS[4], 5, None, "tok-edge")
    raw = backend.raw_engine()
    await build_v5(raw, history, edge)
    kept = events_for(history)
    async with raw.begin() as conn:
        for project_id in kept:
            for kind in ("image.started", "image.completed"):
                await conn.execute(
                    webhook_events.insert().values(
                        project_id=project_id, event_type=kind, payload="{}", received_at=NOW
                    )
                )

    ledger = await open_v6(backend)

    # Statuses mapped as the migration says; no row lost, nothing else about a job changed.
    for job in history:
        after = await ledger.get_job(job.interaction_id)
        assert after is not None, job
        assert after.status is job.variant.expected, str(job.variant)
        assert (after.guild_id, after.user_id, after.created_at) == (job.guild_id, job.user_id, job.created_at)
        assert (after.credits_reserved, after.credits_charged) == (job.credits_reserved, job.variant.charged)
        assert after.project_id == job.project_id and after.request_id == f"legacy-{job.interaction_id}"
    async with raw.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(jobs))).scalar_one() == len(history) + 1
        assert (await conn.execute(select(func.count()).select_from(requests))).scalar_one() == len(history) + 1
        # Tokens: gone from every job, kept on every request (the one place a route lives now).
        assert (
            await conn.execute(text("SELECT count(*) FROM jobs WHERE interaction_token IS NOT NULL"))
        ).scalar_one() == 0
        tokens = dict((await conn.execute(select(requests.c.interaction_id, requests.c.interaction_token))).all())
    assert tokens == {job.interaction_id: job.token for job in [*history, edge]}

    # The balances agree with the journal.
    assert await ledger.verify() == []

    # Webhook events: kept for jobs still open, gone for settled jobs and for projects that were never the bot's.
    for project_id, keep in kept.items():
        assert len(await ledger.webhook_events_for(project_id)) == (2 if keep else 0), project_id

    # Every figure as v5 gave it.
    for guild, (_, period) in SERVERS.items():
        want = V5Figures.of(within(history, period, guild_id=guild))
        usage = await ledger.usage(guild, now=NOW)
        assert (usage.used, usage.reserved, usage.held) == (want.used, want.reserved, want.held), (guild, period)
        held_jobs = [j for j in within(history, period, guild_id=guild) if j.held]
        assert usage.held_since == min((j.created_at for j in held_jobs), default=None)
        for member in MEMBERS:
            mine = V5Figures.of(within(history, period, guild_id=guild, user_id=member))
            assert (await ledger.usage(guild, member, now=NOW)).member_used == mine.used + mine.reserved
        top = sorted(
            (
                (m, sum(j.used + j.reserved for j in within(history, period, guild_id=guild, user_id=m)))
                for m in MEMBERS
            ),
            key=lambda pair: (-pair[1], pair[0]),
        )
        assert await ledger.top_members(guild, now=NOW) == [pair for pair in top if pair[1] > 0]
        all_time_held = [j for j in history if j.guild_id == guild and j.held]
        held = await ledger.held(guild)
        assert (held.count, held.credits) == (len(all_time_held), sum(j.held for j in all_time_held))

    for window in Period:
        report = await ledger.report(window, now=NOW)
        want_rows = []
        for guild in SERVERS:
            figures = V5Figures.of(within(history, window, guild_id=guild))
            if figures.jobs:
                want_rows.append((guild, figures))
        want_rows.append((EDGE_SERVER, V5Figures(0, 5, 5, 1, 0)))  # created NOW; v6 counts it as held (see below)
        want_rows.sort(key=lambda row: (-(row[1].used + row[1].reserved), row[0]))
        got = [(g.guild_id, V5Figures(g.used, g.reserved, g.held, g.jobs, g.failures)) for g in report.guilds]
        assert got == want_rows, window
    bot = V5Figures.of(within([*history, edge], "month"))
    report = await ledger.report("month", now=NOW)
    assert (report.bot.used, report.bot.reserved) == (bot.used, bot.reserved)
    day_ago = NOW - timedelta(hours=24)
    assert await ledger.spend_since(day_ago) == sum(
        j.used + j.reserved for j in [*history, edge] if j.created_at >= day_ago
    )


async def test_a_migrated_ledger_keeps_limits_and_balances_as_jobs_move_on(backend: Backend) -> None:
    history = v5_history()
    edge = V5Job(999, EDGE_SERVER, MEMBERS[0], NOW, VARIANTS[4], 5, None, "tok-edge")
    await build_v5(backend.raw_engine(), history, edge)
    ledger = await open_v6(backend)
    weekly = list(SERVERS)[1]
    counted = sum(j.used + j.reserved for j in within(history, "week", guild_id=weekly))
    await ledger.set_limit(weekly, counted + 5, "week", bypass_ceiling=True)

    # The migrated balances are what reservations read: exactly one more job fits this week.
    await ledger.reserve(interaction_id=1, guild_id=weekly, channel_id=1, user_id=MEMBERS[0], now=NOW)
    try:
        await ledger.reserve(interaction_id=2, guild_id=weekly, channel_id=1, user_id=MEMBERS[0], now=NOW)
    except LimitExceeded as refused:
        assert (refused.used, refused.limit) == (counted + 5, counted + 5)
    else:
        raise AssertionError("the migrated week's spend was not counted")

    # A restart treats v5's jobs as v5 would have: the never-sent released, the sent held, the pollable polled.
    to_poll = await ledger.recover_interrupted()
    pollable = {j.interaction_id for j in history if j.variant.expected is JobStatus.SUBMITTED}
    assert {job.interaction_id for job in to_poll} == pollable
    for job in history:
        after = await ledger.get_job(job.interaction_id)
        assert after is not None
        if job.variant == VARIANTS[0]:
            assert after.status is JobStatus.REFUNDED
        elif job.variant == VARIANTS[1]:
            assert after.status is JobStatus.HELD
    # Migrated jobs move on through the lifecycle and the balances follow.
    for interaction_id in sorted(pollable)[:5]:
        await ledger.settle(interaction_id, status=JobStatus.COMPLETE, credits_charged=4)
    await ledger.release_held(next(iter(SERVERS)), by="a test")
    assert await ledger.verify() == []


async def test_a_v5_job_submitted_without_a_project_id_becomes_held(backend: Backend) -> None:
    """v5 left an answer whose id was too long to store as `submitted` with no project id (not pollable)
    until the next restart made it `unknown`, i.e. held. v6 has no such state: the migration holds it at
    once, so `/credits usage` shows it as held a restart earlier than v5 did; totals are unchanged."""
    edge = V5Job(999, EDGE_SERVER, MEMBERS[0], NOW, VARIANTS[4], 5, None, "tok-edge")
    await build_v5(backend.raw_engine(), [], edge)
    ledger = await open_v6(backend)
    after = await ledger.get_job(999)
    assert after is not None and (after.status, after.project_id) == (JobStatus.HELD, None)
    usage = await ledger.usage(EDGE_SERVER, now=NOW)
    assert (usage.total, usage.held) == (5, 5)
    assert await ledger.recover_interrupted() == []
    assert await ledger.verify() == []
