"""Holding credits before Magic Hour is called: a whole request fits every limit at once, or nothing is held.

A reservation reads the balances of the scopes it must fit (the server, the member, the bot), never the
jobs themselves, so its cost does not grow with the period's history. Serialisation: PostgreSQL locks
the bot-wide lock row first (only while a bot-wide budget is set), then the server's settings row;
SQLite's IMMEDIATE transaction holds the write lock throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from . import balances
from .balances import COLUMNS, BalanceKey, DayRange
from .lifecycle import JobStatus, tally
from .limits import Limits
from .migrations import BOT_BUDGET_LOCK_KEY
from .models import COST_PER_JOB, GuildSettings, ImageSpec, JobRecord, LimitExceeded, Origin, Payer, RequestRecord
from .periods import period_bounds
from .records import job_record, new_request_id, request_record
from .schema import ALL_TIME, guild_settings, jobs, meta, requests
from .schema import balances as balances_table


class Reservations(Limits):
    async def reserve(
        self,
        *,
        interaction_id: int,
        guild_id: int | None,
        channel_id: int,
        user_id: int,
        cost: int = COST_PER_JOB,
        payer: Payer = Payer.GUILD,
        application_id: int | None = None,
        interaction_token: str | None = None,
        input_url: str | None = None,
        background_url: str | None = None,
        name: str | None = None,
        now: datetime | None = None,
        roles: Sequence[int] = (),
    ) -> JobRecord:
        """A request of one image (see `reserve_request`); returns its job."""
        moment = self._now(now)
        origin = Origin(
            interaction_id=interaction_id,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            created_at=moment,
            application_id=application_id,
            token=interaction_token,
        )
        image = ImageSpec(input_url=input_url, background_url=background_url, name=name)
        _, reserved = await self.reserve_request(origin, [image], cost=cost, private=False, payer=payer, roles=roles)
        return reserved[0]

    async def reserve_request(
        self,
        origin: Origin,
        images: Sequence[ImageSpec],
        *,
        private: bool,
        payer: Payer = Payer.GUILD,
        channel_posts: bool = True,
        options: str | None = None,
        cost: int = COST_PER_JOB,
        roles: Sequence[int] = (),
    ) -> tuple[RequestRecord, list[JobRecord]]:
        """Hold `cost` credits per image for a whole request, all or nothing, or raise LimitExceeded
        (its `cost` is the request's total); a repeated interaction gets its request back.

        `payer` says whose budget: the server's (its limit and member limit apply) or the member's own
        user-install budget (`LedgerDefaults.user_install_limit`); the bot-wide budget applies to both. The
        request's time is `origin.created_at` (the interaction's): the day its credits count on. `roles` are the
        member's role ids as Discord sent them with the interaction: their largest role limit is the member's cap.
        """
        if cost < 0:
            raise ValueError("cost must be 0 or more")
        if not images:
            raise ValueError("a request needs at least one image")
        if payer is Payer.GUILD and origin.guild_id is None:
            raise ValueError("a server can only pay for a request made in it")
        if payer is Payer.USER and self.defaults.user_install_limit is None:
            raise ValueError("user installs are off: USER_INSTALL_CREDIT_LIMIT is not set")
        moment = self._now(origin.created_at)
        paying_guild = origin.guild_id if payer is Payer.GUILD else None
        count = len(images)
        total_cost = cost * count
        request_id = new_request_id()

        async def work(conn: AsyncConnection) -> tuple[RequestRecord, list[JobRecord]]:
            if self.defaults.bot_budget is not None:
                await self._lock_bot(conn)  # always before the payer's row: one lock order for everyone
            if paying_guild is not None:
                settings = await self._lock_guild(conn, paying_guild, moment)
            else:
                await self._lock_user(conn, origin.user_id)
            existing = await self._request_by_interaction(conn, origin.interaction_id)
            if existing is not None:
                return existing
            if paying_guild is not None:
                if origin.guild_locale and origin.guild_locale != settings.locale:
                    await conn.execute(  # the server's language, for its alerts: kept as Discord last said it
                        update(guild_settings)
                        .where(guild_settings.c.guild_id == paying_guild)
                        .values(locale=origin.guild_locale)
                    )
                await self._check_guild_fits(conn, settings, origin.user_id, roles, moment, total_cost, count)
            else:
                await self._check_user_fits(conn, origin.user_id, moment, total_cost, count)
            await self._check_bot_fits(conn, moment, total_cost, count)
            request_row = (
                await conn.execute(
                    requests.insert()
                    .values(
                        id=request_id,
                        interaction_id=origin.interaction_id,
                        guild_id=origin.guild_id,
                        channel_id=origin.channel_id,
                        user_id=origin.user_id,
                        application_id=origin.application_id,
                        interaction_token=origin.token,
                        private=private,
                        images=count,
                        created_at=moment,
                        payer=payer.value,
                        channel_posts=channel_posts,
                        options=options,
                        locale=origin.locale,
                    )
                    .returning(*requests.c)
                )
            ).one()
            rows = (
                await conn.execute(
                    jobs.insert()
                    .values(
                        [
                            {
                                "interaction_id": origin.interaction_id,
                                "request_id": request_id,
                                "position": position,
                                "guild_id": paying_guild,
                                "payer": payer.value,
                                "channel_id": origin.channel_id,
                                "user_id": origin.user_id,
                                "status": JobStatus.RESERVED.value,
                                "credits_reserved": cost,
                                "input_url": image.input_url,
                                "background_url": image.background_url,
                                "name": image.name,
                                "input_filename": image.input_filename,
                                "created_at": moment,
                                "updated_at": moment,
                                "delivered": False,
                            }
                            for position, image in enumerate(images)
                        ]
                    )
                    .returning(*jobs.c)
                )
            ).all()
            moves = balances.Moves()
            for _ in images:
                moves.add(payer, paying_guild, origin.user_id, moment, tally(JobStatus.RESERVED, cost, None))
            await moves.write(conn, self._insert)
            records = sorted((job_record(row) for row in rows), key=lambda record: record.position)
            return request_record(request_row), records

        try:
            return await self._run(work, write=True)
        except IntegrityError:
            # Same interaction id recorded under another guild's lock: still the same request.
            found = await self._run(lambda conn: self._request_by_interaction(conn, origin.interaction_id), write=False)
            if found is None:
                raise
            return found

    async def _check_guild_fits(
        self,
        conn: AsyncConnection,
        settings: GuildSettings,
        user_id: int,
        roles: Sequence[int],
        moment: datetime,
        cost: int,
        images: int,
    ) -> None:
        """Raise LimitExceeded unless `cost` more credits fit the server's limit and the member's cap (their
        largest role limit, else the member limit), both in the server's period."""
        start, end = period_bounds(settings.period, moment)
        days = DayRange.of(start, end)
        server = await balances.read(conn, BalanceKey.guild(settings.guild_id), days)
        if server.counted + cost > settings.credit_limit:
            raise LimitExceeded("guild", server.counted, settings.credit_limit, settings.period, end, cost, images)
        cap = await self._member_cap(conn, settings, roles)
        if cap.credits is not None:
            member = await balances.read(conn, BalanceKey.member(settings.guild_id, user_id), days)
            if member.counted + cost > cap.credits:
                raise LimitExceeded(
                    "member", member.counted, cap.credits, settings.period, end, cost, images, role_id=cap.role_id
                )

    async def _check_user_fits(
        self, conn: AsyncConnection, user_id: int, moment: datetime, cost: int, images: int
    ) -> None:
        """Raise LimitExceeded unless `cost` more credits fit the member's own user-install budget."""
        limit, period = self.defaults.user_install_limit, self.defaults.user_install_period
        assert limit is not None
        start, end = period_bounds(period, moment)
        mine = await balances.read(conn, BalanceKey.user(user_id), DayRange.of(start, end))
        if mine.counted + cost > limit:
            raise LimitExceeded("user", mine.counted, limit, period, end, cost, images)

    async def _check_bot_fits(self, conn: AsyncConnection, moment: datetime, cost: int, images: int) -> None:
        budget = self.defaults.bot_budget
        if budget is None:
            return
        period = self.defaults.bot_period
        start, end = period_bounds(period, moment)
        bot = await balances.read(conn, BalanceKey.bot(), DayRange.of(start, end))
        if bot.counted + cost > budget:
            raise LimitExceeded("bot", bot.counted, budget, period, end, cost, images)

    async def _request_by_interaction(
        self, conn: AsyncConnection, interaction_id: int
    ) -> tuple[RequestRecord, list[JobRecord]] | None:
        row = (await conn.execute(select(requests).where(requests.c.interaction_id == interaction_id))).first()
        if row is None:
            return None
        found = await conn.execute(select(jobs).where(jobs.c.request_id == row.id).order_by(jobs.c.position))
        return request_record(row), [job_record(job) for job in found]

    async def get_request(self, request_id: str) -> RequestRecord | None:
        """Where a request's messages go (the route is stored once per request, not per image)."""

        async def work(conn: AsyncConnection) -> RequestRecord | None:
            row = (await conn.execute(select(requests).where(requests.c.id == request_id))).first()
            return None if row is None else request_record(row)

        return await self._run(work, write=False)

    async def request_jobs(self, request_id: str) -> list[JobRecord]:
        """Every image of a request, in the member's order."""

        async def work(conn: AsyncConnection) -> list[JobRecord]:
            rows = await conn.execute(select(jobs).where(jobs.c.request_id == request_id).order_by(jobs.c.position))
            return [job_record(row) for row in rows]

        return await self._run(work, write=False)

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
            .values(key=BOT_BUDGET_LOCK_KEY, value="lock row", updated_at=self._now())
            .on_conflict_do_nothing(index_elements=[meta.c.key])
        )
        (await conn.execute(lock)).one()

    async def _lock_user(self, conn: AsyncConnection, user_id: int) -> None:
        """The per-member mutex of a user-install budget: the member's all-time balance row (created if new).

        On SQLite FOR UPDATE renders as nothing; the IMMEDIATE transaction already holds the write lock.
        """
        key = BalanceKey.user(user_id)
        await conn.execute(
            self._insert(balances_table)
            .values(scope=key.scope.value, guild_id=0, user_id=user_id, day=ALL_TIME, **dict.fromkeys(COLUMNS, 0))
            .on_conflict_do_nothing()
        )
        await conn.execute(
            select(balances_table.c.day).where(key.where(), balances_table.c.day == ALL_TIME).with_for_update()
        )

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
