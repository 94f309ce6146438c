"""The credit ledger: atomic reservations and job records over SQLite or PostgreSQL.

Overspending is prevented by serialising reservations inside the database, so it holds across
tasks, Ledger instances and processes:
- PostgreSQL: while a bot-wide budget is set, lock its meta row FIRST (every reserver takes the
  locks in the same order, so they cannot deadlock); then upsert and SELECT ... FOR UPDATE the
  guild_settings row, sum, insert, commit.
- SQLite: BEGIN IMMEDIATE takes the database write lock before the sums are read; an asyncio.Lock per
  Ledger queues this process's writers so they wait on the loop rather than in SQLite's busy handler.

Writes made after Magic Hour has charged (submitted, settled, delivered, released) are retried through
transient faults for a bounded time: losing them would leave credits counted wrongly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import Text, and_, case, delete, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Row
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import ColumnElement

from .engine import (
    LOCKED_RETRIES,
    create_ledger_engine,
    enable_sqlite_wal,
    is_sqlite_locked,
    is_transient,
    locked_backoff,
    transient_backoff,
)
from .migrations import BOT_BUDGET_LOCK_KEY, migrate
from .models import (
    COST_PER_JOB,
    HOLDING_STATUSES,
    SETTLED_STATUSES,
    BotUsage,
    CeilingExceeded,
    GuildReport,
    GuildSettings,
    HeldJobs,
    ImageSpec,
    JobRecord,
    JobStatus,
    LedgerDefaults,
    LimitExceeded,
    ReleasedJobs,
    Report,
    RequestRecord,
    Usage,
)
from .periods import Period, as_utc, parse_period, period_bounds
from .sanitize import plausible_charge, storable_project_id
from .schema import alerts_sent, guild_settings, jobs, meta, requests, webhook_events
from .urls import normalize_database_url, redact_database_url

log = logging.getLogger(__name__)

T = TypeVar("T")
Clock = Callable[[], datetime]

INTERRUPTED_ERROR = "interrupted before Magic Hour answered"
NEVER_SENT_ERROR = "released at start-up: it was queued and never sent to Magic Hour"
DEFAULT_RETRY_SECONDS = 30.0
INTERACTION_TOKEN_LIFETIME = timedelta(minutes=15)
DELIVERY_LEASE = timedelta(minutes=5)
PROJECT_EVENTS_CHANNEL = "magic_hour_project_events"
"""PostgreSQL NOTIFY channel: the payload is a project id whose webhook event was just recorded."""
_HOLDING = tuple(s.value for s in HOLDING_STATUSES)
_SETTLED = tuple(s.value for s in SETTLED_STATUSES)
_FINAL = (*_SETTLED, JobStatus.REFUNDED.value)
_ANY_OPEN = (JobStatus.RESERVED, JobStatus.SUBMITTED, JobStatus.UNKNOWN)

# What a job counts against its limit: the hold while open, the charge once settled, nothing if refunded.
_settled_expr = case(
    (jobs.c.status.in_(_SETTLED), func.coalesce(jobs.c.credits_charged, jobs.c.credits_reserved)), else_=0
)
_holding_expr = case((jobs.c.status.in_(_HOLDING), jobs.c.credits_reserved), else_=0)
_counted_expr = _settled_expr + _holding_expr
# "Held": the create may have reached Magic Hour but no project id ever came back, so nobody can poll it.
_is_held = and_(jobs.c.status == JobStatus.UNKNOWN.value, jobs.c.project_id.is_(None))
_held_expr = case((_is_held, jobs.c.credits_reserved), else_=0)


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def _retry_locked(operation: Callable[[], Awaitable[T]]) -> T:
    """Run `operation`, retrying a bounded number of times while SQLite reports a lock."""
    for attempt in range(LOCKED_RETRIES):
        try:
            return await operation()
        except OperationalError as exc:
            if not is_sqlite_locked(exc) or attempt == LOCKED_RETRIES - 1:
                raise
            log.warning("ledger database is locked; retrying (%d/%d)", attempt + 1, LOCKED_RETRIES)
            await asyncio.sleep(locked_backoff(attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")


class Ledger:
    """Open with `await Ledger.open(url)`; one instance per process is enough (it pools connections)."""

    def __init__(
        self,
        engine: AsyncEngine,
        defaults: LedgerDefaults,
        *,
        clock: Clock = _utcnow,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
    ) -> None:
        self._engine = engine
        self.defaults = defaults
        self._clock = clock
        self.retry_seconds = retry_seconds
        self._is_sqlite = engine.dialect.name == "sqlite"
        self._insert = sqlite.insert if self._is_sqlite else postgresql.insert
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(
        cls,
        database_url: str | URL,
        defaults: LedgerDefaults | None = None,
        *,
        connect_args: Mapping[str, Any] | None = None,
        clock: Clock = _utcnow,
        retry_seconds: float = DEFAULT_RETRY_SECONDS,
    ) -> Self:
        """Connect, create or upgrade the schema, and return a ready ledger.

        `retry_seconds` bounds how long a write after Magic Hour's charge keeps retrying transient faults.
        """
        url = normalize_database_url(database_url)
        engine = create_ledger_engine(url, connect_args)
        try:
            await enable_sqlite_wal(engine)
            applied = await _retry_locked(lambda: migrate(engine))
        except BaseException:
            await engine.dispose()
            raise
        if applied:
            log.info("ledger schema migrated to v%s at %s", applied[-1], redact_database_url(url))
        log.info("ledger open at %s", redact_database_url(url))
        return cls(engine, defaults or LedgerDefaults(), clock=clock, retry_seconds=retry_seconds)

    async def close(self) -> None:
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # ---- transactions -------------------------------------------------------------------------

    async def _run(
        self, work: Callable[[AsyncConnection], Awaitable[T]], *, write: bool, durable: str | None = None
    ) -> T:
        """Run `work` in one transaction; `work` must be re-runnable.

        Plain calls retry only SQLite's lock; `durable` calls (named for the log) retry every transient
        fault with backoff for up to `retry_seconds`.
        """

        async def once() -> T:
            if write and self._is_sqlite:
                async with self._write_lock:
                    return await self._transaction(work, write=True)
            return await self._transaction(work, write=write)

        if durable is None:
            return await _retry_locked(once)
        return await self._retry_transient(once, durable)

    async def _retry_transient(self, operation: Callable[[], Awaitable[T]], action: str) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_seconds
        attempt = 0
        while True:
            try:
                return await operation()
            except Exception as exc:
                if not is_transient(exc):
                    raise
                delay = transient_backoff(attempt)
                if loop.time() + delay > deadline:
                    log.error("ledger %s still failing after %.0f s; giving up: %s", action, self.retry_seconds, exc)
                    raise
                attempt += 1
                log.warning("ledger %s hit a transient fault (%s); retry %d", action, type(exc).__name__, attempt)
                await asyncio.sleep(delay)

    async def _transaction(self, work: Callable[[AsyncConnection], Awaitable[T]], *, write: bool) -> T:
        async with self._engine.connect() as conn:
            if write:
                conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                return await work(conn)

    def _now(self, now: datetime | None) -> datetime:
        return as_utc(self._clock() if now is None else now)

    # ---- reservations -------------------------------------------------------------------------

    async def reserve(
        self,
        *,
        interaction_id: int,
        guild_id: int,
        channel_id: int,
        user_id: int,
        cost: int = COST_PER_JOB,
        application_id: int | None = None,
        interaction_token: str | None = None,
        input_url: str | None = None,
        background_url: str | None = None,
        name: str | None = None,
        now: datetime | None = None,
    ) -> JobRecord:
        """A request of one image (see `reserve_request`); returns its job."""
        _, reserved = await self.reserve_request(
            interaction_id=interaction_id,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            images=[ImageSpec(input_url=input_url, background_url=background_url, name=name)],
            cost=cost,
            application_id=application_id,
            interaction_token=interaction_token,
            now=now,
        )
        return reserved[0]

    async def reserve_request(
        self,
        *,
        interaction_id: int,
        guild_id: int,
        channel_id: int,
        user_id: int,
        images: Sequence[ImageSpec],
        cost: int = COST_PER_JOB,
        application_id: int | None = None,
        interaction_token: str | None = None,
        private: bool = False,
        now: datetime | None = None,
    ) -> tuple[RequestRecord, list[JobRecord]]:
        """Hold `cost` credits per image for a whole request, all or nothing, or raise LimitExceeded
        (its `cost` is the request's total); a repeated interaction gets its request back.

        Server, member and bot-wide budgets are checked in one transaction under the same locks.
        """
        if cost < 0:
            raise ValueError("cost must be 0 or more")
        if not images:
            raise ValueError("a request needs at least one image")
        moment = self._now(now)
        bot_budget = self.defaults.bot_budget
        total_cost = cost * len(images)
        count = len(images)
        request_id = new_request_id()

        async def work(conn: AsyncConnection) -> tuple[RequestRecord, list[JobRecord]]:
            if bot_budget is not None:
                await self._lock_bot(conn)  # always before the guild row: one lock order for everyone
            settings = await self._lock_guild(conn, guild_id, moment)
            existing = await self._request_by_interaction(conn, interaction_id)
            if existing is not None:
                return existing
            start, end = period_bounds(settings.period, moment)
            used, reserved, member = await self._totals(conn, guild_id, user_id, start, end)
            if used + reserved + total_cost > settings.credit_limit:
                raise LimitExceeded(
                    "guild", used + reserved, settings.credit_limit, settings.period, end, total_cost, count
                )
            if settings.member_limit is not None and member + total_cost > settings.member_limit:
                raise LimitExceeded("member", member, settings.member_limit, settings.period, end, total_cost, count)
            if bot_budget is not None:
                bot_start, bot_end = period_bounds(self.defaults.bot_period, moment)
                bot_used, bot_reserved = await self._bot_totals(conn, bot_start, bot_end)
                if bot_used + bot_reserved + total_cost > bot_budget:
                    total = bot_used + bot_reserved
                    raise LimitExceeded("bot", total, bot_budget, self.defaults.bot_period, bot_end, total_cost, count)
            request_row = (
                await conn.execute(
                    requests.insert()
                    .values(
                        id=request_id,
                        interaction_id=interaction_id,
                        guild_id=guild_id,
                        channel_id=channel_id,
                        user_id=user_id,
                        application_id=application_id,
                        interaction_token=interaction_token,
                        private=private,
                        images=count,
                        created_at=moment,
                    )
                    .returning(*requests.c)
                )
            ).one()
            records = []
            for position, image in enumerate(images):
                row = (
                    await conn.execute(
                        jobs.insert()
                        .values(
                            interaction_id=interaction_id,
                            request_id=request_id,
                            position=position,
                            guild_id=guild_id,
                            channel_id=channel_id,
                            user_id=user_id,
                            application_id=application_id,
                            interaction_token=interaction_token,
                            status=JobStatus.RESERVED.value,
                            credits_reserved=cost,
                            input_url=image.input_url,
                            background_url=image.background_url,
                            name=image.name,
                            input_filename=image.input_filename,
                            created_at=moment,
                            updated_at=moment,
                            delivered=False,
                        )
                        .returning(*jobs.c)
                    )
                ).one()
                records.append(_job_record(row))
            return _request_record(request_row), records

        try:
            return await self._run(work, write=True)
        except IntegrityError:
            # Same interaction id recorded under another guild's lock: still the same request.
            found = await self._run(lambda conn: self._request_by_interaction(conn, interaction_id), write=False)
            if found is None:
                raise
            return found

    async def _request_by_interaction(
        self, conn: AsyncConnection, interaction_id: int
    ) -> tuple[RequestRecord, list[JobRecord]] | None:
        row = (await conn.execute(select(requests).where(requests.c.interaction_id == interaction_id))).first()
        if row is None:
            return None
        found = await conn.execute(select(jobs).where(jobs.c.request_id == row.id).order_by(jobs.c.position))
        return _request_record(row), [_job_record(job) for job in found]

    async def get_request(self, request_id: str) -> RequestRecord | None:
        """Where a request's messages go (the route is stored once per request, not per image)."""

        async def work(conn: AsyncConnection) -> RequestRecord | None:
            row = (await conn.execute(select(requests).where(requests.c.id == request_id))).first()
            return None if row is None else _request_record(row)

        return await self._run(work, write=False)

    async def request_jobs(self, request_id: str) -> list[JobRecord]:
        """Every image of a request, in the member's order."""
        return await self._select_jobs(jobs.c.request_id == request_id, oldest_first=True)

    async def _lock_bot(self, conn: AsyncConnection) -> None:
        """The bot-wide mutex (PostgreSQL); SQLite's IMMEDIATE transaction already serialises everything."""
        if self._is_sqlite:
            return
        lock = select(meta.c.key).where(meta.c.key == BOT_BUDGET_LOCK_KEY).with_for_update()
        if (await conn.execute(lock)).first() is not None:
            return
        # The migration creates the row; recreate it if someone deleted it.
        await conn.execute(
            self._insert(meta)
            .values(key=BOT_BUDGET_LOCK_KEY, value="lock row", updated_at=self._now(None))
            .on_conflict_do_nothing(index_elements=[meta.c.key])
        )
        (await conn.execute(lock)).one()

    async def _lock_guild(self, conn: AsyncConnection, guild_id: int, now: datetime) -> GuildSettings:
        """Make sure the guild row exists, then lock it: the per-guild mutex every reservation takes.

        On SQLite FOR UPDATE renders as nothing; the IMMEDIATE transaction already holds the write lock.
        """
        await conn.execute(
            self._insert(guild_settings)
            .values(guild_id=guild_id, updated_at=now)
            .on_conflict_do_nothing(index_elements=[guild_settings.c.guild_id])
        )
        row = (
            await conn.execute(select(guild_settings).where(guild_settings.c.guild_id == guild_id).with_for_update())
        ).one()
        return self._settings(guild_id, row)

    async def _totals(
        self, conn: AsyncConnection, guild_id: int, user_id: int | None, start: datetime, end: datetime | None
    ) -> tuple[int, int, int]:
        """(settled charges, open holds, the member's total) for the guild within [start, end)."""
        member_expr = case((jobs.c.user_id == user_id, _counted_expr), else_=0) if user_id is not None else None
        columns = [
            func.coalesce(func.sum(_settled_expr), 0),
            func.coalesce(func.sum(_holding_expr), 0),
        ]
        if member_expr is not None:
            columns.append(func.coalesce(func.sum(member_expr), 0))
        row = (await conn.execute(select(*columns).where(self._in_period(guild_id, start, end)))).one()
        return int(row[0]), int(row[1]), int(row[2]) if member_expr is not None else 0

    @staticmethod
    async def _bot_totals(conn: AsyncConnection, start: datetime, end: datetime | None) -> tuple[int, int]:
        """(settled charges, open holds) across every guild within [start, end)."""
        statement = select(func.coalesce(func.sum(_settled_expr), 0), func.coalesce(func.sum(_holding_expr), 0))
        row = (await conn.execute(statement.where(_in_window(start, end)))).one()
        return int(row[0]), int(row[1])

    @staticmethod
    def _in_period(guild_id: int, start: datetime, end: datetime | None) -> ColumnElement[bool]:
        return and_(jobs.c.guild_id == guild_id, _in_window(start, end))

    # ---- job lifecycle ------------------------------------------------------------------------

    async def _transition(
        self,
        interaction_id: int,
        allowed_from: tuple[JobStatus, ...] | None,
        values: Mapping[str, Any],
        action: str,
        position: int = 0,
    ) -> JobRecord | None:
        """Update a job if its status allows it, retrying transient faults; otherwise log why not."""
        moment = self._now(None)

        async def work(conn: AsyncConnection) -> JobRecord | None:
            statement = update(jobs).where(_job_key(interaction_id, position))
            if allowed_from is not None:
                statement = statement.where(jobs.c.status.in_([s.value for s in allowed_from]))
            row = (await conn.execute(statement.values(**values, updated_at=moment).returning(*jobs.c))).first()
            if row is not None:
                return _job_record(row)
            current = await self._job(conn, interaction_id, position)
            if current is None:
                log.warning("%s: no job recorded for interaction %s/%s", action, interaction_id, position)
            else:
                log.warning(
                    "%s ignored: job for interaction %s/%s is already %s",
                    action,
                    interaction_id,
                    position,
                    current.status,
                )
            return current

        return await self._run(work, write=True, durable=action)

    async def mark_sending(self, interaction_id: int, position: int = 0) -> bool:
        """The runner is about to send the create: True means go ahead, False means do not send.

        From here a restart holds the credits (the create may have happened) instead of releasing them.
        False when the job is gone or final, e.g. a newer process released it as never sent.
        """
        moment = self._now(None)

        async def work(conn: AsyncConnection) -> bool:
            statement = (
                update(jobs)
                .where(_job_key(interaction_id, position), jobs.c.status.in_([s.value for s in _ANY_OPEN]))
                .values(sent_at=moment, updated_at=moment)
                .returning(jobs.c.id)
            )
            return (await conn.execute(statement)).first() is not None

        sending = await self._run(work, write=True, durable="mark_sending")
        if not sending:
            log.warning("mark_sending refused: job %s/%s is missing or final", interaction_id, position)
        return sending

    async def mark_submitted(
        self, interaction_id: int, *, project_id: str, credits_charged: int = COST_PER_JOB, position: int = 0
    ) -> JobRecord | None:
        """Magic Hour accepted the job; also resolves an `unknown` job once its project is found.

        Implausible figures are logged and replaced (see sanitize.py) rather than raised.
        """
        values: dict[str, Any] = {
            "status": JobStatus.SUBMITTED.value,
            "project_id": storable_project_id(project_id, interaction_id=interaction_id),
            "credits_charged": _charge_value(credits_charged, interaction_id),
        }
        if values["project_id"] is None:
            values["error"] = f"Magic Hour's project id was too long to store ({len(project_id)} characters)"
        return await self._transition(interaction_id, _ANY_OPEN, values, "mark_submitted", position)

    async def settle(
        self,
        interaction_id: int,
        *,
        status: JobStatus | str,
        credits_charged: int,
        error: str | None = None,
        position: int = 0,
    ) -> JobRecord | None:
        """Final outcome; on error/canceled pass the project's final credits_charged (refunds make it 0)."""
        final = JobStatus(status)
        if final not in SETTLED_STATUSES:
            raise ValueError(f"settle takes complete or failed, not {final.value}")
        values = {"status": final.value, "credits_charged": _charge_value(credits_charged, interaction_id)}
        values["error"] = error
        # A settled job may be settled again: Magic Hour updates credits_charged when it refunds.
        return await self._transition(interaction_id, (*_ANY_OPEN, *SETTLED_STATUSES), values, "settle", position)

    async def release(self, interaction_id: int, *, error: str, position: int = 0) -> JobRecord | None:
        """The create certainly failed (nothing charged): free the credits."""
        values = {"status": JobStatus.REFUNDED.value, "credits_charged": 0, "error": error}
        return await self._transition(interaction_id, _ANY_OPEN, values, "release", position)

    async def mark_unknown(self, interaction_id: int, *, error: str, position: int = 0) -> JobRecord | None:
        """Outcome ambiguous: the reservation keeps counting until someone resolves it."""
        values = {"status": JobStatus.UNKNOWN.value, "error": error}
        return await self._transition(interaction_id, _ANY_OPEN, values, "mark_unknown", position)

    async def claim_delivery(
        self, interaction_id: int, owner: str, *, lease: timedelta = DELIVERY_LEASE, position: int = 0
    ) -> bool:
        """True for exactly one deliverer of a job: two processes overlapping in a deploy never both post.

        The same owner may claim again (a retried write); another owner may take over a claim older
        than `lease` (its holder died before delivering). False once delivered.
        """
        moment = self._now(None)

        async def work(conn: AsyncConnection) -> bool:
            statement = (
                update(jobs)
                .where(
                    _job_key(interaction_id, position),
                    jobs.c.delivered.is_(False),
                    or_(
                        jobs.c.delivery_owner.is_(None),
                        jobs.c.delivery_owner == owner,
                        jobs.c.delivery_claimed_at < moment - lease,
                    ),
                )
                .values(delivery_owner=owner, delivery_claimed_at=moment)
                .returning(jobs.c.id)
            )
            return (await conn.execute(statement)).first() is not None

        return await self._run(work, write=True, durable="claim_delivery")

    async def mark_delivered(self, interaction_id: int, position: int = 0) -> JobRecord | None:
        """A message really carried the result to Discord (call it after the post, not before)."""
        return await self._transition(interaction_id, None, {"delivered": True}, "mark_delivered", position)

    async def get_job(self, interaction_id: int, position: int = 0) -> JobRecord | None:
        """A job by its key: the request's interaction id and the image's place in it."""
        return await self._run(lambda conn: self._job(conn, interaction_id, position), write=False)

    @staticmethod
    async def _job(conn: AsyncConnection, interaction_id: int, position: int = 0) -> JobRecord | None:
        row = (await conn.execute(select(jobs).where(_job_key(interaction_id, position)))).first()
        return None if row is None else _job_record(row)

    async def recover_interrupted(
        self, owns_guild: Callable[[int], bool] | None = None, now: datetime | None = None
    ) -> list[JobRecord]:
        """Start-up, for this process's guilds only (`owns_guild`; None = all): returns the jobs to poll.

        Never sent (queued only): released. Sent but unanswered, or accepted without a storable
        project id: `unknown`, still counting ("held") until an owner releases them. Also clears
        expired interaction tokens.
        """
        moment = self._now(now)
        mine = owns_guild or (lambda _guild: True)

        async def work(conn: AsyncConnection) -> tuple[int, int]:
            candidates = await conn.execute(
                select(jobs.c.id, jobs.c.guild_id, jobs.c.status, jobs.c.sent_at).where(
                    or_(
                        jobs.c.status == JobStatus.RESERVED.value,
                        and_(jobs.c.status == JobStatus.SUBMITTED.value, jobs.c.project_id.is_(None)),
                    )
                )
            )
            never_sent: list[int] = []
            interrupted: list[int] = []
            for row in candidates:
                if not mine(int(row.guild_id)):
                    continue
                queued_only = row.status == JobStatus.RESERVED.value and row.sent_at is None
                (never_sent if queued_only else interrupted).append(int(row.id))
            released = held = 0
            for chunk in _chunks(never_sent):
                result = await conn.execute(
                    update(jobs)
                    # Re-checked here: another process may have sent it since the select.
                    .where(jobs.c.id.in_(chunk), jobs.c.status == JobStatus.RESERVED.value, jobs.c.sent_at.is_(None))
                    .values(
                        status=JobStatus.REFUNDED.value, credits_charged=0, error=NEVER_SENT_ERROR, updated_at=moment
                    )
                )
                released += result.rowcount or 0
            for chunk in _chunks(interrupted):
                result = await conn.execute(
                    update(jobs)
                    .where(
                        jobs.c.id.in_(chunk),
                        or_(
                            jobs.c.status == JobStatus.RESERVED.value,
                            and_(jobs.c.status == JobStatus.SUBMITTED.value, jobs.c.project_id.is_(None)),
                        ),
                    )
                    .values(status=JobStatus.UNKNOWN.value, error=INTERRUPTED_ERROR, updated_at=moment)
                )
                held += result.rowcount or 0
            return released, held

        released, held = await self._run(work, write=True, durable="recover_interrupted")
        if released:
            log.info("%d queued job(s) were never sent to Magic Hour; their credits are released", released)
        if held:
            log.warning("%d job(s) were interrupted before Magic Hour answered; their credits stay held", held)
        await self.clear_expired_tokens(moment)
        condition = and_(
            jobs.c.status.in_([JobStatus.SUBMITTED.value, JobStatus.UNKNOWN.value]),
            jobs.c.project_id.is_not(None),
        )
        return [job for job in await self._select_jobs(condition, oldest_first=True) if mine(job.guild_id)]

    async def held(self, guild_id: int) -> HeldJobs:
        """Jobs Magic Hour never confirmed (across all periods): how many, their credits, since when."""

        async def work(conn: AsyncConnection) -> HeldJobs:
            row = (
                await conn.execute(
                    select(
                        func.count(), func.coalesce(func.sum(jobs.c.credits_reserved), 0), func.min(jobs.c.created_at)
                    ).where(jobs.c.guild_id == guild_id, _is_held)
                )
            ).one()
            return HeldJobs(count=int(row[0]), credits=int(row[1]), since=row[2])

        return await self._run(work, write=False)

    async def release_held(self, guild_id: int, *, by: str, exclude: Iterable[int] = ()) -> ReleasedJobs:
        """Free a guild's held jobs (unknown, no project id), except `exclude` (interaction ids still in
        flight in this process). The job's error records who released it and when; atomic and idempotent."""
        moment = self._now(None)
        skipped = [int(i) for i in exclude]
        note = f"released by {by} at {moment.isoformat(timespec='seconds')}"
        previous = func.coalesce(literal(" (was: ", Text) + jobs.c.error + literal(")", Text), "")
        condition = and_(jobs.c.guild_id == guild_id, _is_held)
        if skipped:
            condition = and_(condition, jobs.c.interaction_id.not_in(skipped))

        async def work(conn: AsyncConnection) -> ReleasedJobs:
            rows = (
                await conn.execute(
                    update(jobs)
                    .where(condition)
                    .values(
                        status=JobStatus.REFUNDED.value,
                        credits_charged=0,
                        error=literal(note, Text) + previous,
                        updated_at=moment,
                    )
                    .returning(jobs.c.interaction_id, jobs.c.credits_reserved)
                )
            ).all()
            ids = tuple(sorted(int(r.interaction_id) for r in rows))
            credits = sum(int(r.credits_reserved) for r in rows)
            return ReleasedJobs(count=len(rows), credits=credits, interaction_ids=ids)

        released = await self._run(work, write=True, durable="release_held")
        if released.count:
            log.warning(
                "released %d held job(s), %d credits, guild=%s by %s", released.count, released.credits, guild_id, by
            )
        return released

    async def clear_expired_tokens(
        self, now: datetime | None = None, *, max_age: timedelta = INTERACTION_TOKEN_LIFETIME
    ) -> int:
        """Forget interaction tokens of final jobs older than Discord's 15 minutes: useless, yet credentials.

        Called by recover_interrupted; also meant for a periodic call. Returns how many were cleared.
        """
        cutoff = self._now(now) - max_age

        async def work(conn: AsyncConnection) -> int:
            result = await conn.execute(
                update(jobs)
                .where(jobs.c.interaction_token.is_not(None), jobs.c.status.in_(_FINAL), jobs.c.created_at < cutoff)
                .values(interaction_token=None)
            )
            still_open = (
                select(jobs.c.id).where(jobs.c.request_id == requests.c.id, jobs.c.status.not_in(_FINAL)).exists()
            )
            await conn.execute(
                update(requests)
                .where(requests.c.interaction_token.is_not(None), requests.c.created_at < cutoff, ~still_open)
                .values(interaction_token=None)
            )
            return result.rowcount or 0

        return await self._run(work, write=True)

    async def _select_jobs(
        self, condition: ColumnElement[bool], *, oldest_first: bool, limit: int | None = None
    ) -> list[JobRecord]:
        order = (jobs.c.created_at, jobs.c.id) if oldest_first else (jobs.c.created_at.desc(), jobs.c.id.desc())
        statement = select(jobs).where(condition).order_by(*order)
        if limit is not None:
            statement = statement.limit(limit)

        async def work(conn: AsyncConnection) -> list[JobRecord]:
            return [_job_record(row) for row in await conn.execute(statement)]

        return await self._run(work, write=False)

    # ---- settings -----------------------------------------------------------------------------

    def _settings(self, guild_id: int, row: Row[Any] | None) -> GuildSettings:
        defaults = self.defaults
        if row is None:
            return GuildSettings(
                guild_id, defaults.credit_limit, defaults.period, max_credit_limit=defaults.max_credit_limit
            )
        explicit = row.credit_limit is not None
        granted = row.granted_ceiling
        return GuildSettings(
            guild_id=guild_id,
            credit_limit=row.credit_limit if explicit else defaults.credit_limit,
            period=parse_period(row.period) if explicit and row.period else defaults.period,
            member_limit=row.member_limit,
            alert_channel_id=row.alert_channel_id,
            is_default=not explicit,
            updated_at=row.updated_at,
            granted_ceiling=granted,
            max_credit_limit=granted if granted is not None else defaults.max_credit_limit,
        )

    async def get_settings(self, guild_id: int) -> GuildSettings:
        async def work(conn: AsyncConnection) -> GuildSettings:
            return await self._read_settings(conn, guild_id)

        return await self._run(work, write=False)

    async def _read_settings(self, conn: AsyncConnection, guild_id: int) -> GuildSettings:
        row = (await conn.execute(select(guild_settings).where(guild_settings.c.guild_id == guild_id))).first()
        return self._settings(guild_id, row)

    async def _upsert_settings(self, guild_id: int, values: Mapping[str, Any]) -> GuildSettings:
        changes = {**values, "updated_at": self._now(None)}

        async def work(conn: AsyncConnection) -> GuildSettings:
            return await self._write_settings(conn, guild_id, changes)

        return await self._run(work, write=True)

    async def set_limit(
        self, guild_id: int, credits: int, period: Period | str, *, bypass_ceiling: bool = False
    ) -> GuildSettings:
        """An admin's limit, refused above the guild's ceiling (its grant, else the global maximum) with
        CeilingExceeded; the owner may pass bypass_ceiling."""
        parsed = parse_period(period)
        _check_credits(credits, "the credit limit")
        moment = self._now(None)
        changes = {"credit_limit": credits, "period": parsed.value, "updated_at": moment}

        async def work(conn: AsyncConnection) -> GuildSettings:
            current = await self._read_settings(conn, guild_id)  # in the write transaction: sees any grant
            ceiling = current.max_credit_limit
            if ceiling is not None and credits > ceiling and not bypass_ceiling:
                raise CeilingExceeded(credits, ceiling, granted=current.granted_ceiling is not None)
            return await self._write_settings(conn, guild_id, changes)

        return await self._run(work, write=True)

    async def grant(self, guild_id: int, credits: int, period: Period | str | None = None) -> GuildSettings:
        """The owner raises (or sets) one server's ceiling and sets its limit to it.

        `period` None keeps the server's current period.
        """
        _check_credits(credits, "the granted ceiling")
        moment = self._now(None)

        async def work(conn: AsyncConnection) -> GuildSettings:
            chosen = parse_period(period) if period is not None else (await self._read_settings(conn, guild_id)).period
            changes = {"granted_ceiling": credits, "credit_limit": credits, "period": chosen.value}
            changes["updated_at"] = moment
            return await self._write_settings(conn, guild_id, changes)

        return await self._run(work, write=True)

    async def reset_grant(self, guild_id: int) -> GuildSettings:
        """Back to the defaults: no grant, and the default limit and period (member limit and alerts stay)."""
        changes = {"granted_ceiling": None, "credit_limit": None, "period": None, "updated_at": self._now(None)}

        async def work(conn: AsyncConnection) -> GuildSettings:
            return await self._write_settings(conn, guild_id, changes)

        return await self._run(work, write=True)

    async def _write_settings(self, conn: AsyncConnection, guild_id: int, changes: Mapping[str, Any]) -> GuildSettings:
        await conn.execute(
            self._insert(guild_settings)
            .values(guild_id=guild_id, **changes)
            .on_conflict_do_update(index_elements=[guild_settings.c.guild_id], set_=dict(changes))
        )
        return await self._read_settings(conn, guild_id)

    async def set_member_limit(self, guild_id: int, credits: int | None) -> GuildSettings:
        """Per-member cap within the guild's period; 0 or None removes it."""
        if credits is not None and (isinstance(credits, bool) or not isinstance(credits, int)):
            raise ValueError("the member limit must be a whole number")
        if credits is not None and credits < 0:
            raise ValueError("the member limit cannot be negative")
        return await self._upsert_settings(guild_id, {"member_limit": credits or None})

    async def set_alert_channel(self, guild_id: int, channel_id: int | None) -> GuildSettings:
        return await self._upsert_settings(guild_id, {"alert_channel_id": channel_id})

    # ---- reporting ----------------------------------------------------------------------------

    async def usage(self, guild_id: int, user_id: int | None = None, now: datetime | None = None) -> Usage:
        moment = self._now(now)

        async def work(conn: AsyncConnection) -> Usage:
            settings = await self._read_settings(conn, guild_id)
            start, end = period_bounds(settings.period, moment)
            used, reserved, member = await self._totals(conn, guild_id, user_id, start, end)
            held_row = (
                await conn.execute(
                    select(func.coalesce(func.sum(jobs.c.credits_reserved), 0), func.min(jobs.c.created_at)).where(
                        self._in_period(guild_id, start, end), _is_held
                    )
                )
            ).one()
            return Usage(
                used=used,
                reserved=reserved,
                limit=settings.credit_limit,
                period=settings.period,
                period_start=start,
                resets_at=end,
                member_used=member if user_id is not None else None,
                member_limit=settings.member_limit,
                held=int(held_row[0]),
                held_since=held_row[1],
            )

        return await self._run(work, write=False)

    async def top_members(self, guild_id: int, limit: int = 5, now: datetime | None = None) -> list[tuple[int, int]]:
        """(user_id, credits incl. reservations) in the current period, biggest spenders first."""
        moment = self._now(now)

        async def work(conn: AsyncConnection) -> list[tuple[int, int]]:
            settings = await self._read_settings(conn, guild_id)
            start, end = period_bounds(settings.period, moment)
            total = func.sum(_counted_expr)
            statement = (
                select(jobs.c.user_id, total.label("credits"))
                .where(self._in_period(guild_id, start, end))
                .group_by(jobs.c.user_id)
                .having(total > 0)
                .order_by(total.desc(), jobs.c.user_id)
                .limit(limit)
            )
            return [(int(row.user_id), int(row.credits)) for row in await conn.execute(statement)]

        return await self._run(work, write=False)

    async def history(self, guild_id: int, user_id: int | None = None, limit: int = 20) -> list[JobRecord]:
        """Newest first, across all periods."""
        condition = jobs.c.guild_id == guild_id
        if user_id is not None:
            condition = and_(condition, jobs.c.user_id == user_id)
        return await self._select_jobs(condition, oldest_first=False, limit=limit)

    async def export_rows(self, guild_id: int, now: datetime | None = None) -> list[JobRecord]:
        """Every job of the current period, oldest first (for a CSV export)."""
        settings = await self.get_settings(guild_id)
        start, end = period_bounds(settings.period, self._now(now))
        return await self._select_jobs(self._in_period(guild_id, start, end), oldest_first=True)

    async def claim_alert(self, guild_id: int, threshold: int, period_start: datetime) -> bool:
        """True for exactly one caller per (guild, period, threshold): whoever should send that alert."""
        moment = self._now(None)

        async def work(conn: AsyncConnection) -> bool:
            row = (
                await conn.execute(
                    self._insert(alerts_sent)
                    .values(
                        guild_id=guild_id,
                        period_start=as_utc(period_start),
                        threshold=threshold,
                        sent_at=moment,
                    )
                    .on_conflict_do_nothing()
                    .returning(alerts_sent.c.guild_id)
                )
            ).first()
            return row is not None

        return await self._run(work, write=True)

    async def bot_usage(self, now: datetime | None = None) -> BotUsage:
        """Spend across every server in the bot period, against the owner's budget."""
        moment = self._now(now)

        async def work(conn: AsyncConnection) -> BotUsage:
            return await self._bot_usage(conn, moment)

        return await self._run(work, write=False)

    async def _bot_usage(self, conn: AsyncConnection, moment: datetime) -> BotUsage:
        period = self.defaults.bot_period
        start, end = period_bounds(period, moment)
        used, reserved = await self._bot_totals(conn, start, end)
        return BotUsage(used, reserved, self.defaults.bot_budget, period, start, end)

    async def report(self, period: Period | str, now: datetime | None = None) -> Report:
        """The owner's view: every server with jobs in `period`, biggest spend first, plus the bot-wide total."""
        window = parse_period(period)
        moment = self._now(now)
        start, end = period_bounds(window, moment)
        spend = func.sum(_counted_expr)
        statement = (
            select(
                jobs.c.guild_id,
                func.coalesce(func.sum(_settled_expr), 0).label("used"),
                func.coalesce(func.sum(_holding_expr), 0).label("reserved"),
                func.coalesce(func.sum(_held_expr), 0).label("held"),
                func.count().label("jobs"),
                func.coalesce(func.sum(case((jobs.c.status == JobStatus.FAILED.value, 1), else_=0)), 0).label(
                    "failures"
                ),
            )
            .where(_in_window(start, end))
            .group_by(jobs.c.guild_id)
            .order_by(spend.desc(), jobs.c.guild_id)
        )

        async def work(conn: AsyncConnection) -> Report:
            rows = (await conn.execute(statement)).all()
            ids = [int(r.guild_id) for r in rows]
            stored: dict[int, Row[Any]] = {}
            for chunk in _chunks(ids):
                for row in await conn.execute(select(guild_settings).where(guild_settings.c.guild_id.in_(chunk))):
                    stored[int(row.guild_id)] = row
            guilds = []
            for r in rows:
                settings = self._settings(int(r.guild_id), stored.get(int(r.guild_id)))
                guilds.append(
                    GuildReport(
                        guild_id=int(r.guild_id),
                        limit=settings.credit_limit,
                        period=settings.period,
                        used=int(r.used),
                        reserved=int(r.reserved),
                        held=int(r.held),
                        jobs=int(r.jobs),
                        failures=int(r.failures),
                    )
                )
            return Report(window, start, end, tuple(guilds), await self._bot_usage(conn, moment))

        return await self._run(work, write=False)

    async def spend_since(self, moment: datetime) -> int:
        """Credits counted bot-wide (charges and open holds) for jobs created since `moment`."""
        since = as_utc(moment)

        async def work(conn: AsyncConnection) -> int:
            statement = select(func.coalesce(func.sum(_counted_expr), 0)).where(jobs.c.created_at >= since)
            return int((await conn.execute(statement)).scalar_one())

        return await self._run(work, write=False)

    async def unclaim_alert(self, guild_id: int, threshold: int, period_start: datetime) -> None:
        """Give a claim back when its post failed, so the next settled job tries to post it again."""

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(
                delete(alerts_sent).where(
                    alerts_sent.c.guild_id == guild_id,
                    alerts_sent.c.period_start == as_utc(period_start),
                    alerts_sent.c.threshold == threshold,
                )
            )

        await self._run(work, write=True)

    # ---- webhook events -----------------------------------------------------------------------

    async def record_webhook_event(self, project_id: str, event_type: str, payload: str) -> bool:
        """Store a verified event once; False for a duplicate delivery. On PostgreSQL a new event also
        NOTIFYs every listening process (sent on commit, so the reader finds the row)."""
        moment = self._now(None)

        async def work(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                self._insert(webhook_events)
                .values(project_id=project_id, event_type=event_type, payload=payload, received_at=moment)
                .on_conflict_do_nothing(index_elements=[webhook_events.c.project_id, webhook_events.c.event_type])
            )
            inserted = bool(result.rowcount)
            if inserted and not self._is_sqlite:
                await conn.execute(select(func.pg_notify(PROJECT_EVENTS_CHANNEL, project_id)))
            return inserted

        return await self._run(work, write=True)

    async def webhook_events_for(self, project_id: str) -> list[tuple[str, str]]:
        """(event type, payload JSON) recorded for a project, oldest first."""

        async def work(conn: AsyncConnection) -> list[tuple[str, str]]:
            rows = await conn.execute(
                select(webhook_events.c.event_type, webhook_events.c.payload)
                .where(webhook_events.c.project_id == project_id)
                .order_by(webhook_events.c.received_at)
            )
            return [(row.event_type, row.payload) for row in rows]

        return await self._run(work, write=False)

    async def get_job_by_project(self, project_id: str) -> JobRecord | None:
        """The job a webhook event is about (events name the project, not the interaction)."""

        async def work(conn: AsyncConnection) -> JobRecord | None:
            row = (await conn.execute(select(jobs).where(jobs.c.project_id == project_id))).first()
            return None if row is None else _job_record(row)

        return await self._run(work, write=False)

    async def claim_held_job(
        self, interaction_id: int, *, project_id: str, credits_charged: int, position: int = 0
    ) -> JobRecord | None:
        """A held job (create outcome unknown, no project id) is found: record its project, once.

        None when the job is not held any more (another event or process got there first)."""
        moment = self._now(None)

        async def work(conn: AsyncConnection) -> JobRecord | None:
            row = (
                await conn.execute(
                    update(jobs)
                    .where(
                        _job_key(interaction_id, position),
                        jobs.c.status == JobStatus.UNKNOWN.value,  # reserved: its create may still answer
                        jobs.c.project_id.is_(None),
                    )
                    .values(
                        status=JobStatus.SUBMITTED.value,
                        project_id=project_id,
                        credits_charged=credits_charged,
                        updated_at=moment,
                    )
                    .returning(*jobs.c)
                )
            ).first()
            return None if row is None else _job_record(row)

        return await self._run(work, write=True)

    # ---- meta ---------------------------------------------------------------------------------

    async def ping(self) -> None:
        """SELECT 1 within 3 s; raises if the database does not answer (for /healthz, so never retried)."""
        async with asyncio.timeout(3.0), self._engine.connect() as conn:
            await conn.execute(select(literal(1)))

    async def get_meta(self, key: str) -> str | None:
        async def work(conn: AsyncConnection) -> str | None:
            return (await conn.execute(select(meta.c.value).where(meta.c.key == key))).scalar()

        return await self._run(work, write=False)

    async def set_meta(self, key: str, value: str) -> None:
        moment = self._now(None)

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(
                self._insert(meta)
                .values(key=key, value=value, updated_at=moment)
                .on_conflict_do_update(index_elements=[meta.c.key], set_={"value": value, "updated_at": moment})
            )

        await self._run(work, write=True)


def _job_record(row: Row[Any]) -> JobRecord:
    data = row._mapping
    return JobRecord(
        id=int(data["id"]),
        interaction_id=int(data["interaction_id"]),
        guild_id=int(data["guild_id"]),
        channel_id=int(data["channel_id"]),
        user_id=int(data["user_id"]),
        application_id=data["application_id"],
        interaction_token=data["interaction_token"],
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
    )


def _request_record(row: Row[Any]) -> RequestRecord:
    data = row._mapping
    return RequestRecord(
        id=data["id"],
        interaction_id=int(data["interaction_id"]),
        guild_id=int(data["guild_id"]),
        channel_id=int(data["channel_id"]),
        user_id=int(data["user_id"]),
        application_id=data["application_id"],
        interaction_token=data["interaction_token"],
        private=bool(data["private"]),
        images=int(data["images"]),
        created_at=data["created_at"],
    )


def new_request_id() -> str:
    """Time-ordered and unique across processes (like a ULID): hex milliseconds, then randomness."""
    return f"{int(time.time() * 1000):012x}{secrets.token_hex(10)}"


def _job_key(interaction_id: int, position: int) -> ColumnElement[bool]:
    """One image's job: its request's interaction and its place in that request."""
    return and_(jobs.c.interaction_id == interaction_id, jobs.c.position == position)


def _in_window(start: datetime, end: datetime | None) -> ColumnElement[bool]:
    clauses = [jobs.c.created_at >= start]
    if end is not None:
        clauses.append(jobs.c.created_at < end)
    return and_(*clauses)


def _chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _charge_value(credits_charged: object, interaction_id: int) -> Any:
    """A plausible charge as given; otherwise the job's own reservation (a column expression)."""
    checked = plausible_charge(credits_charged, interaction_id=interaction_id)
    return jobs.c.credits_reserved if checked is None else checked


def _check_credits(credits: object, what: str) -> None:
    if isinstance(credits, bool) or not isinstance(credits, int):
        raise ValueError(f"{what} must be a whole number")
    if credits < 0:
        raise ValueError(f"{what} cannot be negative")
