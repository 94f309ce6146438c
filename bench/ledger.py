"""Reservations against a long history: `python -m bench.ledger [--history N ...] [--attempts M] [--rounds R]`.

For each history size N, on SQLite and on PostgreSQL (BENCH_DATABASE_URL or TEST_DATABASE_URL; skipped
when unset), a fresh database gets N settled jobs of the current month spread over 1,000 servers and 20
members each, with their balances, loaded in bulk (the balances are summed here with the ledger's own
`tally`, and `verify()` checks them when N is small). Then 20 concurrent reservers make M attempts,
round-robin over the servers, in two shapes:

- per-server limits only: every server's limit lets exactly 2 more reservations through;
- a bot-wide budget too (`BOT_CREDIT_BUDGET`), letting exactly half the attempts through.

Accepted counts are therefore known in advance: any other count, or any server or the bot above its limit,
is an overspend and stops the run. Each size is measured in several rounds, the sizes interleaved, and the
median is reported, so the machine's load drifting during a run hits every size alike. Prints a Markdown
table; the goal is a rate at N = 1,000,000 within 80 % of the rate at N = 0 on each engine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.ledger import COST_PER_JOB, JobStatus, Ledger, LedgerDefaults, LimitExceeded, normalize_database_url
from bot.ledger.balances import day_number, keys_of
from bot.ledger.lifecycle import tally
from bot.ledger.schema import ALL_TIME

NOW = datetime(2025, 3, 31, 12, 0, tzinfo=UTC)  # the 31st: a month's reads span the most day rows
MONTH_START = datetime(2025, 3, 1, tzinfo=UTC)
SERVERS = 1_000
MEMBERS = 20
RESERVERS = 20
PER_SERVER = 2  # reservations each server's limit still lets through
FIRST_GUILD = 1_100_000_000_000_000_000
FIRST_MEMBER = 1_300_000_000_000_000_000
HISTORY_IDS = 100_000_000_000_000_000
VERIFY_UP_TO = 100_000  # verify() streams the whole journal: checked on the smaller histories
CHUNK = 20_000

JOB_COLUMNS = (
    "interaction_id", "request_id", "position", "guild_id", "channel_id", "user_id", "project_id", "status",
    "credits_reserved", "credits_charged", "created_at", "updated_at", "delivered", "sent_at",
)  # fmt: skip
REQUEST_COLUMNS = ("id", "interaction_id", "guild_id", "channel_id", "user_id", "private", "images", "created_at")
BALANCE_COLUMNS = ("scope", "guild_id", "user_id", "day", "used", "reserved", "held", "jobs", "failures")


# ---- the history ------------------------------------------------------------------------------------------

Sink = Callable[[list[tuple[Any, ...]], list[tuple[Any, ...]]], Awaitable[None]]


@dataclass
class History:
    """N settled jobs (nine in ten complete at 5 credits, one in ten failed and refunded) spread over the
    month so far; the balances they make, and what each server and the bot have counted."""

    size: int
    balances: dict[tuple[str, int, int, int], list[int]]
    spent: dict[int, int]

    @property
    def bot_spent(self) -> int:
        return sum(self.spent.values())


def history_rows(size: int) -> Iterator[tuple[tuple[Any, ...], tuple[Any, ...], int, int, datetime, JobStatus, int]]:
    span = int((NOW - MONTH_START).total_seconds())
    for i in range(size):
        guild = FIRST_GUILD + i % SERVERS
        user = FIRST_MEMBER + (i // SERVERS) % MEMBERS
        created = MONTH_START + timedelta(seconds=(i * 2_654_435_761) % span)  # spread, deterministic
        status = JobStatus.FAILED if i % 10 == 0 else JobStatus.COMPLETE
        charged = 0 if status is JobStatus.FAILED else COST_PER_JOB
        interaction = HISTORY_IDS + i
        request_id = f"hist-{i}"
        job = (interaction, request_id, 0, guild, 1, user, f"cm-hist-{i}", status.value, COST_PER_JOB, charged,
               created, created + timedelta(seconds=8), True, created)  # fmt: skip
        request = (request_id, interaction, guild, 1, user, False, 1, created)
        yield job, request, guild, user, created, status, charged


async def build_history(size: int, sink: Sink) -> History:
    """Generate the jobs in chunks, hand each chunk to `sink(jobs, requests)`, and sum their balances."""
    sums: dict[tuple[str, int, int, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
    spent: dict[int, int] = defaultdict(int)
    jobs: list[tuple[Any, ...]] = []
    requests: list[tuple[Any, ...]] = []
    for job, request, guild, user, created, status, charged in history_rows(size):
        jobs.append(job)
        requests.append(request)
        counted = tally(status, COST_PER_JOB, charged)
        spent[guild] += counted.counted
        day = day_number(created)
        for key in keys_of(guild, user):
            for bucket in (ALL_TIME, day):
                row = sums[(key.scope.value, key.guild_id, key.user_id, bucket)]
                for n, value in enumerate(counted.astuple()):
                    row[n] += value
        if len(jobs) >= CHUNK:
            await sink(jobs, requests)
            jobs, requests = [], []
    if jobs:
        await sink(jobs, requests)
    return History(size, dict(sums), dict(spent))


def balance_records(history: History) -> list[tuple[Any, ...]]:
    return [(*key, *values) for key, values in history.balances.items()]


# ---- loading it, per engine ------------------------------------------------------------------------------


def sqlite_stamp(moment: datetime) -> str:
    """How the ledger stores a time on SQLite (naive UTC text, SQLAlchemy's format)."""
    return moment.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"  # noqa: S608 - constants


async def load_sqlite(path: Path, size: int) -> History:
    db = sqlite3.connect(path)
    try:
        db.execute("BEGIN")
        job_sql, request_sql = insert_sql("jobs", JOB_COLUMNS), insert_sql("requests", REQUEST_COLUMNS)

        async def sink(jobs: list[tuple[Any, ...]], requests: list[tuple[Any, ...]]) -> None:
            db.executemany(
                job_sql,
                [(*j[:10], sqlite_stamp(j[10]), sqlite_stamp(j[11]), int(j[12]), sqlite_stamp(j[13])) for j in jobs],
            )
            db.executemany(request_sql, [(*r[:5], int(r[5]), r[6], sqlite_stamp(r[7])) for r in requests])

        history = await build_history(size, sink)
        db.executemany(insert_sql("balances", BALANCE_COLUMNS), balance_records(history))
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # as a database grown over months would be
    finally:
        db.close()
    return history


async def load_postgres(url: str, schema: str, size: int) -> History:
    dsn = normalize_database_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    db = await asyncpg.connect(dsn, server_settings={"search_path": schema})
    try:

        async def sink(jobs: list[tuple[Any, ...]], requests: list[tuple[Any, ...]]) -> None:
            await db.copy_records_to_table("jobs", records=jobs, columns=JOB_COLUMNS, schema_name=schema)
            await db.copy_records_to_table("requests", records=requests, columns=REQUEST_COLUMNS, schema_name=schema)

        async with db.transaction():
            history = await build_history(size, sink)
            await db.copy_records_to_table(
                "balances", records=balance_records(history), columns=BALANCE_COLUMNS, schema_name=schema
            )
        await db.execute("ANALYZE")  # what autovacuum does after a large load
        await db.execute("CHECKPOINT")  # the load's dirty pages written out, as months of growth would have been
    finally:
        await db.close()
    return history


# ---- the reservers ---------------------------------------------------------------------------------------


@dataclass
class Database:
    engine: str
    url: str
    connect_args: dict[str, Any] | None
    history: History
    seed_seconds: float


@dataclass
class Sample:
    database: Database
    shape: str
    attempts: int
    accepted: int
    refused: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.attempts / self.seconds


async def reserve_all(ledger: Ledger, attempts: int, first_interaction: int) -> tuple[int, int, float]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for attempt in range(attempts):
        queue.put_nowait(attempt)
    outcome = {"ok": 0, "refused": 0}

    async def reserver() -> None:
        while not queue.empty():
            attempt = queue.get_nowait()
            guild = FIRST_GUILD + attempt % SERVERS
            user = FIRST_MEMBER + (attempt // SERVERS) % MEMBERS
            try:
                await ledger.reserve(
                    interaction_id=first_interaction + attempt, guild_id=guild, channel_id=1, user_id=user, now=NOW
                )
                outcome["ok"] += 1
            except LimitExceeded:
                outcome["refused"] += 1

    started = time.perf_counter()
    await asyncio.gather(*(reserver() for _ in range(RESERVERS)))
    return outcome["ok"], outcome["refused"], time.perf_counter() - started


async def make_room(ledger: Ledger) -> None:
    """Every server's limit: what it has counted this month plus room for PER_SERVER reservations."""
    spent = {g.guild_id: g.spend for g in (await ledger.report("month", now=NOW)).guilds}
    for guild in range(FIRST_GUILD, FIRST_GUILD + SERVERS):
        room = spent.get(guild, 0) + PER_SERVER * COST_PER_JOB
        await ledger.set_limit(guild, room, "month", bypass_ceiling=True)


async def check_no_overspend(ledger: Ledger, engine: str, expected: int, accepted: int, bot_budget: int | None) -> None:
    report = await ledger.report("month", now=NOW)
    over = [g for g in report.guilds if g.spend > g.limit]
    bot_over = bot_budget is not None and report.bot.total > bot_budget
    if accepted != expected or over or bot_over:
        raise SystemExit(
            f"OVERSPEND on {engine}: accepted {accepted} (expected {expected}); "
            f"{len(over)} servers over their limit; bot {report.bot.total}/{bot_budget}"
        )


async def measure(database: Database, attempts: int, round_: int) -> list[Sample]:
    """One round on one database: both shapes, each with fresh room on every server."""
    samples = []
    clock = lambda: NOW  # noqa: E731 - the history is of this month; so are the reservations
    first = 1 + 2 * attempts * round_
    ledger = await Ledger.open(
        database.url, LedgerDefaults(credit_limit=0), connect_args=database.connect_args, clock=clock
    )
    try:
        await make_room(ledger)
        ok, refused, seconds = await reserve_all(ledger, attempts, first)
        await check_no_overspend(ledger, database.engine, min(attempts, SERVERS * PER_SERVER), ok, None)
        samples.append(Sample(database, "per-server limits", attempts, ok, refused, seconds))
        await make_room(ledger)
        bot_now = (await ledger.bot_usage(now=NOW)).total
    finally:
        await ledger.close()

    budget = bot_now + (attempts // 2) * COST_PER_JOB  # the bot-wide budget lets half the attempts through
    defaults = LedgerDefaults(credit_limit=0, bot_budget=budget, bot_period="month")
    ledger = await Ledger.open(database.url, defaults, connect_args=database.connect_args, clock=clock)
    try:
        ok, refused, seconds = await reserve_all(ledger, attempts, first + attempts)
        expected = min(attempts // 2, SERVERS * PER_SERVER)
        await check_no_overspend(ledger, database.engine, expected, ok, budget)
        samples.append(Sample(database, "bot budget + per-server", attempts, ok, refused, seconds))
        if database.history.size <= VERIFY_UP_TO:
            assert await ledger.verify() == [], "the balances disagree with the journal"
    finally:
        await ledger.close()
    return samples


async def sqlite_database(tmp: Path, size: int) -> Database:
    path = tmp / f"ledger-{size}.db"
    url = f"sqlite:///{path}"
    await (await Ledger.open(url)).close()  # the schema, as the bot creates it
    started = time.perf_counter()
    history = await load_sqlite(path, size)
    return Database("SQLite (aiosqlite, WAL)", url, None, history, time.perf_counter() - started)


async def postgres_database(url: str, schema: str, size: int) -> Database:
    args = {"server_settings": {"search_path": schema}}
    await (await Ledger.open(url, connect_args=args)).close()
    started = time.perf_counter()
    history = await load_postgres(url, schema, size)
    return Database("PostgreSQL (asyncpg)", url, args, history, time.perf_counter() - started)


async def run_rounds(databases: list[Database], attempts: int, rounds: int) -> list[Sample]:
    """Rounds interleave the history sizes, so a change in the machine's load hits every size alike."""
    samples = []
    for round_ in range(rounds):
        for database in databases:
            samples.extend(await measure(database, attempts, round_))
    return samples


async def bench_sqlite(sizes: list[int], attempts: int, rounds: int) -> list[Sample]:
    with tempfile.TemporaryDirectory() as tmp:
        databases = [await sqlite_database(Path(tmp), size) for size in sizes]
        return await run_rounds(databases, attempts, rounds)


async def bench_postgres(url: str, sizes: list[int], attempts: int, rounds: int) -> list[Sample]:
    schemas = [f"ledger_bench_{uuid.uuid4().hex[:12]}" for _ in sizes]
    admin = create_async_engine(normalize_database_url(url))
    try:
        async with admin.begin() as conn:
            for schema in schemas:
                await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            databases = [
                await postgres_database(url, schema, size) for schema, size in zip(schemas, sizes, strict=True)
            ]
            return await run_rounds(databases, attempts, rounds)
        finally:
            async with admin.begin() as conn:
                for schema in schemas:
                    await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()


def print_table(samples: list[Sample]) -> None:
    groups: dict[tuple[str, int, str], list[Sample]] = defaultdict(list)
    for sample in samples:
        groups[(sample.database.engine, sample.database.history.size, sample.shape)].append(sample)
    median = {key: statistics.median(s.rate for s in group) for key, group in groups.items()}
    print("| engine | history (settled jobs) | limits | attempts | accepted | refused | reservations/s | vs N = 0 |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
    for (engine, size, shape), group in groups.items():
        base = median.get((engine, 0, shape))
        rates = sorted(s.rate for s in group)
        spread = f" ({rates[0]:,.0f}–{rates[-1]:,.0f})" if len(rates) > 1 else ""
        vs = f"{median[(engine, size, shape)] / base:.0%}" if base else ""
        first = group[0]
        cells = [engine, f"{size:,}", shape, first.attempts, first.accepted, first.refused,
                 f"{median[(engine, size, shape)]:,.0f}{spread}", vs]  # fmt: skip
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    print()
    seen = set()
    for sample in samples:
        database = sample.database
        if (database.engine, database.history.size) not in seen:
            seen.add((database.engine, database.history.size))
            print(f"seeding {database.history.size:,} jobs on {database.engine}: {database.seed_seconds:.1f} s")


async def main(sizes: list[int], attempts: int, rounds: int) -> None:
    load = os.getloadavg()
    samples: list[Sample] = []
    pg_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    samples.extend(await bench_sqlite(sizes, attempts, rounds))
    if pg_url:
        samples.extend(await bench_postgres(pg_url, sizes, attempts, rounds))
    print(f"Ledger reservations, {RESERVERS} concurrent reservers, {SERVERS:,} servers x {MEMBERS} members; ")
    print(f"median of {rounds} rounds (lowest–highest), the history sizes interleaved in each round\n")
    print_table(samples)
    if not pg_url:
        print("\nPostgreSQL skipped: set BENCH_DATABASE_URL or TEST_DATABASE_URL.")
    after = os.getloadavg()
    print(f"\noverspend: none. load average (1 min) {load[0]:.2f} at the start, {after[0]:.2f} at the end")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, nargs="+", default=[0], help="settled jobs already this month")
    parser.add_argument("--attempts", type=int, default=3_000, help="reservations tried per shape and round")
    parser.add_argument("--rounds", type=int, default=3, help="measurements of each size, interleaved")
    args = parser.parse_args()
    asyncio.run(main(args.history, args.attempts, args.rounds))
    sys.exit(0)
