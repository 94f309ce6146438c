"""/remove-background and the "Remove background" and "Remove avatar background" menus: Discord in, a request
of images out.

The cog only translates. It turns what the member pointed at (attachments, a message's embeds and stickers,
an avatar, a link) into checked inputs (`bot/sources.py`; one bad input refuses the whole request before
anything is charged), acknowledges the interaction at once, hands a `Request` to the runner, and renders
the request's events as edits of its reply.
"""

from __future__ import annotations

import asyncio
import io
import logging
from typing import TYPE_CHECKING, Literal

import discord
import discord.http
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot import replies
from bot.adapter.events import InteractionEvents
from bot.adapter.installs import open_to_members, payer_of
from bot.adapter.roles import carried_role_ids
from bot.i18n import words_for
from bot.imaging import BadColor, BadFormat, ResultOptions
from bot.inputs import InputFile, Source, problem_with
from bot.jobs import ImageInput, ImageJob, InputRefresher, MemberBusy, Request, ShuttingDown, job_name
from bot.ledger import Origin, Payer
from bot.sources import (
    MAX_LINK_LENGTH,
    AttachmentItem,
    EmbedItem,
    MessageImages,
    Picture,
    StickerItem,
    avatar_image,
    check_link,
    link_image,
    message_images,
    refreshed_links,
)

if TYPE_CHECKING:
    from bot.adapter.bot import BackgroundBot

log = logging.getLogger("bot.cogs.remove_background")

COLOR_MAX_LENGTH = 32  # "light goldenrod yellow" and every #RRGGBB fit
NO_OPTIONS = ResultOptions()  # the menus' results: a transparent PNG, untrimmed
AVATAR_SIZE = 1024  # px: Discord serves avatars up to 4096; this is plenty for a cut-out and quick to fetch


def input_file(role: str, attachment: discord.Attachment) -> InputFile:
    return InputFile(
        role=role,
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        url=attachment.url,
    )


def offered_images(message: discord.Message) -> MessageImages:
    """The message's attachments, embedded pictures and stickers as `bot.sources` reads them."""
    return message_images(
        [AttachmentItem(a.filename, a.content_type, a.size, a.url) for a in message.attachments],
        [_embed_item(embed) for embed in message.embeds],
        [StickerItem(s.name, s.format.name, s.url) for s in message.stickers],
    )


def _embed_item(embed: discord.Embed) -> EmbedItem:
    def picture(proxy: discord.embeds.EmbedProxy) -> Picture | None:
        url = getattr(proxy, "url", None)
        return Picture(url, getattr(proxy, "proxy_url", None)) if url else None

    return EmbedItem(
        kind=embed.type,
        image=picture(embed.image),
        thumbnail=picture(embed.thumbnail),
        has_video=bool(getattr(embed.video, "url", None)),
    )


def avatar_url(target: discord.Member | discord.User) -> str | None:
    """The server avatar if there is one, else the account avatar, as a static PNG; None for Discord's
    default avatar (a coloured logo, nothing of the member's to cut out)."""
    asset = (target.guild_avatar if isinstance(target, discord.Member) else None) or target.avatar
    return asset.with_format("png").with_size(AVATAR_SIZE).url if asset is not None else None


async def no_refresh(job: ImageJob) -> ImageJob | None:
    """Links, embeds, stickers and avatars are not refreshed: a fresh copy would mean downloading them."""
    return None


class FreshAttachmentLinks:
    """Fresh links for a message's expired attachment URLs, from Discord's `POST /attachments/refresh-urls`.

    Re-fetching the message would need the Message Content intent (without it Discord returns no
    attachments), which this bot does not ask for; the refresh endpoint needs nothing. One call covers every
    attachment of the request, made by the first image that needs it.
    """

    def __init__(self, http: discord.http.HTTPClient, inputs: list[InputFile]) -> None:
        self.http = http
        self.inputs = inputs
        self._lock = asyncio.Lock()
        self._fresh: dict[str, str] | None = None

    async def __call__(self, job: ImageJob) -> ImageJob | None:
        if self.inputs[job.position].source is not Source.ATTACHMENT:
            return None
        async with self._lock:
            if self._fresh is None:
                urls = [item.url for item in self.inputs if item.source is Source.ATTACHMENT]
                route = discord.http.Route("POST", "/attachments/refresh-urls")
                self._fresh = refreshed_links(await self.http.request(route, json={"attachment_urls": urls}))
        fresh = self._fresh.get(self.inputs[job.position].url)
        return job.with_inputs(fresh, job.background_url) if fresh else None


class RemoveBackground(commands.Cog):
    def __init__(self, bot: BackgroundBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name=locale_str("Remove background"), callback=self.remove_background_menu)
        self.avatar_menu = app_commands.ContextMenu(
            name=locale_str("Remove avatar background"), callback=self.remove_avatar_background
        )

    async def cog_load(self) -> None:
        for command in (self.remove_background, self.menu, self.avatar_menu):
            open_to_members(command, self.bot.settings)
        self.bot.tree.add_command(self.menu)
        self.bot.tree.add_command(self.avatar_menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)
        self.bot.tree.remove_command(self.avatar_menu.name, type=self.avatar_menu.type)

    @app_commands.command(
        name="remove-background", description=locale_str("Remove the background of images with Magic Hour")
    )
    @app_commands.describe(
        image=locale_str("The image whose background should be removed (or give a url instead)"),
        url=locale_str("Instead of image: an https link to an image file (.png, .jpg, .webp, ...)"),
        image2=locale_str("Optional: another image, processed in the same request"),
        image3=locale_str("Optional: another image, processed in the same request"),
        image4=locale_str("Optional: another image, processed in the same request"),
        background=locale_str("Optional: an image to put behind each subject instead"),
        name=locale_str("Optional: a name for the job at Magic Hour"),
        color=locale_str("Optional: a solid colour behind the subject: #RRGGBB, #RGB or a name like white"),
        trim=locale_str("Optional: crop the result to the subject (default: False)"),
        result_format=locale_str("Optional: png (default) or webp (lossless, keeps transparency)"),
        private=locale_str("Optional: show the whole exchange to you only"),
    )
    @app_commands.rename(result_format="format")
    async def remove_background(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment | None = None,
        url: app_commands.Range[str, 1, MAX_LINK_LENGTH] | None = None,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        background: discord.Attachment | None = None,
        name: app_commands.Range[str, 1, 100] | None = None,
        color: app_commands.Range[str, 1, COLOR_MAX_LENGTH] | None = None,
        trim: bool = False,
        result_format: Literal["png", "webp"] | None = None,
        private: bool = False,
    ) -> None:
        w = words_for(interaction.locale)
        if (image is None) == (url is None):
            refusal = replies.image_or_link_needed(w) if image is None else replies.image_and_link_both(w)
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        options = await self._options(interaction, color, trim, result_format, background is not None)
        if options is None:
            return
        if url is not None and (problem := check_link(url)):
            await interaction.response.send_message(replies.input_refused(w, problem), ephemeral=True)
            return
        # None stands for the member's link: the bot never downloads it, so it has no copy to upload.
        uploads = [image, *(a for a in (image2, image3, image4) if a is not None)]
        inputs = [input_file("image", a) if a is not None else link_image(url or "") for a in uploads]
        backdrop = input_file("background", background) if background else None
        refresh = self._upload_refresher(uploads, background)
        await self._start(interaction, inputs, backdrop, name, refresh, private=private, options=options)

    @staticmethod
    async def _options(
        interaction: discord.Interaction, color: str | None, trim: bool, fmt: str | None, with_background: bool
    ) -> ResultOptions | None:
        """The request's result options, or None after refusing them (ephemerally, before anything is reserved)."""
        refusal: str | None = None
        w = words_for(interaction.locale)
        try:
            options = ResultOptions.parse(color, trim, fmt)
        except (BadColor, BadFormat) as error:
            refusal = replies.option_refused(w, error.message)
        else:
            # A background image fills the whole result: nothing shows a colour, nothing is left to trim.
            if with_background and options.color is not None:
                refusal = replies.option_with_background(w, "color")
            elif with_background and options.trim:
                refusal = replies.option_with_background(w, "trim")
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True)
            return None
        return options

    async def remove_background_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        found = offered_images(message)
        if not found.images:
            w = words_for(interaction.locale)
            await interaction.response.send_message(replies.no_image_in_message(w, found.skipped), ephemeral=True)
            return
        inputs = list(found.images)
        refresh = FreshAttachmentLinks(self.bot.http, inputs)
        await self._start(interaction, inputs, None, None, refresh, private=False)
        await self._tell_skipped(interaction, found)

    async def remove_avatar_background(
        self, interaction: discord.Interaction, member: discord.Member | discord.User
    ) -> None:
        url = avatar_url(member)
        if url is None:
            w = words_for(interaction.locale)
            await interaction.response.send_message(replies.default_avatar(w, member.display_name), ephemeral=True)
            return
        await self._start(interaction, [avatar_image(member.display_name, url)], None, None, no_refresh, private=False)

    def _upload_refresher(
        self, uploads: list[discord.Attachment | None], background: discord.Attachment | None
    ) -> InputRefresher:
        async def refresh(job: ImageJob) -> ImageJob | None:
            # Slash-command attachments belong to no message whose links Discord could refresh: send the
            # bytes instead. A member's link is not retried (that would mean the bot downloading it).
            attachment = uploads[job.position]
            if attachment is None:
                return None
            image_path = await self._upload_copy(attachment)
            background_path = await self._upload_copy(background) if background else None
            return job.with_inputs(image_path, background_path)

        return refresh

    async def _tell_skipped(self, interaction: discord.Interaction, found: MessageImages) -> None:
        """Name what the request left out, once its reply stands (a followup sent while the reply is still
        "thinking" would replace it). Only the member sees it; nothing to say if the request never started."""
        if not (found.skipped or found.left_out):
            return
        if interaction.response.type is not discord.InteractionResponseType.deferred_channel_message:
            return
        try:
            w = words_for(interaction.locale)
            await interaction.followup.send(replies.skipped_sources(w, found.skipped, found.left_out), ephemeral=True)
        except discord.HTTPException as error:
            log.info("could not say what the request left out interaction=%s: %s", interaction.id, error)

    async def _start(
        self,
        interaction: discord.Interaction,
        inputs: list[InputFile],
        background: InputFile | None,
        name: str | None,
        refresh: InputRefresher,
        *,
        private: bool,
        options: ResultOptions = NO_OPTIONS,
    ) -> None:
        """The menus pass no options: they deliver the default (a transparent PNG, untrimmed)."""
        bot = self.bot
        w = words_for(interaction.locale)
        payer = payer_of(interaction, bot.settings)
        if payer is None:
            await interaction.response.send_message(
                replies.not_installed_here(w, interaction.guild_id is not None), ephemeral=True
            )
            return
        for item in [*inputs, *([background] if background else [])]:
            if problem := problem_with(item, bot.settings.max_input_bytes):
                await interaction.response.send_message(replies.input_refused(w, problem), ephemeral=True)
                return
        guild_id = interaction.guild_id
        runner = bot.runner
        active = runner.member_active(interaction.user.id)
        if not runner.accepting or active >= runner.max_per_member:
            error = ShuttingDown() if not runner.accepting else MemberBusy(active, runner.max_per_member)
            await interaction.response.send_message(replies.failure(w, error), ephemeral=True)
            return
        await interaction.response.defer(thinking=True, ephemeral=private)
        origin = Origin(
            interaction_id=interaction.id,
            guild_id=guild_id,
            channel_id=interaction.channel_id or 0,
            user_id=interaction.user.id,
            created_at=interaction.created_at,
            application_id=interaction.application_id,
            token=interaction.token,
            locale=interaction.locale.value,
            guild_locale=interaction.guild_locale.value if interaction.guild_locale else None,
        )
        label = (
            name or f"Discord {interaction.guild.name if interaction.guild and interaction.guild.name else guild_id}"
        )
        if guild_id is None and name is None:
            label = "Discord DM"
        request = Request(
            origin=origin,
            images=tuple(
                ImageInput(item.url, item.filename, job_name(label, interaction.id, position))
                for position, item in enumerate(inputs)
            ),
            private=private,
            background_url=background.url if background else None,
            upload_limit=interaction.filesize_limit,
            payer=payer,
            channel_posts=payer is Payer.GUILD,  # elsewhere the bot is not in the channel: the interaction only
            options=options,
            roles=carried_role_ids(interaction.user),
        )
        events = InteractionEvents(bot, runner, interaction, request)
        await runner.run(request, events, refresh)

    async def _upload_copy(self, attachment: discord.Attachment) -> str:
        data = await attachment.read()
        upload = io.BytesIO(data)
        upload.name = attachment.filename
        return await self.bot.magic_hour.v1.files.upload_file(upload)


async def setup(bot: BackgroundBot) -> None:
    await bot.add_cog(RemoveBackground(bot))
