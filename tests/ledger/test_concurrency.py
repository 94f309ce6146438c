"""Two requests must never both pass when only one fits: across tasks, engines and OS processes."""

import asyncio
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.ledger import JobStatus, Ledger, LedgerDefaults, LimitExceeded

from .conftest import NOW, Backend

GUILD = 1_100_000_000_000_000_001
REPO_ROOT = Path(__file__).resolve().parents[2]


async def test_200_concurrent_reserves_over_several_engines_pass_exactly_20(backend: Backend) -> None:
    ledgers = [await backend.open() for _ in range(4)]  # separate engines and connection pools
    await ledgers[0].set_limit(GUILD, 100, "month")

    async def attempt(i: int) -> bool:
        try:
            await ledgers[i % len(ledgers)].reserve(
                interaction_id=10_000 + i, guild_id=GUILD, channel_id=1, user_id=1_000 + i % 7, now=NOW
            )
        except LimitExceeded:
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(200)))
    assert results.count(True) == 20
    usage = await ledgers[1].usage(GUILD, now=NOW)
    assert (usage.reserved, usage.used, usage.remaining) == (100, 0, 0)
    exported = await ledgers[2].export_rows(GUILD, now=NOW)
    assert len(exported) == 20 and all(job.status is JobStatus.RESERVED for job in exported)


async def test_member_limit_holds_under_concurrency(backend: Backend) -> None:
    ledgers = [await backend.open() for _ in range(3)]
    await ledgers[0].set_member_limit(GUILD, 15)

    async def attempt(i: int) -> bool:
        try:
            await ledgers[i % 3].reserve(interaction_id=20_000 + i, guild_id=GUILD, channel_id=1, user_id=9, now=NOW)
        except LimitExceeded as refused:
            assert refused.scope == "member"
            return False
        return True

    assert (await asyncio.gather(*(attempt(i) for i in range(30)))).count(True) == 3


async def test_bot_budget_holds_across_servers_and_engines(backend: Backend) -> None:
    """200 requests over 5 servers (each allowing more than the bot) against a bot-wide 100: exactly 20."""
    defaults = LedgerDefaults(credit_limit=100, bot_budget=100, bot_period="month")
    ledgers = [await backend.open(defaults) for _ in range(4)]

    async def attempt(i: int) -> bool:
        try:
            await ledgers[i % 4].reserve(
                interaction_id=30_000 + i, guild_id=GUILD + i % 5, channel_id=1, user_id=1_000 + i, now=NOW
            )
        except LimitExceeded as refused:
            assert refused.scope == "bot"
            return False
        return True

    results = await asyncio.gather(*(attempt(i) for i in range(200)))
    assert results.count(True) == 20
    bot = await ledgers[0].bot_usage(now=NOW)
    assert (bot.total, bot.budget) == (100, 100)
    assert len({job.guild_id for g in range(5) for job in await ledgers[1].export_rows(GUILD + g, now=NOW)}) > 1


async def test_two_processes_share_one_bot_budget(backend: Backend) -> None:
    ledger = await backend.open(LedgerDefaults(bot_budget=100, bot_period="month"))
    reports = await _run_workers(backend, processes=2, per_process=100, guilds=5, bot_budget=100)
    assert sum(r["ok"] for r in reports) == 20
    assert sum(r["refused"] for r in reports) == 180
    assert (await ledger.bot_usage(now=datetime.now(UTC))).total == 100  # the workers use the real clock


async def _run_workers(
    backend: Backend, processes: int, per_process: int, guilds: int = 1, bot_budget: int | None = None
) -> list[dict[str, int]]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    workers = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.ledger.reserve_worker",
            backend.url,
            backend.schema or "",
            str(100_000 * (p + 1)),
            str(per_process),
            str(GUILD),
            str(guilds),
            "" if bot_budget is None else str(bot_budget),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO_ROOT,
            env=env,
        )
        for p in range(processes)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None
            line = await asyncio.wait_for(worker.stdout.readline(), 60)
            assert line.strip() == b"ready", (line, await worker.stderr.read() if worker.stderr else b"")
        for worker in workers:  # release them together so their reservations overlap
            assert worker.stdin is not None
            worker.stdin.write(b"go\n")
            await worker.stdin.drain()
        reports = []
        for worker in workers:
            stdout, stderr = await asyncio.wait_for(worker.communicate(), 120)
            assert worker.returncode == 0, stderr.decode()
            reports.append(json.loads(stdout.decode().strip().splitlines()[-1]))
        return reports
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()


async def test_two_processes_share_one_budget(backend: Backend) -> None:
    ledger: Ledger = await backend.open()  # creates the schema and sets the limit before the race
    await ledger.set_limit(GUILD, 100, "none")

    reports = await _run_workers(backend, processes=2, per_process=100)

    assert sum(r["ok"] for r in reports) == 20
    assert sum(r["refused"] for r in reports) == 180
    usage = await ledger.usage(GUILD)
    assert usage.total == 100
    assert len(await ledger.export_rows(GUILD)) == 20
