"""Checks that run in code on every invocation, whatever Discord's own settings say.

`guild_only` and `default_permissions` only tell Discord where to show a command; a payload that
arrives anyway (stale command caches, a server admin's overrides) must still be refused here.
"""

from __future__ import annotations

import discord
from discord import app_commands


def require_guild(interaction: discord.Interaction) -> bool:
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return True
