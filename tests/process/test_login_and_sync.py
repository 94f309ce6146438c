"""Logging in from a real process: a rejected token, and `python -m bot sync` versus a normal start."""

from __future__ import annotations

import signal

from tests.process.conftest import DISCORD_TOKEN, Fakes

WRONG_TOKEN = "MTIzNDU2.process-test.revoked-token"
PUT_GLOBAL = r"^/applications/\d+/commands$"


async def test_a_rejected_token_exits_2_with_one_line(fakes: Fakes) -> None:
    bot = await fakes.start_bot("run", DISCORD_TOKEN=WRONG_TOKEN)
    assert await bot.wait(timeout=20) == 2, bot.output
    assert "Traceback" not in bot.output
    errors = [line for line in bot.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "DISCORD_TOKEN was rejected" in errors[0], bot.output
    assert bot.stderr.strip().splitlines()[-1] == errors[0]
    assert WRONG_TOKEN not in bot.output and DISCORD_TOKEN not in bot.output
    assert [r.status for r in fakes.api.find("GET", "^/users/@me$")] == [401]
    assert fakes.gateway.ready_count == 0


async def test_sync_pushes_the_commands_and_a_later_start_does_not(fakes: Fakes) -> None:
    sync = await fakes.start_bot("sync")
    assert await sync.wait(timeout=20) == 0, sync.output
    puts = fakes.api.find("PUT", PUT_GLOBAL)
    assert len(puts) == 1 and puts[0].status == 200
    assert {c["name"] for c in puts[0].json} >= {"remove-background", "credits"}
    assert fakes.gateway.ready_count == 0, "sync needs no gateway connection"

    run = await fakes.start_bot("run")
    await fakes.gateway.wait_ready(timeout=20)
    run.send(signal.SIGTERM)
    assert await run.wait(timeout=20) == 0, run.output
    assert len(fakes.api.find("PUT", r"^/applications/")) == 1, "unchanged commands were synced again"
    assert "application commands unchanged" in run.stderr


async def test_sync_with_a_dev_guild_pushes_to_that_guild_only(fakes: Fakes) -> None:
    guild_id = fakes.harness.guild_id
    sync = await fakes.start_bot("sync", DEV_GUILD_ID=str(guild_id))
    assert await sync.wait(timeout=20) == 0, sync.output
    puts = fakes.api.find("PUT", r"^/applications/")
    assert [r.path for r in puts] == [f"/applications/{fakes.api.application_id}/guilds/{guild_id}/commands"]
    assert {c["name"] for c in fakes.api.guild_commands[guild_id]} >= {"remove-background"}
    assert fakes.api.global_commands == []


async def test_sync_neither_resumes_nor_waits_on_jobs(fakes: Fakes) -> None:
    """A job an earlier run left is the next `run`'s business; `sync` must not poll or deliver it."""
    from datetime import UTC, datetime

    from bot.ledger import Ledger

    async with await Ledger.open(fakes.database_url) as ledger:
        await ledger.reserve(interaction_id=4242, guild_id=fakes.harness.guild_id, channel_id=1, user_id=2)
        await ledger.mark_sending(4242)
        await ledger.mark_submitted(4242, project_id="left-by-an-earlier-run")
    started = datetime.now(UTC)
    sync = await fakes.start_bot("sync")
    assert await sync.wait(timeout=20) == 0, sync.output
    assert fakes.mh.count("GET", "/v1/image-projects/") == 0, "sync polled a job"
    assert "resuming" not in sync.stderr
    assert (await fakes.ledger_job(4242)).status.value == "submitted"
    assert (datetime.now(UTC) - started).total_seconds() < 15
