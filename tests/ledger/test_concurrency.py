"""Two requests must never both pass when only one fits: across tasks, engines and OS processes."""

import asyncio
import json
import logging
import os
import sys
from datetime import UTC, datetime
from itertools import count
from pathlib import Path
from typing import Any

import pytest

from bot.ledger import ImageSpec, JobStatus, Ledger, LedgerDefaults, LimitExceeded, Origin

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


# ---- several images, several limits, moves racing moves (v6: balances beside the journal) -----------------

GUILDS = (GUILD, GUILD + 1, GUILD + 2)
MEMBERS = (1_300_000_000_000_000_001, 1_300_000_000_000_000_002, 1_300_000_000_000_000_003, 4)


async def test_concurrent_requests_of_several_images_never_overspend_any_limit(backend: Backend) -> None:
    """120 requests of 1-3 images from 4 members of 3 servers, over 3 engines, against a server limit,
    a member limit and a bot-wide budget at once."""
    defaults = LedgerDefaults(credit_limit=60, bot_budget=150, bot_period="month")
    ledgers = [await backend.open(defaults) for _ in range(3)]
    for guild in GUILDS:
        await ledgers[0].set_member_limit(guild, 25)
    accepted: list[tuple[int, int, int]] = []

    async def attempt(i: int) -> None:
        guild, user, images = GUILDS[i % 3], MEMBERS[i % 4], 1 + i % 3
        origin = Origin(40_000 + i, guild, 1, user, NOW)
        try:
            await ledgers[i % 3].reserve_request(origin, [ImageSpec(None)] * images, private=False)
        except LimitExceeded:
            return
        accepted.append((guild, user, 5 * images))

    await asyncio.gather(*(attempt(i) for i in range(120)))

    bot = await ledgers[1].bot_usage(now=NOW)
    assert bot.total == sum(cost for _, _, cost in accepted) <= 150
    for guild in GUILDS:
        usage = await ledgers[2].usage(guild, now=NOW)
        assert usage.total == sum(cost for g, _, cost in accepted if g == guild) <= 60
        for user in MEMBERS:
            mine = (await ledgers[0].usage(guild, user, now=NOW)).member_used
            assert mine == sum(cost for g, u, cost in accepted if (g, u) == (guild, user)) <= 25
    assert bot.total > 150 - 15  # saturated: some request of every size was refused only for want of room
    assert await ledgers[0].verify() == []


async def _sent_jobs(ledger: Ledger, requests: int, images: int, first: int) -> list[tuple[int, int]]:
    keys = []
    for r in range(requests):
        origin = Origin(first + r, GUILDS[r % 2], 1, MEMBERS[r % 4], NOW)
        await ledger.reserve_request(origin, [ImageSpec(None)] * images, private=False)
        for position in range(images):
            assert await ledger.mark_sending(first + r, position)
            keys.append((first + r, position))
    return keys


async def test_concurrent_answers_events_and_settles_count_each_charge_once(backend: Backend) -> None:
    """The create's answer, its webhook event and a timeout race for each image; then two processes settle
    each at once, then Magic Hour's refund settles half again, with late releases mixed in."""
    ledgers = [await backend.open(LedgerDefaults(credit_limit=1000)) for _ in range(3)]
    keys = await _sent_jobs(ledgers[0], requests=10, images=3, first=50_000)

    async def answer_event_timeout(n: int, iid: int, position: int) -> Any:
        project = f"cm-{iid}-{position}"
        moves = [
            ledgers[0].mark_submitted(iid, project_id=project, position=position),
            ledgers[1].claim_project(iid, project_id=project, credits_charged=5, position=position),
        ]
        if n % 3 == 0:
            moves.append(ledgers[2].mark_held(iid, error="the create timed out", position=position))
        return await asyncio.gather(*moves)

    raced = await asyncio.gather(*(answer_event_timeout(n, *key) for n, key in enumerate(keys)))
    claims = [claim for _, claim, *_ in raced]
    assert all(claim is not None for claim in claims)  # the event always names the job's own project
    for iid, position in keys:
        job = await ledgers[2].get_job(iid, position)
        assert job is not None and (job.status, job.project_id) == (JobStatus.SUBMITTED, f"cm-{iid}-{position}")
    assert await ledgers[0].verify() == []

    settle = [
        ledger.settle(iid, status=JobStatus.COMPLETE, credits_charged=5, position=position)
        for iid, position in keys
        for ledger in ledgers[:2]
    ]
    late = [ledgers[2].release(iid, error="a late refusal", position=position) for iid, position in keys]
    await asyncio.gather(*settle, *late)
    refunds = [
        ledger.settle(iid, status=JobStatus.COMPLETE, credits_charged=0, position=position)
        for n, (iid, position) in enumerate(keys)
        if n % 2 == 0
        for ledger in ledgers
    ]
    await asyncio.gather(*refunds)

    charged = [(await ledgers[1].get_job(iid, position)).credits_charged for iid, position in keys]  # type: ignore[union-attr]
    assert charged == [0 if n % 2 == 0 else 5 for n in range(len(keys))]
    used = sum([(await ledgers[0].usage(guild, now=NOW)).used for guild in GUILDS[:2]])
    assert used == 5 * (len(keys) // 2)
    assert (await ledgers[0].bot_usage(now=NOW)).total == used
    assert await ledgers[2].verify() == []


async def test_moves_of_many_jobs_beside_single_moves_never_deadlock(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    """Restart recovery and release-held lock many job rows and balance rows at once; single moves and
    reservations take the same rows one job at a time. One lock order for all: no deadlock (PostgreSQL
    would abort one side with 40P01, which the durable moves retry and log; the test sees either)."""
    caplog.set_level(logging.WARNING, logger="bot.ledger")
    ledgers = [await backend.open(LedgerDefaults(credit_limit=10_000, bot_budget=100_000)) for _ in range(3)]
    for round_ in range(3):
        first = 60_000 + 1_000 * round_
        keys = await _sent_jobs(ledgers[0], requests=12, images=3, first=first)
        for n, (iid, position) in enumerate(keys):
            if n % 3 == 0:
                await ledgers[0].mark_held(iid, error="no answer", position=position)
        queued = [Origin(first + 500 + g, GUILDS[g], 1, MEMBERS[0], NOW) for g in range(2)]
        for origin in queued:  # never sent: recovery refunds them
            await ledgers[0].reserve_request(origin, [ImageSpec(None)] * 3, private=False)

        many = [
            ledgers[0].recover_interrupted(),
            ledgers[1].recover_interrupted(),
            *(ledgers[2].release_held(guild, by="an admin") for guild in GUILDS[:2]),
        ]
        single = []
        for n, (iid, position) in enumerate(keys):
            project = f"cm-{iid}-{position}"
            single.append(ledgers[0].claim_project(iid, project_id=project, credits_charged=5, position=position))
            if n % 2:
                single.append(ledgers[1].mark_submitted(iid, project_id=project, position=position))
            single.append(ledgers[2].settle(iid, status=JobStatus.FAILED, credits_charged=0, position=position))
        fresh = [
            ledgers[n % 3].reserve_request(
                Origin(first + 800 + n, GUILDS[n % 2], 1, MEMBERS[n % 4], NOW), [ImageSpec(None)] * 2, private=False
            )
            for n in range(8)
        ]
        # Every task runs to its end (an exception must not leave others running into the next round).
        outcomes = await asyncio.wait_for(asyncio.gather(*many, *single, *fresh, return_exceptions=True), 60)
        assert [repr(o) for o in outcomes if isinstance(o, BaseException)] == []

        assert await ledgers[2].verify() == []
        for origin in queued:  # both recoveries ran: the never-sent images were refunded once
            assert [(await ledgers[0].get_job(origin.interaction_id, p)).status for p in range(3)] == [  # type: ignore[union-attr]
                JobStatus.REFUNDED
            ] * 3
    faults = [r.getMessage() for r in caplog.records if "transient fault" in r.getMessage()]
    assert faults == [], faults


async def test_verify_reads_one_instant_while_jobs_move(backend: Backend) -> None:
    """A running bot moves jobs while the owner verifies: the balances and the journal must be read as of
    the same moment, or a move committed between the two reads shows as a difference that is not there."""
    ledgers = [await backend.open(LedgerDefaults(credit_limit=100_000)) for _ in range(2)]
    stop = asyncio.Event()

    async def bot(worker: int) -> None:
        for n in count():
            if stop.is_set():
                return
            iid = 70_000 + 1_000 * worker + n
            await ledgers[0].reserve(interaction_id=iid, guild_id=GUILDS[n % 3], channel_id=1, user_id=worker, now=NOW)
            await ledgers[0].mark_sending(iid)
            await ledgers[0].mark_submitted(iid, project_id=f"cm-{iid}")
            await ledgers[0].settle(iid, status=JobStatus.COMPLETE, credits_charged=n % 6)

    workers = [asyncio.create_task(bot(w)) for w in range(8)]
    try:
        found = [await ledgers[1].verify() for _ in range(25)]
    finally:
        stop.set()
        await asyncio.gather(*workers)
    assert [lines for lines in found if lines] == []
    assert await ledgers[1].verify() == []
