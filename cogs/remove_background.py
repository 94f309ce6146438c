"""/remove-background and the "Remove background" message menu: Discord in, a request of images out.

The cog only translates. It checks every attachment (one bad file refuses the whole request before
anything is charged), acknowledges the interaction at once, hands a `BatchRequest` to the runner, and
renders the request's events as edits of its reply.
"""

from __future__ import annotations

import io
import logging
from dataclasses import replace
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import replies
from bot.adapter.checks import require_guild
from bot.adapter.events import InteractionEvents
from bot.inputs import InputFile, is_image, problem_with
from bot.jobs import BatchImage, BatchRequest, InputRefresher, JobRequest, MemberBusy, ShuttingDown

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
        self.menu.guild_only = True
        self.menu.add_check(require_guild)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return require_guild(interaction)

    async def cog_load(self) -> None:
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
    @app_commands.guild_only()
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

        async def refresh(request: JobRequest) -> JobRequest | None:
            # Slash-command attachments belong to no message we could re-fetch, so send the bytes instead.
            image_path = await self._upload_copy(chosen[request.position])
            background_path = await self._upload_copy(background) if background else None
            return replace(request, image_url=image_path, background_url=background_path)

        await self._start(interaction, inputs, backdrop, name, refresh, private=private)

    async def remove_background_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        images = [a for a in message.attachments if is_image(a.filename, a.content_type)][:MAX_MENU_IMAGES]
        if not images:
            await interaction.response.send_message(replies.no_image_in_message(), ephemeral=True)
            return

        async def refresh(request: JobRequest) -> JobRequest | None:
            # Discord's CDN links are signed and expire: the message itself hands out a fresh one.
            fresh = await message.channel.fetch_message(message.id)
            wanted = images[request.position].id
            match = next((a for a in fresh.attachments if a.id == wanted), None)
            if match is None:
                return None
            return replace(request, image_url=match.url)

        await self._start(interaction, [input_file("image", a) for a in images], None, None, refresh)

    async def _start(
        self,
        interaction: discord.Interaction,
        inputs: list[InputFile],
        background: InputFile | None,
        name: str | None,
        refresh: InputRefresher,
        *,
        private: bool = False,
    ) -> None:
        bot = self.bot
        for item in [*inputs, *([background] if background else [])]:
            if problem := problem_with(item, bot.settings.max_input_bytes):
                await interaction.response.send_message(f"❌ {problem} Nothing was charged.", ephemeral=True)
                return
        guild_id = interaction.guild_id
        assert guild_id is not None  # guild_only
        runner = bot.runner
        active = runner.member_active(guild_id, interaction.user.id)
        if not runner.accepting or active >= runner.max_per_member:
            error = ShuttingDown() if not runner.accepting else MemberBusy(active, runner.max_per_member)
            await interaction.response.send_message(replies.failure(error), ephemeral=True)
            return
        await interaction.response.defer(thinking=True, ephemeral=private)
        request = BatchRequest(
            interaction_id=interaction.id,
            guild_id=guild_id,
            channel_id=interaction.channel_id or 0,
            user_id=interaction.user.id,
            images=tuple(
                BatchImage(item.url, item.filename, self._job_name(interaction, name, position, len(inputs)))
                for position, item in enumerate(inputs)
            ),
            background_url=background.url if background else None,
            application_id=interaction.application_id,
            interaction_token=interaction.token,
            upload_limit=interaction.filesize_limit,
            private=private,
        )
        events = InteractionEvents(bot, runner, interaction, [item.filename for item in inputs], private=private)
        await runner.run_batch(request, events, refresh)

    async def _upload_copy(self, attachment: discord.Attachment) -> str:
        data = await attachment.read()
        upload = io.BytesIO(data)
        upload.name = attachment.filename
        return await self.bot.magic_hour.v1.files.upload_file(upload)

    @staticmethod
    def _job_name(interaction: discord.Interaction, given: str | None, position: int = 0, count: int = 1) -> str:
        """Always ends with " #<interaction id>" (and "/<n>" for a request's later images): a webhook event for
        a job whose create answer was lost names its project, and this suffix is how the bot finds the job."""
        suffix = f" #{interaction.id}" + (f"/{position}" if position else "")
        if given is None:
            guild = interaction.guild
            given = f"Discord {guild.name if guild and guild.name else interaction.guild_id}"
        return given[: 100 - len(suffix)] + suffix


async def setup(bot: BackgroundBot) -> None:
    await bot.add_cog(RemoveBackground(bot))
