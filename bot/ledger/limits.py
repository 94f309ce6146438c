"""Who may spend how much: each server's limit and period, the owner's grants, member and role limits, alerts.

Limits are read inside the reservation's transaction (`reservations.py`), so a change applies to the
next reservation and never to one already made.

Role limits: a member's cap is the largest limit among the roles they carry (the ids Discord sends with each
interaction, so a role change counts from the member's next command), and it replaces the server's member
limit for them, higher or lower. A deleted role is simply never carried again: its row stays, unused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from .core import LedgerCore, check_credits, chunks
from .models import CeilingExceeded, GuildSettings, MemberCap, RoleLimit
from .periods import Period, as_utc, parse_period
from .schema import alerts_sent, guild_settings, role_limits


def member_cap(member_limit: int | None, carried: Mapping[int, int]) -> MemberCap:
    """The largest of `carried` (role id → credits, the member's limited roles), else the member limit.

    Ties go to the lower role id, so the same roles always name the same role.
    """
    if not carried:
        return MemberCap(member_limit)
    credits, role_id = max((credits, -role_id) for role_id, credits in carried.items())
    return MemberCap(credits, -role_id)


class Limits(LedgerCore):
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
            locale=row.locale,
        )

    async def get_settings(self, guild_id: int) -> GuildSettings:
        async def work(conn: AsyncConnection) -> GuildSettings:
            return await self._read_settings(conn, guild_id)

        return await self._run(work, write=False)

    async def _read_settings(self, conn: AsyncConnection, guild_id: int) -> GuildSettings:
        row = (await conn.execute(select(guild_settings).where(guild_settings.c.guild_id == guild_id))).first()
        return self._settings(guild_id, row)

    async def _upsert_settings(self, guild_id: int, values: Mapping[str, Any]) -> GuildSettings:
        changes = {**values, "updated_at": self._now()}

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

    async def set_limit(
        self, guild_id: int, credits: int, period: Period | str, *, bypass_ceiling: bool = False
    ) -> GuildSettings:
        """An admin's limit, refused above the guild's ceiling (its grant, else the global maximum) with
        CeilingExceeded; the owner may pass bypass_ceiling."""
        parsed = parse_period(period)
        check_credits(credits, "the credit limit")
        changes = {"credit_limit": credits, "period": parsed.value, "updated_at": self._now()}

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
        check_credits(credits, "the granted ceiling")
        moment = self._now()

        async def work(conn: AsyncConnection) -> GuildSettings:
            chosen = parse_period(period) if period is not None else (await self._read_settings(conn, guild_id)).period
            changes = {
                "granted_ceiling": credits,
                "credit_limit": credits,
                "period": chosen.value,
                "updated_at": moment,
            }
            return await self._write_settings(conn, guild_id, changes)

        return await self._run(work, write=True)

    async def reset_grant(self, guild_id: int) -> GuildSettings:
        """Back to the defaults: no grant, and the default limit and period (member limit and alerts stay)."""
        return await self._upsert_settings(guild_id, {"granted_ceiling": None, "credit_limit": None, "period": None})

    async def set_member_limit(self, guild_id: int, credits: int | None) -> GuildSettings:
        """Per-member cap within the guild's period; 0 or None removes it."""
        if credits is not None:
            check_credits(credits, "the member limit")
        return await self._upsert_settings(guild_id, {"member_limit": credits or None})

    async def set_role_limit(self, guild_id: int, role_id: int, credits: int) -> RoleLimit | None:
        """What each member carrying `role_id` may spend per period; 0 removes the role's limit (returns None)."""
        check_credits(credits, "the role limit")
        moment = self._now()

        async def work(conn: AsyncConnection) -> RoleLimit | None:
            if credits == 0:
                await conn.execute(
                    delete(role_limits).where(role_limits.c.guild_id == guild_id, role_limits.c.role_id == role_id)
                )
                return None
            await conn.execute(
                self._insert(role_limits)
                .values(guild_id=guild_id, role_id=role_id, credits=credits, updated_at=moment)
                .on_conflict_do_update(
                    index_elements=[role_limits.c.guild_id, role_limits.c.role_id],
                    set_={"credits": credits, "updated_at": moment},
                )
            )
            return RoleLimit(role_id, credits, moment)

        return await self._run(work, write=True)

    async def role_limits(self, guild_id: int) -> list[RoleLimit]:
        """Every role limit of the server, largest first (deleted roles included: only Discord knows which)."""
        statement = (
            select(role_limits)
            .where(role_limits.c.guild_id == guild_id)
            .order_by(role_limits.c.credits.desc(), role_limits.c.role_id)
        )

        async def work(conn: AsyncConnection) -> list[RoleLimit]:
            return [RoleLimit(int(r.role_id), int(r.credits), r.updated_at) for r in await conn.execute(statement)]

        return await self._run(work, write=False)

    async def _member_cap(self, conn: AsyncConnection, settings: GuildSettings, roles: Iterable[int]) -> MemberCap:
        """The cap of a member carrying `roles`, read in the caller's transaction (under the guild lock when
        reserving, so it cannot change between the check and the reservation)."""
        wanted = sorted({int(role) for role in roles})
        carried: dict[int, int] = {}
        for chunk in chunks(wanted):
            rows = await conn.execute(
                select(role_limits.c.role_id, role_limits.c.credits).where(
                    role_limits.c.guild_id == settings.guild_id, role_limits.c.role_id.in_(chunk)
                )
            )
            carried.update((int(r.role_id), int(r.credits)) for r in rows)
        return member_cap(settings.member_limit, carried)

    async def set_alert_channel(self, guild_id: int, channel_id: int | None) -> GuildSettings:
        return await self._upsert_settings(guild_id, {"alert_channel_id": channel_id})

    async def claim_alert(self, guild_id: int, threshold: int, period_start: datetime) -> bool:
        """True for exactly one caller per (guild, period, threshold): whoever should send that alert."""
        moment = self._now()

        async def work(conn: AsyncConnection) -> bool:
            row = (
                await conn.execute(
                    self._insert(alerts_sent)
                    .values(guild_id=guild_id, period_start=as_utc(period_start), threshold=threshold, sent_at=moment)
                    .on_conflict_do_nothing()
                    .returning(alerts_sent.c.guild_id)
                )
            ).first()
            return row is not None

        return await self._run(work, write=True)

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
