"""/remove-background and the "Remove background" message menu: Discord in, a request of images out.

The cog only translates. It checks every attachment (one bad file refuses the whole request before
anything is charged), acknowledges the interaction at once, hands a `BatchRequest` to the runner, and
renders the request's events as edits of its reply.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.adapter.events import InteractionEvents
from bot.adapter.installs import open_to_members, payer_of
from bot.inputs import InputFile, is_image, problem_with
from bot.jobs import ImageInput, ImageJob, InputRefresher, MemberBusy, Request, ShuttingDown, job_name
from bot.ledger import Origin, Payer

if TYPE_CHECKING:
    from bot.adapter.bot import BackgroundBot

log = logging.getLogger("bot.cogs.remove_background")

MAX_MENU_IMAGES = 10  # Discord allows 10 attachments per message


def input_file(role: str, attachment: discord.Attachment) -> InputFile:
    return InputFile(
        role=role,
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        url=attachment.url,
    )


class RemoveBackground(commands.Cog):
    def __init__(self, bot: BackgroundBot) -> None:
        self.bot = bot
        self.menu = app_commands.ContextMenu(name="Remove background", callback=self.remove_background_menu)

    async def cog_load(self) -> None:
        for command in (self.remove_background, self.menu):
            open_to_members(command, self.bot.settings)
        self.bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    @app_commands.command(name="remove-background", description="Remove the background of images with Magic Hour")
    @app_commands.describe(
        image="The image whose background should be removed",
        image2="Optional: another image, processed in the same request",
        image3="Optional: another image, processed in the same request",
        image4="Optional: another image, processed in the same request",
        background="Optional: an image to put behind each subject instead",
        name="Optional: a name for the job at Magic Hour",
        private="Optional: show the whole exchange to you only",
    )
    async def remove_background(
        self,
        interaction: discord.Interaction,
        image: discord.Attachment,
        image2: discord.Attachment | None = None,
        image3: discord.Attachment | None = None,
        image4: discord.Attachment | None = None,
        background: discord.Attachment | None = None,
        name: app_commands.Range[str, 1, 100] | None = None,
        private: bool = False,
    ) -> None:
        chosen = [a for a in (image, image2, image3, image4) if a is not None]
        inputs = [input_file("image", a) for a in chosen]
        backdrop = input_file("background", background) if background else None

        async def refresh(job: ImageJob) -> ImageJob | None:
            # Slash-command attachments belong to no message we could re-fetch, so send the bytes instead.
            image_path = await self._upload_copy(chosen[job.position])
            background_path = await self._upload_copy(background) if background else None
            return job.with_inputs(image_path, background_path)

        await self._start(interaction, inputs, backdrop, name, refresh, private=private)

    async def remove_background_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        images = [a for a in message.attachments if is_image(a.filename, a.content_type)][:MAX_MENU_IMAGES]
        if not images:
            await interaction.response.send_message(replies.no_image_in_message(), ephemeral=True)
            return

        async def refresh(job: ImageJob) -> ImageJob | None:
            # Discord's CDN links are signed and expire: the message itself hands out a fresh one.
            fresh = await message.channel.fetch_message(message.id)
            wanted = images[job.position].id
            match = next((a for a in fresh.attachments if a.id == wanted), None)
            if match is None:
                return None
            return job.with_inputs(match.url, job.background_url)

        await self._start(interaction, [input_file("image", a) for a in images], None, None, refresh, private=False)

    async def _start(
        self,
        interaction: discord.Interaction,
        inputs: list[InputFile],
        background: InputFile | None,
        name: str | None,
        refresh: InputRefresher,
        *,
        private: bool,
    ) -> None:
        bot = self.bot
        payer = payer_of(interaction, bot.settings)
        if payer is None:
            await interaction.response.send_message(replies.not_installed_here(interaction.guild_id is not None), ephemeral=True)
            return
        for item in [*inputs, *([background] if background else [])]:
            if problem := problem_with(item, bot.settings.max_input_bytes):
                await interaction.response.send_message(f"❌ {problem} Nothing was charged.", ephemeral=True)
                return
        guild_id = interaction.guild_id
        runner = bot.runner
        active = runner.member_active(interaction.user.id)
        if not runner.accepting or active >= runner.max_per_member:
            error = ShuttingDown() if not runner.accepting else MemberBusy(active, runner.max_per_member)
            await interaction.response.send_message(replies.failure(error), ephemeral=True)
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
