"""Running balances beside the journal: where each account stands, so no question sums a month of jobs.

The jobs table is the journal (what happened); `balances` holds, per scope and UTC day, what those jobs
count (`lifecycle.tally`), plus an all-time row per scope. Every job transition moves the balances by
`tally(after) - tally(before)` in the same transaction, so a period's total is the sum of at most 31
rows (or the one all-time row) whatever the history. `derive_balances` rebuilds them from the journal
alone: the proof that the two agree (`python -m bot verify`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from .lifecycle import JobStatus, Tally, tally
from .models import Payer
from .periods import as_utc
from .schema import ALL_TIME, balances

EPOCH_DAY = date(1970, 1, 1)


class Scope(StrEnum):
    BOT = "bot"
    GUILD = "guild"
    MEMBER = "member"
    USER = "user"  # a member's own user-install budget


@dataclass(frozen=True)
class BalanceKey:
    scope: Scope
    guild_id: int = 0
    user_id: int = 0

    @classmethod
    def bot(cls) -> BalanceKey:
        return cls(Scope.BOT)

    @classmethod
    def guild(cls, guild_id: int) -> BalanceKey:
        return cls(Scope.GUILD, guild_id)

    @classmethod
    def member(cls, guild_id: int, user_id: int) -> BalanceKey:
        return cls(Scope.MEMBER, guild_id, user_id)

    @classmethod
    def user(cls, user_id: int) -> BalanceKey:
        return cls(Scope.USER, 0, user_id)

    def where(self) -> ColumnElement[bool]:
        return and_(
            balances.c.scope == self.scope.value,
            balances.c.guild_id == self.guild_id,
            balances.c.user_id == self.user_id,
        )


def keys_of(payer: Payer, guild_id: int | None, user_id: int) -> tuple[BalanceKey, ...]:
    """Every balance one job counts in: its payer's (a server and the member in it, or the member's own
    user-install budget) and the bot's."""
    if payer is Payer.USER:
        return (BalanceKey.user(user_id), BalanceKey.bot())
    assert guild_id is not None, "a job a server pays for has its server"
    return (BalanceKey.guild(guild_id), BalanceKey.member(guild_id, user_id), BalanceKey.bot())


_LOCK_RANK = {Scope.GUILD: 0, Scope.MEMBER: 1, Scope.USER: 2, Scope.BOT: 3}


def lock_order(row_key: tuple[BalanceKey, int]) -> tuple[int, int, int, int]:
    """The one order every writer touches balance rows in, so two transactions never wait on each other in
    a circle (PostgreSQL locks the rows of an upsert in the order given). The bot-wide rows, which every
    job moves, come last: they are held for the shortest time."""
    key, day = row_key
    return (_LOCK_RANK[key.scope], key.guild_id, key.user_id, day)


def day_number(moment: datetime) -> int:
    """The UTC day a job was reserved on: the bucket it counts in for good."""
    return (as_utc(moment).date() - EPOCH_DAY).days


def day_date(day: int) -> date:
    return EPOCH_DAY + timedelta(days=day)


def day_start(day: int) -> datetime:
    """Midnight UTC at the start of a bucket's day."""
    return datetime.combine(day_date(day), time(), tzinfo=UTC)


@dataclass(frozen=True)
class DayRange:
    """Buckets [first, end) of a period; `None` end: the all-time row."""

    first: int
    end: int | None

    @classmethod
    def of(cls, start: datetime, end: datetime | None) -> DayRange:
        """A period's buckets; periods start at UTC midnight, so whole days cover them exactly."""
        return cls(day_number(start), None if end is None else day_number(end))

    def where(self) -> ColumnElement[bool]:
        if self.end is None:
            return balances.c.day == ALL_TIME
        return and_(balances.c.day >= self.first, balances.c.day < self.end)


COLUMNS = ("used", "reserved", "held", "jobs", "failures")  # Tally's fields, in order
_SUMS = [func.coalesce(func.sum(getattr(balances.c, name)), 0) for name in COLUMNS]


async def read(conn: AsyncConnection, key: BalanceKey, days: DayRange) -> Tally:
    """One scope's total over a period: a bounded number of rows, read by primary key."""
    row = (await conn.execute(select(*_SUMS).where(key.where(), days.where()))).one()
    return Tally(*(int(value) for value in row))


class Moves:
    """The balance changes of one transaction, gathered and then written in one statement in `lock_order`."""

    def __init__(self) -> None:
        self.rows: dict[tuple[BalanceKey, int], Tally] = {}

    def add(self, payer: Payer, guild_id: int | None, user_id: int, created_at: datetime, delta: Tally) -> None:
        """A job reserved at `created_at` now counts `delta` more (its day's rows and the all-time rows)."""
        if delta.is_zero:
            return
        day = day_number(created_at)
        for key in keys_of(payer, guild_id, user_id):
            for bucket in (ALL_TIME, day):
                self.rows[(key, bucket)] = self.rows.get((key, bucket), Tally()) + delta

    def count(self, entry: JournalEntry) -> None:
        """Add what one job of the journal counts."""
        counted = tally(entry.status, entry.credits_reserved, entry.credits_charged)
        self.add(entry.payer, entry.guild_id, entry.user_id, entry.created_at, counted)

    async def write(self, conn: AsyncConnection, insert: Any) -> None:
        changed = sorted(
            ((row_key, delta) for row_key, delta in self.rows.items() if not delta.is_zero),
            key=lambda item: lock_order(item[0]),
        )
        if not changed:
            return
        statement = insert(balances).values(
            [
                {"scope": key.scope.value, "guild_id": key.guild_id, "user_id": key.user_id, "day": day}
                | dict(zip(COLUMNS, delta.astuple(), strict=True))
                for (key, day), delta in changed
            ]
        )
        excluded = statement.excluded
        await conn.execute(
            statement.on_conflict_do_update(
                index_elements=[balances.c.scope, balances.c.guild_id, balances.c.user_id, balances.c.day],
                set_={name: getattr(balances.c, name) + getattr(excluded, name) for name in COLUMNS},
            )
        )


@dataclass(frozen=True)
class JournalEntry:
    """What of a job the balances depend on."""

    payer: Payer
    guild_id: int | None
    user_id: int
    created_at: datetime
    status: JobStatus
    credits_reserved: int
    credits_charged: int | None


BalanceRows = dict[tuple[BalanceKey, int], Tally]


def derive_balances(entries: Iterable[JournalEntry]) -> BalanceRows:
    """Every balance row, rebuilt from the journal alone: what the stored balances must equal."""
    moves = Moves()
    for entry in entries:
        moves.count(entry)
    return moves.rows


def differences(stored: Mapping[tuple[BalanceKey, int], Tally], derived: BalanceRows) -> list[str]:
    """One line per balance row that disagrees with the journal (a row of zeros equals a missing row)."""
    lines = []
    for row_key in sorted(set(stored) | set(derived), key=lock_order):
        have, want = stored.get(row_key, Tally()), derived.get(row_key, Tally())
        if have != want:
            key, day = row_key
            where = "all time" if day == ALL_TIME else day_date(day).isoformat()
            owner = {
                Scope.BOT: "bot",
                Scope.GUILD: f"guild {key.guild_id}",
                Scope.USER: f"user install of {key.user_id}",
            }.get(key.scope, f"member {key.user_id} in guild {key.guild_id}")
            lines.append(f"{owner}, {where}: stored {_describe(have)}, journal says {_describe(want)}")
    return lines


def _describe(counted: Tally) -> str:
    return (
        f"used={counted.used} reserved={counted.reserved} held={counted.held} "
        f"jobs={counted.jobs} failures={counted.failures}"
    )
