"""What the ledger tells people: usage and top spenders (from the balances), history and exports (from the
journal, newest or oldest first, by index), the owner's report, and the proof that the two agree."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from . import balances
from .balances import BalanceKey, DayRange, Scope
from .core import LedgerCore, chunks
from .lifecycle import JobStatus, Tally, tally
from .limits import Limits
from .models import BotUsage, GuildReport, JobRecord, Payer, Report, Usage, UserInstallReport
from .periods import Period, as_utc, parse_period, period_bounds
from .records import job_record, journal_entry
from .schema import balances as balances_table
from .schema import guild_settings, jobs

EXPORT_PAGE = 1000


class Reports(Limits, LedgerCore):
    async def usage(
        self, guild_id: int, user_id: int | None = None, now: datetime | None = None, *, roles: Sequence[int] = ()
    ) -> Usage:
        """The server's figures in its period; with `user_id`, also that member's, against the cap their `roles`
        (as Discord sent them) give."""
        moment = self._now(now)

        async def work(conn: AsyncConnection) -> Usage:
            settings = await self._read_settings(conn, guild_id)
            start, end = period_bounds(settings.period, moment)
            days = DayRange.of(start, end)
            server = await balances.read(conn, BalanceKey.guild(guild_id), days)
            member = await balances.read(conn, BalanceKey.member(guild_id, user_id), days) if user_id else None
            cap = await self._member_cap(conn, settings, roles) if user_id else None
            held_since = None
            if server.held:
                held_since = (
                    await conn.execute(
                        select(func.min(jobs.c.created_at)).where(
                            jobs.c.status == JobStatus.HELD.value,
                            jobs.c.guild_id == guild_id,
                            _created_within(start, end),
                        )
                    )
                ).scalar()
            return Usage(
                used=server.used,
                reserved=server.reserved + server.held,
                limit=settings.credit_limit,
                period=settings.period,
                period_start=start,
                resets_at=end,
                member_used=member.counted if member is not None else None,
                member_limit=settings.member_limit,
                member_cap=cap.credits if cap is not None else None,
                member_cap_role_id=cap.role_id if cap is not None else None,
                held=server.held,
                held_since=held_since,
            )

        return await self._run(work, write=False)

    async def user_usage(self, user_id: int, now: datetime | None = None) -> Usage:
        """A member's own user-install budget: what they spent through it this period, and its limit."""
        moment = self._now(now)
        limit, period = self.defaults.user_install_limit or 0, self.defaults.user_install_period
        start, end = period_bounds(period, moment)

        async def work(conn: AsyncConnection) -> Usage:
            mine = await balances.read(conn, BalanceKey.user(user_id), DayRange.of(start, end))
            return Usage(
                used=mine.used,
                reserved=mine.reserved + mine.held,
                limit=limit,
                period=period,
                period_start=start,
                resets_at=end,
                held=mine.held,
                payer=Payer.USER,
            )

        return await self._run(work, write=False)

    async def top_members(self, guild_id: int, limit: int = 5, now: datetime | None = None) -> list[tuple[int, int]]:
        """(user_id, credits incl. reservations) in the current period, biggest spenders first."""
        moment = self._now(now)

        async def work(conn: AsyncConnection) -> list[tuple[int, int]]:
            settings = await self._read_settings(conn, guild_id)
            days = DayRange.of(*period_bounds(settings.period, moment))
            counted = balances_table.c.used + balances_table.c.reserved + balances_table.c.held
            total = func.sum(counted)
            statement = (
                select(balances_table.c.user_id, total.label("credits"))
                .where(
                    balances_table.c.scope == Scope.MEMBER.value, balances_table.c.guild_id == guild_id, days.where()
                )
                .group_by(balances_table.c.user_id)
                .having(total > 0)
                .order_by(total.desc(), balances_table.c.user_id)
                .limit(limit)
            )
            return [(int(row.user_id), int(row.credits)) for row in await conn.execute(statement)]

        return await self._run(work, write=False)

    async def member_days(self, guild_id: int, start: datetime, end: datetime) -> list[tuple[datetime, int, int]]:
        """(day, user_id, credits) of every member with credits counted on each day in [start, end)."""
        days = DayRange.of(start, end)

        async def work(conn: AsyncConnection) -> list[tuple[datetime, int, int]]:
            counted = balances_table.c.used + balances_table.c.reserved + balances_table.c.held
            rows = await conn.execute(
                select(balances_table.c.day, balances_table.c.user_id, counted.label("credits")).where(
                    balances_table.c.scope == Scope.MEMBER.value,
                    balances_table.c.guild_id == guild_id,
                    days.where(),
                    counted > 0,
                )
            )
            return [(balances.day_start(int(r.day)), int(r.user_id), int(r.credits)) for r in rows]

        return await self._run(work, write=False)

    async def history(self, guild_id: int, user_id: int | None = None, limit: int = 20) -> list[JobRecord]:
        """Newest first, across all periods (the journal, by its (guild, created) index)."""
        condition = jobs.c.guild_id == guild_id
        if user_id is not None:
            condition = and_(condition, jobs.c.user_id == user_id)
        statement = select(jobs).where(condition).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)

        async def work(conn: AsyncConnection) -> list[JobRecord]:
            return [job_record(row) for row in await conn.execute(statement)]

        return await self._run(work, write=False)

    async def export_rows(self, guild_id: int, now: datetime | None = None) -> list[JobRecord]:
        """Every job of the current period, oldest first (for a CSV export)."""
        return [record async for record in self.iter_export(guild_id, now=now)]

    async def iter_export(
        self, guild_id: int, *, now: datetime | None = None, page: int = EXPORT_PAGE
    ) -> AsyncIterator[JobRecord]:
        """The current period's jobs, oldest first, read a page at a time (keyset on (created_at, id))."""
        settings = await self.get_settings(guild_id)
        start, end = period_bounds(settings.period, self._now(now))
        after: tuple[datetime, int] | None = None
        while True:
            condition = and_(jobs.c.guild_id == guild_id, _created_within(start, end))
            if after is not None:
                condition = and_(
                    condition,
                    (jobs.c.created_at > after[0]) | and_(jobs.c.created_at == after[0], jobs.c.id > after[1]),
                )
            statement = select(jobs).where(condition).order_by(jobs.c.created_at, jobs.c.id).limit(page)

            async def work(conn: AsyncConnection, statement: Any = statement) -> list[JobRecord]:
                return [job_record(row) for row in await conn.execute(statement)]

            found = await self._run(work, write=False)
            for record in found:
                yield record
            if len(found) < page:
                return
            after = (found[-1].created_at, found[-1].id)

    async def bot_usage(self, now: datetime | None = None) -> BotUsage:
        """Spend across every server in the bot period, against the owner's budget."""
        moment = self._now(now)

        async def work(conn: AsyncConnection) -> BotUsage:
            return await self._bot_usage(conn, moment)

        return await self._run(work, write=False)

    async def _bot_usage(self, conn: AsyncConnection, moment: datetime) -> BotUsage:
        period = self.defaults.bot_period
        start, end = period_bounds(period, moment)
        bot = await balances.read(conn, BalanceKey.bot(), DayRange.of(start, end))
        return BotUsage(bot.used, bot.reserved + bot.held, self.defaults.bot_budget, period, start, end)

    async def report(self, period: Period | str, now: datetime | None = None) -> Report:
        """The owner's view: every server with jobs in `period`, biggest spend first, plus the bot-wide total."""
        window = parse_period(period)
        moment = self._now(now)
        start, end = period_bounds(window, moment)
        days = DayRange.of(start, end)
        table = balances_table.c
        spend = func.sum(table.used + table.reserved + table.held)
        statement = (
            select(
                table.guild_id,
                func.sum(table.used).label("used"),
                func.sum(table.reserved).label("reserved"),
                func.sum(table.held).label("held"),
                func.sum(table.jobs).label("jobs"),
                func.sum(table.failures).label("failures"),
            )
            .where(table.scope == Scope.GUILD.value, days.where())
            .group_by(table.guild_id)
            .having(func.sum(table.jobs) > 0)
            .order_by(spend.desc(), table.guild_id)
        )

        async def work(conn: AsyncConnection) -> Report:
            rows = (await conn.execute(statement)).all()
            ids = [int(r.guild_id) for r in rows]
            stored: dict[int, Any] = {}
            for chunk in chunks(ids):
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
                        reserved=int(r.reserved) + int(r.held),
                        held=int(r.held),
                        jobs=int(r.jobs),
                        failures=int(r.failures),
                    )
                )
            return Report(
                window,
                start,
                end,
                tuple(guilds),
                await self._bot_usage(conn, moment),
                await self._user_installs(conn, days),
            )

        return await self._run(work, write=False)

    @staticmethod
    async def _user_installs(conn: AsyncConnection, days: DayRange) -> UserInstallReport | None:
        """Members' own installs, all together: how many members spent, and how much (nobody is named)."""
        table = balances_table.c
        row = (
            await conn.execute(
                select(
                    func.count(func.distinct(table.user_id)),
                    *(func.coalesce(func.sum(getattr(table, name)), 0) for name in balances.COLUMNS),
                ).where(table.scope == Scope.USER.value, days.where(), table.jobs > 0)
            )
        ).one()
        members, used, reserved, held, jobs_, failures = (int(value) for value in row)
        if not jobs_:
            return None
        return UserInstallReport(members, used, reserved + held, held, jobs_, failures)

    async def spend_since(self, moment: datetime) -> int:
        """Credits counted bot-wide (charges and open holds) for jobs created since `moment` (a day's jobs)."""
        since = as_utc(moment)

        async def work(conn: AsyncConnection) -> int:
            rows = await conn.execute(
                select(jobs.c.status, jobs.c.credits_reserved, jobs.c.credits_charged).where(jobs.c.created_at >= since)
            )
            return sum(_tally_of(row).counted for row in rows)

        return await self._run(work, write=False)

    # ---- proof -----------------------------------------------------------------------------------------

    async def verify(self) -> list[str]:
        """Re-derive every balance from the journal and compare (read-only); one line per difference.

        Both are read from one snapshot, so moves committed meanwhile by a running bot cannot show as
        differences."""

        async def work(conn: AsyncConnection) -> list[str]:
            stored = {
                (BalanceKey(Scope(row.scope), int(row.guild_id), int(row.user_id)), int(row.day)): Tally(
                    int(row.used), int(row.reserved), int(row.held), int(row.jobs), int(row.failures)
                )
                for row in await conn.execute(select(balances_table))
            }
            entries = await conn.stream(
                select(
                    jobs.c.payer,
                    jobs.c.guild_id,
                    jobs.c.user_id,
                    jobs.c.created_at,
                    jobs.c.status,
                    jobs.c.credits_reserved,
                    jobs.c.credits_charged,
                )
            )
            derived = balances.Moves()
            async for row in entries:  # streamed: a journal of millions of jobs is never held in memory
                derived.count(journal_entry(row))
            return balances.differences(stored, derived.rows)

        return await self._run(work, write=False, snapshot=True)


def _created_within(start: datetime, end: datetime | None) -> ColumnElement[bool]:
    if end is None:
        return jobs.c.created_at >= start
    return and_(jobs.c.created_at >= start, jobs.c.created_at < end)


def _tally_of(row: Any) -> Tally:
    return tally(JobStatus(row.status), int(row.credits_reserved), row.credits_charged)
