"""Ledger reservation throughput under contention: `python -m bench.ledger [--accepted N]`.

50 tasks hammer one guild whose limit lets exactly N reservations through (plus 20 % that must be
refused), on SQLite and on PostgreSQL (BENCH_DATABASE_URL or TEST_DATABASE_URL; skipped when unset).
Fails loudly on any overspend. Prints a Markdown table.
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

from bot.ledger import COST_PER_JOB, Ledger, LimitExceeded, normalize_database_url

TASKS = 50
GUILD = 1_100_000_000_000_000_001


@dataclass
class Result:
    engine: str
    attempts: int
    accepted: int
    refused: int
    seconds: float
    overspend: str


async def hammer(name: str, url: str, accepted: int, connect_args: dict[str, Any] | None = None) -> Result:
    ledger = await Ledger.open(url, connect_args=connect_args)
    try:
        await ledger.set_limit(GUILD, accepted * COST_PER_JOB, "none", bypass_ceiling=True)
        attempts = accepted + accepted // 5
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(attempts):
            queue.put_nowait(i)
        outcome = {"ok": 0, "refused": 0}

        async def worker() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                try:
                    await ledger.reserve(interaction_id=1_000_000 + i, guild_id=GUILD, channel_id=1, user_id=i % 97)
                    outcome["ok"] += 1
                except LimitExceeded:
                    outcome["refused"] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(TASKS)))
        seconds = time.perf_counter() - started

        usage = await ledger.usage(GUILD)
        stored = len(await ledger.export_rows(GUILD))
        if outcome["ok"] != accepted or usage.total != usage.limit or stored != accepted:
            raise SystemExit(
                f"OVERSPEND on {name}: accepted {outcome['ok']} (expected {accepted}), "
                f"{usage.total}/{usage.limit} credits, {stored} rows"
            )
        return Result(name, attempts, outcome["ok"], outcome["refused"], seconds, "none")
    finally:
        await ledger.close()


async def bench_postgres(url: str, accepted: int) -> Result:
    schema = f"ledger_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(normalize_database_url(url))
    try:
        async with admin.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        try:
            return await hammer("PostgreSQL (asyncpg)", url, accepted, {"server_settings": {"search_path": schema}})
        finally:
            async with admin.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await admin.dispose()


async def main(accepted: int) -> None:
    rows: list[Result] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(await hammer("SQLite (aiosqlite, WAL)", f"sqlite:///{Path(tmp) / 'bench.db'}", accepted))
    pg_url = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("TEST_DATABASE_URL")
    if pg_url:
        rows.append(await bench_postgres(pg_url, accepted))
    else:
        notes.append("PostgreSQL skipped: set BENCH_DATABASE_URL or TEST_DATABASE_URL.")

    print(f"Ledger reservations, {TASKS} concurrent tasks, one guild, limit = {accepted} jobs\n")
    print("| engine | attempts | accepted | refused | seconds | reservations/s | overspend |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in rows:
        rate = r.attempts / r.seconds
        cells = [r.engine, r.attempts, r.accepted, r.refused, f"{r.seconds:.2f}", f"{rate:,.0f}", r.overspend]
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
