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
RESULT_IN_REPLY = "result_in_reply"  # Interaction.extras key: the reply carries a delivered result


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

    async def send_final(
        self, content: str, file: Callable[[], discord.File] | None = None, *, without_file: str | None = None
    ) -> bool:
        """Get the message to the member by the first way that works; True when something arrived.

        The reply while its token lives, then a channel post mentioning the member; when files can't be
        attached there, `without_file` (the same news with a link); and when the channel is closed to the
        bot (no permission, deleted), a DM. Each refusal is logged; only a message that arrived counts.
        """
        if self.token_seconds_left() > 0:
            try:
                attachments = [file()] if file else []
                await self._edit_reply(content=content, attachments=attachments, view=None)
                self._mark_delivered()
                return True
            except discord.HTTPException as error:
                log.warning("reply edit failed (status %s); posting in the channel instead", error.status)
        attempts: list[tuple[str, Callable[[], discord.File] | None]] = [(content, file)]
        if file is not None and without_file is not None:
            attempts.append((without_file, None))
        for text, attachment in attempts:
            if await self._post_in_channel(text, attachment):
                return True
        for text, attachment in attempts:
            if await self._send_dm(text, attachment):
                return True
        log.warning(
            "no way to reach user=%s for channel=%s; the job is settled and logged only", self.user_id, self.channel_id
        )
        return False

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

        text = replies.success(result, attached=attach)
        if not attach:
            return await self.send_final(text)
        link = replies.success(result, attached=False, reason="could not be attached here")
        return await self.send_final(text, make_file, without_file=link)

    def _mark_delivered(self) -> None:
        """Remember on the interaction that its reply now carries the result (the tree's on_error reads it)."""
        if self.interaction is not None:
            self.interaction.extras[RESULT_IN_REPLY] = True

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
                "could not post in channel=%s for user=%s (status %s, files=%s)",
                self.channel_id,
                self.user_id,
                error.status,
                file is not None,
            )
            return False

    async def _send_dm(self, content: str, file: Callable[[], discord.File] | None) -> bool:
        try:
            dm = await self.bot.create_dm(discord.Object(self.user_id))
            text = f"{replies.dm_preface(self.channel_id)}\n{content}"
            if file is not None:
                await dm.send(text, file=file())
            else:
                await dm.send(text)
            return True
        except discord.HTTPException as error:
            log.warning("could not DM user=%s (status %s, files=%s)", self.user_id, error.status, file is not None)
            return False
