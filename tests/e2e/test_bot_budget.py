"""BOT_CREDIT_BUDGET: one budget across every server, enforced in the same reservation as the server limits;
a member refused by it hears that the bot's budget is used up and when it resets, never other servers' figures."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import bot_world
from tests.fakes.discord_api import EPHEMERAL
from tests.fakes.interactions import make_attachment, snowflake
from tests.fakes.magic_hour import FakeMagicHour


async def test_the_bot_wide_budget_spans_servers_and_says_no_more(tmp_path: Path, mh: FakeMagicHour) -> None:
    async with bot_world(tmp_path, mh, BOT_CREDIT_BUDGET="10", BOT_CREDIT_PERIOD="day") as world:
        other_guild, other_channel = snowflake(), snowflake()
        world.discord.api.add_channel(other_channel, other_guild)
        first = world.discord.slash_command("remove-background", {"image": make_attachment()})
        second = world.discord.slash_command(
            "remove-background", {"image": make_attachment()}, guild_id=other_guild, channel_id=other_channel
        )
        third = world.discord.slash_command("remove-background", {"image": make_attachment()})
        for payload in (first, second, third):
            await world.discord.run(payload, timeout=10)

        assert mh.creates == 2  # 5 + 5 of a budget of 10, in two servers; the third is refused before Magic Hour
        [refusal] = world.discord.followups(third["token"])
        assert refusal.json["flags"] & EPHEMERAL
        text = refusal.json["content"]
        assert "The bot's credit budget today is used up" in text and "It resets <t:" in text
        assert "10" not in text.split("<t:")[0], "no bot-wide figures (other servers' spend) in a member's message"
        assert (await world.bot.ledger.usage(world.discord.guild_id)).total == 5
