"""Where a job's messages go: the command's reply while its token lives, the channel after that.

An interaction token lets the bot edit its reply for 15 minutes. Jobs can outlive that (a slow job, a
restart), so every message goes through `Reply`, which picks the reply or a channel post mentioning
the member, and falls back from one to the other when Discord refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import discord

from bot import replies
from bot.jobs import JobResult, MemberBusy, ShuttingDown
from bot.ledger import JobRecord, LimitExceeded

log = logging.getLogger("bot.adapter.reply")

TOKEN_LIFETIME = timedelta(minutes=15)
TOKEN_MARGIN = timedelta(seconds=30)  # don't start an edit the token may not outlive
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # servers without boosts
REFUSALS = (LimitExceeded, MemberBusy, ShuttingDown)  # said only to the member, never in the channel


class Reply:
    def __init__(
        self,
        bot: discord.Client,
        *,
        channel_id: int,
        user_id: int,
        guild_id: int | None,
        created_at: datetime,
        application_id: int | None = None,
        token: str | None = None,
        interaction: discord.Interaction | None = None,
        filesize_limit: int = DEFAULT_UPLOAD_LIMIT,
    ) -> None:
        self.bot = bot
        self.channel_id = channel_id
        self.user_id = user_id
        self.guild_id = guild_id
        self.created_at = created_at
        self.application_id = application_id
        self.token = token
        self.interaction = interaction
        self.filesize_limit = filesize_limit

    @classmethod
    def for_interaction(cls, bot: discord.Client, interaction: discord.Interaction) -> Reply:
        return cls(
            bot,
            channel_id=interaction.channel_id or 0,
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            created_at=interaction.created_at,
            application_id=interaction.application_id,
            token=interaction.token,
            interaction=interaction,
            filesize_limit=interaction.filesize_limit,
        )

    @classmethod
    def for_record(cls, bot: discord.Client, record: JobRecord) -> Reply:
        return cls(
            bot,
            channel_id=record.channel_id,
            user_id=record.user_id,
            guild_id=record.guild_id,
            created_at=record.created_at,
            application_id=record.application_id,
            token=record.interaction_token,
        )

    def token_seconds_left(self) -> float:
        if self.token is None or self.application_id is None:
            return 0.0
        expires = self.created_at + TOKEN_LIFETIME - TOKEN_MARGIN
        return max((expires - datetime.now(UTC)).total_seconds(), 0.0)

    async def edit_progress(self, content: str, view: discord.ui.View | None = None, **_: Any) -> None:
        """Progress only matters while the reply can still be edited; after that it is skipped."""
        if self.token_seconds_left() <= 0:
            return
        kwargs: dict[str, Any] = {"content": content, "view": view}
        try:
            await self._edit_reply(**kwargs)
        except discord.HTTPException as error:
            log.info(
                "progress edit skipped interaction_token_valid=%s: %s", self.token_seconds_left() > 0, error.status
            )

    async def send_final(self, content: str, file: Callable[[], discord.File] | None = None) -> bool:
        """Edit the reply, or post in the channel when the reply can't be edited any more."""
        if self.token_seconds_left() > 0:
            try:
                attachments = [file()] if file else []
                await self._edit_reply(content=content, attachments=attachments, view=None)
                return True
            except discord.HTTPException as error:
                log.warning("reply edit failed (status %s); posting in the channel instead", error.status)
        return await self._post_in_channel(content, file)

    async def deliver(self, result: JobResult, filename: str) -> bool:
        """True when a message carrying the image (or its link) arrived."""
        attach = result.file is not None and result.file.size <= self.filesize_limit
        downloaded = result.file

        def make_file() -> discord.File:
            assert downloaded is not None
            source = downloaded.file if downloaded.file is not None else str(downloaded.path)
            if downloaded.file is not None:
                downloaded.file.seek(0)
            return discord.File(source, filename=filename)

        return await self.send_final(replies.success(result, attached=attach), make_file if attach else None)

    async def report_failure(self, error: BaseException) -> None:
        text = replies.failure(error)
        if isinstance(error, REFUSALS) and self.interaction is not None:
            # The "thinking…" reply is public; a refusal is for the member only.
            try:
                await self.interaction.delete_original_response()
            except discord.HTTPException:
                log.debug("could not delete the deferred reply")
            try:
                await self.interaction.followup.send(text, ephemeral=True)
                return
            except discord.HTTPException as failure:
                log.warning("could not send the refusal (status %s)", failure.status)
                return
        await self.send_final(text)

    async def _edit_reply(self, **kwargs: Any) -> None:
        if self.interaction is not None:
            await self.interaction.edit_original_response(**kwargs)
            return
        assert self.application_id is not None and self.token is not None
        webhook = discord.Webhook.partial(self.application_id, self.token, client=self.bot)
        kwargs.pop("view", None)
        await webhook.edit_message("@original", **kwargs)  # type: ignore[arg-type]  # the route takes @original

    async def _post_in_channel(self, content: str, file: Callable[[], discord.File] | None) -> bool:
        channel = self.bot.get_partial_messageable(self.channel_id, guild_id=self.guild_id)
        mention = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(self.user_id)])
        try:
            if file is not None:
                await channel.send(f"<@{self.user_id}> {content}", file=file(), allowed_mentions=mention)
            else:
                await channel.send(f"<@{self.user_id}> {content}", allowed_mentions=mention)
            return True
        except discord.HTTPException as error:
            log.warning(
                "could not post in channel=%s for user=%s (status %s); the job is settled and logged only",
                self.channel_id,
                self.user_id,
                error.status,
            )
            return False
