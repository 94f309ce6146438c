"""Add as emoji / Add as sticker: a delivered result made into a server emoji or sticker when a member presses.

Nothing is kept per result: the press acts on the first attachment of the message it is on, read again from
Discord's CDN, so it works on results of any age and after a restart. Permissions are checked at press time (the
member's and the bot's), the image work runs in the runner's `ImageWorker` (never on the event loop), and at most
as many presses as that worker has slots hold an image in memory at once; the rest wait before downloading.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import aiohttp
import discord

from bot import replies
from bot.i18n import Words, words_for
from bot.imaging import CannotFit, EmojiImage, ImageProblem, ImageWorker, StickerImage, make_emoji, make_sticker
from bot.replies import Expression

log = logging.getLogger("bot.adapter.expressions")

# Discord's JSON error codes when creating an emoji or a sticker.
MISSING_PERMISSIONS = 50013
MAX_EMOJIS = 30008
MAX_STICKERS = 30039
FILE_TOO_LARGE = 50045
RESIZE_FAILED = 50138  # "Failed to resize asset below the maximum size"


def member_may_create(permissions: discord.Permissions) -> bool:
    return permissions.administrator or permissions.create_expressions or permissions.manage_expressions


def bot_may_create(permissions: discord.Permissions) -> bool:
    """Since February 2026 Discord requires Create Expressions of bots; Manage Expressions alone no longer creates."""
    return permissions.administrator or permissions.create_expressions


def discord_refusal(w: Words, kind: Expression, error: discord.HTTPException) -> str:
    """Discord's refusal of a create, in the member's words."""
    if error.code == MISSING_PERMISSIONS:
        return replies.expression_bot_lacks_permission(w, kind)
    if error.code in (MAX_EMOJIS, MAX_STICKERS):
        return replies.expression_no_slots(w, kind)
    if error.code in (FILE_TOO_LARGE, RESIZE_FAILED):
        return replies.expression_not_made(w, kind, ImageProblem.TOO_MANY_BYTES)
    return replies.expression_refused(w, kind)


class ExpressionMaker:
    """Turns the first image of a result message into an emoji or a sticker of the server it was pressed in."""

    def __init__(self, images: ImageWorker | None, *, max_bytes: int) -> None:
        self.images = images  # None: the bot runs without image work, and the buttons say Discord refused
        self.max_bytes = max_bytes  # the largest attachment read (the bot's own results are never larger)
        self._in_memory = asyncio.Semaphore(images.max_parallel if images is not None else 1)

    async def add(self, interaction: discord.Interaction[Any], kind: Expression) -> None:
        w = words_for(interaction.locale)
        refusal = self._refusal(w, interaction, kind)
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        # Reading and resizing can take longer than the 3 s Discord allows for an answer.
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            text = await self._make_and_add(w, interaction, kind)
        except Exception:
            log.exception("adding %s failed interaction=%s", kind, interaction.id)
            text = replies.expression_refused(w, kind)
        try:
            await interaction.edit_original_response(content=text)
        except discord.HTTPException as error:
            log.warning("could not answer the %s press interaction=%s (status %s)", kind, interaction.id, error.status)

    def _refusal(self, w: Words, interaction: discord.Interaction[Any], kind: Expression) -> str | None:
        """What stops the press before anything is read, or None."""
        if interaction.guild is None:
            return replies.expression_only_in_servers(w)
        if self.images is None:
            return replies.expression_refused(w, kind)
        if not member_may_create(interaction.permissions):
            return replies.expression_member_lacks_permission(w, kind)
        if not bot_may_create(interaction.app_permissions):
            return replies.expression_bot_lacks_permission(w, kind)
        attachment = _first_image(interaction.message)
        if attachment is None:
            return replies.expression_no_image(w)
        if attachment.size > self.max_bytes:
            return replies.expression_not_made(w, kind, ImageProblem.TOO_LARGE)
        return None

    async def _make_and_add(self, w: Words, interaction: discord.Interaction[Any], kind: Expression) -> str:
        attachment = _first_image(interaction.message)
        guild = interaction.guild
        assert attachment is not None and guild is not None and self.images is not None
        async with self._in_memory:
            try:
                data = await attachment.read()
            except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
                log.info("could not read the result's attachment interaction=%s: %s", interaction.id, error)
                return replies.expression_fetch_failed(w)
            maker = make_emoji if kind == "emoji" else make_sticker
            made = await self.images.run(maker, data, attachment.filename)
            del data
        if isinstance(made, CannotFit):
            return replies.expression_not_made(w, kind, made.problem)
        reason = f"Add as {kind}, pressed by user {interaction.user.id}"
        try:
            if isinstance(made, EmojiImage):
                emoji = await guild.create_custom_emoji(name=made.name, image=made.data, reason=reason)
                return replies.expression_created(w, "emoji", emoji.name, str(emoji))
            assert isinstance(made, StickerImage)
            sticker = await guild.create_sticker(
                name=made.name,
                emoji=made.tag,
                file=discord.File(io.BytesIO(made.data), filename=made.filename),
                reason=reason,
            )
            return replies.expression_created(w, "sticker", sticker.name)
        except discord.HTTPException as error:
            log.info("Discord refused the %s guild=%s: %s %s", kind, guild.id, error.status, error.code)
            return discord_refusal(w, kind, error)


def _first_image(message: discord.Message | None) -> discord.Attachment | None:
    """The message's first attachment, if it is an image (the buttons act on the first result of a message)."""
    if message is None or not message.attachments:
        return None
    first = message.attachments[0]
    content_type = first.content_type or ""
    return first if content_type.startswith("image/") or first.width is not None else None
