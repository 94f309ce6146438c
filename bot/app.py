"""The bot itself: opens what it needs once, loads the cogs, syncs commands only when they changed.

`setup_hook` runs after the token is accepted and before the gateway connects, so everything a
command needs (database, HTTP session, Magic Hour client, job runner) exists before the first
interaction, and jobs an earlier process left behind are resumed straight away.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

from bot.delivery import Reply
from bot.jobs import JobEvents, JobResult, JobRunner
from bot.ledger import JobRecord, Ledger, LedgerDefaults
from bot.magic_hour import AsyncClient, RetryPolicy
from bot.settings import Settings

log = logging.getLogger("bot")

EXTENSIONS = ("cogs.remove_background", "cogs.credits")
COMMAND_HASH_KEY = "command_tree_hash"


def needed_intents() -> discord.Intents:
    # Slash commands need no intents; `guilds` keeps server names and channels cached. Nothing privileged.
    return discord.Intents(guilds=True)


class BotTree(app_commands.CommandTree):
    """Turns every app-command error into a message for the member, in one place."""

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.MissingPermissions):
            needed = ", ".join(
                p.replace("_", " ").replace("guild", "server").title() for p in error.missing_permissions
            )
            text = f"🔒 You need the **{needed}** permission to use this command."
        elif isinstance(error, app_commands.NoPrivateMessage):
            text = "This command only works in a server."
        elif isinstance(error, app_commands.CheckFailure):
            text = "🔒 You can't use this command here."
        elif isinstance(error, app_commands.TransformerError):
            text = f"❌ {error}"
        else:
            reference = secrets.token_hex(4).upper()
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error(
                "unexpected error ref=%s command=%s guild=%s user=%s interaction=%s",
                reference,
                command,
                interaction.guild_id,
                interaction.user.id,
                interaction.id,
                exc_info=error.original if isinstance(error, app_commands.CommandInvokeError) else error,
            )
            text = f"😵 Sorry, something went wrong on our side. Error reference: `{reference}`."
        try:
            if not interaction.response.is_done():
                await interaction.response.send_message(text, ephemeral=True)
            elif interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
                await interaction.edit_original_response(content=text, attachments=[], view=None)  # no "thinking…" left
            else:
                await interaction.followup.send(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not send the error message for interaction=%s", interaction.id)


class RecoveredEvents(JobEvents):
    """Delivers a job that an earlier process started, through whatever is still open."""

    def __init__(self, bot: BackgroundBot, record: JobRecord) -> None:
        self.reply = Reply.for_record(bot, record)

    async def deliver(self, result: JobResult) -> None:
        await self.reply.deliver(result, "image-no-background.png")

    async def failed(self, error: BaseException) -> None:
        await self.reply.report_failure(error)


class BackgroundBot(commands.Bot):
    ledger: Ledger
    magic_hour: AsyncClient
    runner: JobRunner
    http_session: aiohttp.ClientSession

    def __init__(
        self,
        settings: Settings,
        *,
        force_sync: bool = False,
        client_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.settings = settings
        self.force_sync = force_sync
        self.client_options = client_options or {}  # e.g. a faster PollPolicy against a local fake
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

    async def setup_hook(self) -> None:
        settings = self.settings
        self.ledger = await Ledger.open(
            settings.database_url,
            defaults=LedgerDefaults(
                credit_limit=settings.default_guild_credit_limit,
                period=settings.default_guild_credit_period,
                max_credit_limit=settings.max_guild_credit_limit,
            ),
        )
        self.http_session = aiohttp.ClientSession()
        self.magic_hour = AsyncClient(
            token=settings.magic_hour_api_key,
            base_url=settings.magic_hour_base_url,
            session=self.http_session,
            connect_timeout=settings.magic_hour_connect_timeout,
            request_timeout=settings.magic_hour_request_timeout,
            retry=RetryPolicy(max_retries=settings.magic_hour_max_retries),
            max_download_bytes=settings.max_output_bytes,
            **self.client_options,
        )
        self.runner = JobRunner(
            self.magic_hour,
            self.ledger,
            max_concurrent=settings.max_concurrent_jobs,
            max_per_member=settings.max_jobs_per_member,
            deadline=settings.job_deadline_seconds,
            max_output_bytes=settings.max_output_bytes,
            on_settled=self._on_settled,
        )
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.resume_jobs()
        self.synced = await self.sync_commands(force=self.force_sync)

    async def _on_settled(self, guild_id: int) -> None:
        credits_cog = self.get_cog("Credits")
        if credits_cog is not None:
            await credits_cog.check_alerts(guild_id)

    def owns_guild(self, guild_id: int) -> bool:
        """With several processes each runs some shards; a guild's jobs belong to the process of its shard."""
        settings = self.settings
        if settings.shard_count is None or settings.shard_ids is None:
            return True
        return (guild_id >> 22) % settings.shard_count in settings.shard_ids

    async def resume_jobs(self) -> int:
        records = [r for r in await self.ledger.recover_interrupted() if self.owns_guild(r.guild_id)]
        for record in records:
            self.runner.resume(record, RecoveredEvents(self, record))
        if records:
            log.info("resuming %d job(s) left by an earlier run", len(records))
        return len(records)

    def command_tree_digest(self) -> str:
        tree: app_commands.CommandTree = self.tree
        guild = discord.Object(self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        commands_payload = [command.to_dict(tree) for command in tree.get_commands()]
        blob = json.dumps({"guild": guild.id if guild else None, "commands": commands_payload}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync with Discord only when the commands changed: syncing is rate-limited and slow to spread."""
        digest = self.command_tree_digest()
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
        """Finish running jobs for the grace period, then release everything; safe to call twice."""
        if self._closing_down:
            await super().close()
            return
        self._closing_down = True
        runner = getattr(self, "runner", None)
        if runner is not None:
            await runner.drain(self.settings.shutdown_grace_seconds)
        await super().close()
        if getattr(self, "magic_hour", None) is not None:
            await self.magic_hour.close()
        if getattr(self, "http_session", None) is not None:
            await self.http_session.close()
        if getattr(self, "ledger", None) is not None:
            await self.ledger.close()


class ShardedBackgroundBot(BackgroundBot, commands.AutoShardedBot):
    """For large bots: SHARD_COUNT/SHARD_IDS split the gateway across processes sharing one database."""

    def __init__(self, settings: Settings, *, force_sync: bool = False) -> None:
        super().__init__(
            settings,
            force_sync=force_sync,
            shard_count=settings.shard_count,
            shard_ids=list(settings.shard_ids) if settings.shard_ids else None,
        )


def create_bot(settings: Settings, *, force_sync: bool = False) -> BackgroundBot | ShardedBackgroundBot:
    if settings.shard_count is not None:
        return ShardedBackgroundBot(settings, force_sync=force_sync)
    return BackgroundBot(settings, force_sync=force_sync)
