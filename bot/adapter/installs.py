"""Where the commands may run, and who pays: the server that installed the bot, or the member's own install.

With `USER_INSTALL_CREDIT_LIMIT` unset, every command is what it always was: installed to servers and used in
them. Set, the image commands are also offered to members who install the app to their account, in bot DMs,
group DMs and servers that never added the bot; there the member's own budget pays and the bot can answer only
through the interaction. The decision is made from the interaction's authorizing integration owners.
"""

from __future__ import annotations

import discord
from discord import app_commands

from bot.ledger import Payer
from bot.settings import Settings

Configurable = app_commands.Command | app_commands.ContextMenu  # type: ignore[type-arg]


def user_installs_on(settings: Settings) -> bool:
    return settings.user_install_credit_limit is not None


def open_to_members(command: Configurable, settings: Settings) -> None:
    """State where an image command runs: servers only (today's), or also wherever members installed the app."""
    if user_installs_on(settings):
        command.guild_only = False
        command.allowed_installs = app_commands.AppInstallationType(guild=True, user=True)
        command.allowed_contexts = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=True)
    else:
        command.guild_only = True
        command.allowed_installs = None
        command.allowed_contexts = app_commands.AppCommandContext(guild=True)


def payer_of(interaction: discord.Interaction, settings: Settings) -> Payer | None:
    """The server pays where it installed the bot (all its rules apply, the allowlist included); elsewhere the
    member's own install pays, when the owner allows user installs. None: nobody may pay here."""
    if interaction.is_guild_integration():
        return Payer.GUILD
    if user_installs_on(settings) and interaction.is_user_integration():
        return Payer.USER
    return None
