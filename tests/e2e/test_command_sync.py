"""Commands are pushed to Discord only when they changed: syncing is rate-limited and slow to spread."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import BotWorld, bot_world
from tests.fakes.discord_api import RecordedRequest
from tests.fakes.magic_hour import FakeMagicHour


def command_puts(world: BotWorld) -> list[RecordedRequest]:
    return [r for r in world.discord.requests if r.method == "PUT" and r.path.endswith("/commands")]


async def test_first_start_syncs_and_an_unchanged_restart_does_not(tmp_path: Path, mh: FakeMagicHour) -> None:
    async with bot_world(tmp_path, mh) as first:
        puts = command_puts(first)
        assert len(puts) == 1
        assert puts[0].path == f"/applications/{first.discord.application_id}/commands"
        names = sorted(c["name"] for c in puts[0].json)
        assert names == ["Remove avatar background", "Remove background", "credits", "remove-background"]
        application_id = first.discord.application_id
    async with bot_world(tmp_path, mh, harness={"application_id": application_id}) as second:
        assert command_puts(second) == []
        assert second.bot.synced is False


async def test_dev_guild_gets_the_commands_instantly_and_a_new_target_resyncs(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    async with bot_world(tmp_path, mh) as first:
        assert len(command_puts(first)) == 1
        application_id = first.discord.application_id
    async with bot_world(tmp_path, mh, DEV_GUILD_ID="4242", harness={"application_id": application_id}) as second:
        puts = command_puts(second)
        assert len(puts) == 1
        assert puts[0].path == f"/applications/{application_id}/guilds/4242/commands"
        assert {c["name"] for c in puts[0].json} >= {"remove-background", "credits"}
