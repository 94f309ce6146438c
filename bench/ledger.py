"""Ledger reservation throughput under contention: `python -m bench.ledger [--accepted N]`.

50 tasks hammer a limit that lets exactly N reservations through (plus 20 % that must be refused),
on SQLite and on PostgreSQL (BENCH_DATABASE_URL or TEST_DATABASE_URL; skipped when unset), in two
shapes: one guild's own limit, and a bot-wide budget shared by 5 guilds (every reservation then also
takes the bot-wide lock and sums every guild's jobs). Fails loudly on any overspend. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.ledger import COST_PER_JOB, Ledger, LedgerDefaults, LimitExceeded, normalize_database_url

TASKS = 50
GUILD = 1_100_000_000_000_000_001
BOT_GUILDS = 5


@dataclass
class Result:
    engine: str
    shape: str
    attempts: int
    accepted: int
    refused: int
    seconds: float
    overspend: str


async def hammer(
    name: str, url: str, accepted: int, connect_args: dict[str, Any] | None = None, *, bot_wide: bool = False
) -> Result:
    budget = accepted * COST_PER_JOB
    # Bot-wide shape: each guild could take everything; only the bot budget stops them.
    defaults = LedgerDefaults(credit_limit=budget, period="none", bot_budget=budget) if bot_wide else None
    guilds = BOT_GUILDS if bot_wide else 1
    ledger = await Ledger.open(url, defaults, connect_args=connect_args)
    try:
        if not bot_wide:
            await ledger.set_limit(GUILD, budget, "none", bypass_ceiling=True)
        attempts = accepted + accepted // 5
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(attempts):
            queue.put_nowait(i)
        outcome = {"ok": 0, "refused": 0}

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                try:
                    await ledger.reserve(
                        interaction_id=1_000_000 + i, guild_id=GUILD + i % guilds, channel_id=1, user_id=i % 97
                    )
                    outcome["ok"] += 1
                except LimitExceeded:
                    outcome["refused"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(TASKS)))
        seconds = time.perf_counter() - started

        total = (await ledger.bot_usage()).total if bot_wide else (await ledger.usage(GUILD)).total
        stored = sum([len(await ledger.export_rows(GUILD + g)) for g in range(guilds)])
        if outcome["ok"] != accepted or total != budget or stored != accepted:
            raise SystemExit(
                f"OVERSPEND on {name}: accepted {outcome['ok']} (expected {accepted}), "
                f"{total}/{budget} credits, {stored} rows"
            )
        shape = f"bot budget, {guilds} guilds" if bot_wide else "one guild"
        return Result(name, shape, attempts, outcome["ok"], outcome["refused"], seconds, "none")
    finally:
        await ledger.close()


async def bench_postgres(url: str, accepted: int) -> list[Result]:
    schema = f"ledger_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(normalize_database_url(url))
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            args = {"server_settings": {"search_path": schema}}
            return [
                await hammer("PostgreSQL (asyncpg)", url, accepted, args),
                await hammer("PostgreSQL (asyncpg)", url, accepted, args, bot_wide=True),
            ]
        finally:
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()


async def main(accepted: int) -> None:
    rows: list[Result] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(await hammer("SQLite (aiosqlite, WAL)", f"sqlite:///{Path(tmp) / 'one.db'}", accepted))
        bot_db = f"sqlite:///{Path(tmp) / 'bot.db'}"
        rows.append(await hammer("SQLite (aiosqlite, WAL)", bot_db, accepted, bot_wide=True))
    pg_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if pg_url:
        rows.extend(await bench_postgres(pg_url, accepted))
    else:
        notes.append("PostgreSQL skipped: set BENCH_DATABASE_URL or TEST_DATABASE_URL.")

    print(f"Ledger reservations, {TASKS} concurrent tasks, limit = {accepted} jobs\n")
    print("| engine | limit | attempts | accepted | refused | seconds | reservations/s | overspend |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        rate = r.attempts / r.seconds
        cells = [r.engine, r.shape, r.attempts, r.accepted, r.refused, f"{r.seconds:.2f}", f"{rate:,.0f}", r.overspend]
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    for note in notes:
        print(f"\n{note}")
    print("\noverspend: none")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accepted", type=int, default=1000, help="reservations the limit lets through")
    args = parser.parse_args()
    asyncio.run(main(args.accepted))
    sys.exit(0)
