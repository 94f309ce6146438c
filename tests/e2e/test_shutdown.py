"""Shutting down (what SIGTERM triggers): queued jobs are released, running ones finish within the grace period."""

from __future__ import annotations

from pathlib import Path

from bot.ledger import JobStatus, Ledger
from tests.e2e.conftest import bot_world
from tests.fakes.discord_api import EPHEMERAL
from tests.fakes.interactions import make_attachment, make_member, make_user
from tests.fakes.magic_hour import FakeMagicHour


async def test_close_finishes_running_jobs_and_releases_queued_ones(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.job_duration = 1.0
    async with bot_world(tmp_path, mh, MAX_CONCURRENT_JOBS="1", SHUTDOWN_GRACE_SECONDS="10") as world:
        running = world.discord.slash_command(
            "remove-background", {"image": make_attachment()}, user=make_member(make_user("ann"))
        )
        queued = world.discord.slash_command(
            "remove-background", {"image": make_attachment()}, user=make_member(make_user("ben"))
        )
        running_id = world.discord.dispatch(running)
        await world.discord.wait_for(lambda _: mh.creates == 1, timeout=5)
        queued_id = world.discord.dispatch(queued)
        await world.discord.wait_for(
            lambda _: any("Queued" in e.json["content"] for e in world.discord.original_edits(queued["token"])),
            timeout=5,
        )
        await world.bot.close()  # what the SIGTERM handler calls

        assert mh.creates == 1  # the queued job never reached Magic Hour
        assert any(e.files for e in world.discord.original_edits(running["token"]))
        followups = world.discord.followups(queued["token"])
        assert followups and followups[-1].json["flags"] & EPHEMERAL
        assert "restarting" in followups[-1].json["content"]
        assert "nothing was charged" in followups[-1].json["content"]

    # The bot closed its ledger; reopen the same file to read what was recorded.
    async with await Ledger.open(f"sqlite:///{tmp_path / 'bot.db'}") as reopened:
        assert (await reopened.get_job(running_id)).status is JobStatus.COMPLETE
        assert (await reopened.get_job(queued_id)).status is JobStatus.REFUNDED
