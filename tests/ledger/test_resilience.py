"""Writes after Magic Hour has charged survive transient database faults, and Magic Hour's figures
are made sane before they are stored (issue 8)."""

import asyncio
import logging
import sqlite3
import uuid
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.exc import OperationalError

from bot.ledger import JobStatus, Ledger, LedgerDefaults
from bot.ledger.engine import is_transient
from bot.ledger.sanitize import MAX_PLAUSIBLE_CHARGE

from .conftest import NOW, Backend
from .steps import send
from .test_ledger import GUILD, fill, reserve


@pytest.mark.parametrize("charged", [-5, MAX_PLAUSIBLE_CHARGE + 1, 2**31, 10**15])
async def test_implausible_charges_record_the_reservation_instead_of_raising(ledger: Ledger, charged: int) -> None:
    job = await reserve(ledger)
    await send(ledger, job.interaction_id)
    submitted = await ledger.mark_submitted(job.interaction_id, project_id=f"p{charged}", credits_charged=charged)
    assert submitted is not None and submitted.credits_charged == 5
    settled = await ledger.settle(job.interaction_id, status=JobStatus.COMPLETE, credits_charged=charged)
    assert settled is not None and (settled.status, settled.credits_charged) == (JobStatus.COMPLETE, 5)
    assert (await ledger.usage(GUILD, now=NOW)).used == 5


async def test_plausible_charges_are_kept_as_given(ledger: Ledger) -> None:
    job = await reserve(ledger)
    await send(ledger, job.interaction_id)
    await ledger.mark_submitted(job.interaction_id, project_id="p", credits_charged=MAX_PLAUSIBLE_CHARGE)
    settled = await ledger.settle(job.interaction_id, status=JobStatus.FAILED, credits_charged=0)
    assert settled is not None and settled.credits_charged == 0


async def test_project_ids_up_to_255_characters_are_stored(ledger: Ledger) -> None:
    job = await reserve(ledger)
    await send(ledger, job.interaction_id)
    long_id = "cm" + "x" * 253  # longer than v1's 64, which PostgreSQL enforced
    stored = await ledger.mark_submitted(job.interaction_id, project_id=long_id)
    assert stored is not None and stored.project_id == long_id
    too_long = await reserve(ledger)
    await send(ledger, too_long.interaction_id)
    kept = await ledger.mark_submitted(too_long.interaction_id, project_id="y" * 256, credits_charged=5)
    # Not pollable without its id, yet Magic Hour may have charged: held, still counting its credits.
    assert kept is not None and (kept.status, kept.project_id, kept.credits_reserved) == (JobStatus.HELD, None, 5)
    assert "too long" in (kept.error or "")
    assert (await ledger.usage(GUILD, now=NOW)).held == 5


def test_transient_errors_are_told_from_final_ones() -> None:
    from sqlalchemy.exc import DBAPIError, IntegrityError

    assert is_transient(OperationalError("x", {}, sqlite3.OperationalError("database is locked")))
    assert is_transient(ConnectionResetError())
    lost = DBAPIError("x", {}, Exception("gone"), connection_invalidated=True)
    assert is_transient(lost)
    serialization = Exception("could not serialize access due to concurrent update")
    serialization.sqlstate = "40001"  # what asyncpg's errors carry
    assert is_transient(DBAPIError("x", {}, serialization))
    terminated = Exception("wrapped")
    terminated.__cause__ = asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle")
    assert is_transient(DBAPIError("x", {}, terminated))
    unique = Exception("duplicate key")
    unique.sqlstate = "23505"
    assert not is_transient(DBAPIError("x", {}, unique))
    assert not is_transient(IntegrityError("x", {}, sqlite3.IntegrityError("UNIQUE constraint failed")))
    assert not is_transient(OperationalError("x", {}, sqlite3.OperationalError("no such table: jobs")))
    assert not is_transient(ValueError("bad"))


async def test_a_write_lock_held_past_the_retry_window_fails_after_a_bounded_time(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    ledger = await Ledger.open(f"sqlite:///{path}", connect_args={"timeout": 0.05}, retry_seconds=0.5)
    try:
        job = await ledger.reserve(interaction_id=1, guild_id=GUILD, channel_id=1, user_id=1)
        await send(ledger, job.interaction_id)
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(OperationalError, match="locked"):
                await ledger.mark_submitted(job.interaction_id, project_id="p")
            # The lock goes away within the window: the same write now gets through.
            release = asyncio.get_running_loop().call_later(0.2, blocker.rollback)
            ledger.retry_seconds = 10.0
            stored = await ledger.mark_submitted(job.interaction_id, project_id="p")
            release.cancel()
        finally:
            blocker.close()
        assert stored is not None and stored.status is JobStatus.SUBMITTED
    finally:
        await ledger.close()


@pytest.mark.postgres
async def test_postgres_connections_killed_mid_run_are_retried(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    if backend.name != "postgresql":
        pytest.skip("terminating server connections is a PostgreSQL test")
    app_name = f"ledger-kill-{uuid.uuid4().hex[:8]}"
    connect_args = {"server_settings": {**backend.connect_args["server_settings"], "application_name": app_name}}
    ledger = await Ledger.open(
        backend.url, LedgerDefaults(credit_limit=1000), connect_args=connect_args, clock=lambda: NOW
    )
    killer = await asyncpg.connect(backend.url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        jobs = await fill(ledger, 20)
        done = asyncio.Event()
        kills = 0

        async def kill_loop() -> None:
            """Several rounds of killing every ledger connection while the writes are in flight."""
            nonlocal kills
            rounds = 0
            while not done.is_set() and rounds < 8:
                killed = await killer.fetch(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = $1 AND pid <> pg_backend_pid()",
                    app_name,
                )
                kills += len(killed)
                rounds += bool(killed)
                await asyncio.sleep(0.02)

        async def lifecycle(i: int, interaction_id: int) -> tuple[JobStatus, int | None]:
            assert await ledger.mark_sending(interaction_id)
            submitted = await ledger.mark_submitted(interaction_id, project_id=f"kill-{i}", credits_charged=5)
            assert submitted is not None and submitted.status is JobStatus.SUBMITTED
            settled = await ledger.settle(interaction_id, status=JobStatus.COMPLETE, credits_charged=5)
            assert settled is not None
            assert await ledger.claim_delivery(interaction_id, "me")
            delivered = await ledger.mark_delivered(interaction_id)
            assert delivered is not None and delivered.delivered
            return settled.status, settled.credits_charged

        caplog.set_level(logging.WARNING, logger="bot.ledger")
        killing = asyncio.create_task(kill_loop())
        try:
            results = await asyncio.gather(*(lifecycle(i, job.interaction_id) for i, job in enumerate(jobs)))
        finally:
            done.set()
            await killing
        assert results == [(JobStatus.COMPLETE, 5)] * 20
        assert kills > 0
        assert any("transient fault" in r.getMessage() for r in caplog.records), "no write was ever interrupted"
        usage = await ledger.usage(GUILD, now=NOW)
        assert (usage.used, usage.reserved) == (100, 0)
        assert len({j.project_id for j in await ledger.export_rows(GUILD, now=NOW)}) == 20
        assert (await reserve(ledger)).status is JobStatus.RESERVED  # a new reservation works afterwards
    finally:
        await killer.close()
        await ledger.close()
