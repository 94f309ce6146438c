"""Members' roles as Discord states them: what a member carries now, and which of a server's roles still exist.

Role limits are keyed by role id, so everything here is ids. Neither answer may depend on the guild cache being
warm: right after a start (before the server's GUILD_CREATE), `Member.roles` is empty and a member would quietly
lose the cap their role gives them.
"""

from __future__ import annotations

import logging

import discord

log = logging.getLogger("bot.adapter.roles")


def carried_role_ids(user: discord.User | discord.Member) -> tuple[int, ...]:
    """The role ids Discord sent with the interaction for this member (none outside a server).

    `Member.roles` keeps only the roles the guild cache knows; the ids discord.py parsed from the interaction's
    `member.roles` are the member's roles at the moment of the command, whatever the cache holds.
    """
    if not isinstance(user, discord.Member):
        return ()
    return tuple(int(role_id) for role_id in user._roles)


async def existing_role_ids(interaction: discord.Interaction) -> set[int] | None:
    """The ids of the interaction's server's roles now: from the cache when the server is cached (the `guilds`
    intent keeps it current), else asked of Discord (one REST call).

    None when Discord could not be asked: the caller shows what it has rather than failing the command.
    """
    if interaction.guild_id is None:
        return set()
    cached = interaction.client.get_guild(interaction.guild_id)
    if cached is not None and not cached.unavailable:
        return {role.id for role in cached.roles}
    guild = interaction.guild  # the partial server built from the interaction: enough to ask Discord
    if guild is None:
        return None
    try:
        roles = await guild.fetch_roles()
    except discord.HTTPException as error:
        log.warning("could not list the roles of guild=%s: HTTP %s", interaction.guild_id, error.status)
        return None
    return {role.id for role in roles}
