"""Two requests must never both pass when only one fits: across tasks, engines and OS processes."""

import asyncio
import json
import os
import sys
from pathlib import Path

from bot.ledger import JobStatus, Ledger, LimitExceeded

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


async def _run_workers(backend: Backend, processes: int, per_process: int) -> list[dict[str, int]]:
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
