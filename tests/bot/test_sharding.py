"""Several processes share one database; each resumes only the jobs of the servers on its own shards."""

from __future__ import annotations

from pathlib import Path

from discord.ext import commands

from bot.adapter.bot import BackgroundBot, ShardedBackgroundBot, create_bot
from bot.resources import open_resources
from bot.settings import parse_settings

REQUIRED = {"DISCORD_TOKEN": "abc.def.ghi", "MAGIC_HOUR_API_KEY": "mhk_live_secret"}


def guild_on_shard(shard: int, count: int) -> int:
    """A snowflake whose shard is `shard`: Discord's formula is (guild_id >> 22) % shard_count."""
    return ((1_000_000 * count + shard) << 22) | 12345


async def test_plain_bot_without_sharding_settings(tmp_path: Path) -> None:
    settings = parse_settings({**REQUIRED, "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"})
    async with open_resources(settings) as resources:
        bot = create_bot(settings, resources)
        assert type(bot) is BackgroundBot
        assert bot.owns_guild(guild_on_shard(3, 4))


async def test_sharded_bot_runs_only_its_shards(tmp_path: Path) -> None:
    settings = parse_settings(
        {**REQUIRED, "SHARD_COUNT": "4", "SHARD_IDS": "1,3", "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"}
    )
    async with open_resources(settings) as resources:
        bot = create_bot(settings, resources)
        assert isinstance(bot, ShardedBackgroundBot)
        assert isinstance(bot, commands.AutoShardedBot)
        assert bot.shard_count == 4
        assert bot.shard_ids == [1, 3]
        assert [bot.owns_guild(guild_on_shard(s, 4)) for s in range(4)] == [False, True, False, True]
