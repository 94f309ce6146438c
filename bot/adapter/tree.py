"""The command tree's error mapping: every app-command error becomes one plain message, in one place."""

from __future__ import annotations

import logging
import secrets

import discord
from discord import app_commands

from bot import replies
from bot.adapter.reply import RESULT_IN_REPLY
from bot.i18n import words_for

log = logging.getLogger("bot")


class BotTree(app_commands.CommandTree):
    """Turns every app-command error into a message for the member, in one place, and keeps the bot to the
    servers its owner allowed: elsewhere every command is answered before any cog code runs."""

    allowed_guild_ids: frozenset[int] | None = None

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """`ALLOWED_GUILD_IDS` governs server installs: a server that added the bot but is not allowed is refused,
        even when the member also installed the app; a member's own install elsewhere pays for itself."""
        allowed = self.allowed_guild_ids
        if allowed is None or not interaction.is_guild_integration() or interaction.guild_id in allowed:
            return True
        log.info("refused a command in a server that is not allowed guild=%s", interaction.guild_id)
        try:
            await interaction.response.send_message(
                replies.not_enabled_here(words_for(interaction.locale)), ephemeral=True
            )
        except discord.HTTPException:
            log.warning("could not answer interaction=%s", interaction.id)
        return False

    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        w = words_for(interaction.locale)
        if isinstance(error, app_commands.MissingPermissions):
            text = replies.missing_permission(w, error.missing_permissions)
        elif isinstance(error, app_commands.NoPrivateMessage):
            text = replies.only_in_servers(w)
        elif isinstance(error, app_commands.CheckFailure):
            text = replies.not_here(w)
        elif isinstance(error, app_commands.TransformerError):
            text = replies.bad_option(w, str(error))
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
            text = replies.went_wrong(w, reference)
        try:
            if not interaction.response.is_done():
                await interaction.response.send_message(text, ephemeral=True)
            elif interaction.extras.get(RESULT_IN_REPLY):
                # The reply already carries a delivered image: never overwrite it with an error.
                await interaction.followup.send(text, ephemeral=True)
            elif interaction.response.type is discord.InteractionResponseType.deferred_channel_message:
                await interaction.edit_original_response(content=text, view=None)  # no "thinking…" left
            else:
                await interaction.followup.send(text, ephemeral=True)
        except discord.HTTPException:
            log.warning("could not send the error message for interaction=%s", interaction.id)
