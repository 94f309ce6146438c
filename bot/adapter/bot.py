"""The Discord client: loads the cogs and syncs commands; everything it uses is opened before it.

The ledger, the HTTP session, the Magic Hour client and the job runner come from
`bot.resources.open_resources` (see `bot/__main__.py`), the way discord.py's `advanced_startup.py`
example passes its pools in, so `setup_hook` only loads extensions and syncs, and `close()` has
nothing that might not exist.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.adapter.events import RecoveredRequestEvents
from bot.adapter.expressions import ExpressionMaker
from bot.adapter.notifier import ChannelAlertNotifier, OwnerNotifier
from bot.adapter.translator import CatalogTranslator
from bot.adapter.tree import BotTree
from bot.adapter.views import RESULT_BUTTONS
from bot.resources import Resources
from bot.settings import Settings

log = logging.getLogger("bot")

EXTENSIONS = ("cogs.remove_background", "cogs.credits")
COMMAND_HASH_KEY = "command_tree_hash"


def needed_intents() -> discord.Intents:
    # Slash commands need no intents; `guilds` keeps server names and channels cached. Nothing privileged.
    return discord.Intents(guilds=True)


class BackgroundBot(commands.Bot):
    def __init__(self, settings: Settings, resources: Resources, *, force_sync: bool = False, **options: Any) -> None:
        self.settings = settings
        self.resources = resources
        self.ledger = resources.ledger
        self.magic_hour = resources.magic_hour
        self.runner = resources.runner
        # The Add as emoji / Add as sticker buttons share the runner's image worker (and its bound).
        self.expressions = ExpressionMaker(self.runner.images, max_bytes=settings.max_output_bytes)
        self.force_sync = force_sync
        self.synced: bool | None = None
        self._closing_down = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=needed_intents(),
            tree_cls=BotTree,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            **options,
        )
        self.tree.allowed_guild_ids = settings.allowed_guild_ids
        notifier = ChannelAlertNotifier(self)

        owner = OwnerNotifier(self, settings.owner_alert_channel_id)

        async def check_alerts(guild_id: int | None) -> None:
            await resources.alerts.check(guild_id, notifier)

        async def check_balance(_guild_id: int | None) -> None:
            await resources.balance.after_job(owner)

        self.runner.on_settled(check_alerts)
        self.runner.on_settled(check_balance)
        self.runner.events_for_request = lambda request: RecoveredRequestEvents(self, request)

    async def setup_hook(self) -> None:
        await self.tree.set_translator(CatalogTranslator())
        # Registered by custom id, not per message: the buttons on every result, however old, work after a restart.
        self.add_dynamic_items(*RESULT_BUTTONS)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.synced = await self.sync_commands(force=self.force_sync)

    def gateway_connected(self) -> bool:
        """For /healthz: READY received and the connection not closed."""
        return self.is_ready() and not self.is_closed()

    def owns_guild(self, guild_id: int) -> bool:
        """With several processes each runs some shards; a guild's jobs belong to the process of its shard."""
        settings = self.settings
        if settings.shard_count is None or settings.shard_ids is None:
            return True
        return (guild_id >> 22) % settings.shard_count in settings.shard_ids

    async def resume_jobs(self) -> int:
        """Pick up what an earlier process left; called once, after login and before the gateway connects."""
        records = await self.ledger.recover_interrupted(owns_guild=self.owns_guild)
        requests = self.runner.resume_requests(records, lambda request: RecoveredRequestEvents(self, request))
        if records:
            log.info("resuming %d job(s) of %d request(s) left by an earlier run", len(records), requests)
        return len(records)

    async def command_tree_digest(self) -> str:
        """A hash of exactly what a sync sends, translations included: a changed catalog means a new sync."""
        tree: app_commands.CommandTree = self.tree
        guild = discord.Object(self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        translator = tree.translator
        commands_payload = [
            await command.get_translated_payload(tree, translator) if translator else command.to_dict(tree)
            for command in tree.get_commands()
        ]
        blob = json.dumps({"guild": guild.id if guild else None, "commands": commands_payload}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync with Discord only when the commands changed: syncing is rate-limited and slow to spread."""
        digest = await self.command_tree_digest()
        if not force and await self.ledger.get_meta(COMMAND_HASH_KEY) == digest:
            log.info("application commands unchanged; not syncing")
            return False
        guild = discord.Object(self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        synced = await self.tree.sync(guild=guild)
        await self.ledger.set_meta(COMMAND_HASH_KEY, digest)
        log.info("synced %d application command(s) %s", len(synced), f"to guild {guild.id}" if guild else "globally")
        return True

    async def close(self) -> None:
        """Let running jobs finish for the grace period while Discord is still reachable, then disconnect.

        The resources themselves are closed by whoever opened them (`open_resources`).
        """
        if not self._closing_down:
            self._closing_down = True
            await self.runner.drain(self.settings.shutdown_grace_seconds)
        await super().close()


class ShardedBackgroundBot(BackgroundBot, commands.AutoShardedBot):
    """For large bots: SHARD_COUNT/SHARD_IDS split the gateway across processes sharing one database."""

    def __init__(self, settings: Settings, resources: Resources, *, force_sync: bool = False) -> None:
        super().__init__(
            settings,
            resources,
            force_sync=force_sync,
            shard_count=settings.shard_count,
            shard_ids=list(settings.shard_ids) if settings.shard_ids else None,
        )


def create_bot(
    settings: Settings, resources: Resources, *, force_sync: bool = False
) -> BackgroundBot | ShardedBackgroundBot:
    if settings.shard_count is not None:
        return ShardedBackgroundBot(settings, resources, force_sync=force_sync)
    return BackgroundBot(settings, resources, force_sync=force_sync)
