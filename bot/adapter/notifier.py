"""Posts the ledger's credit alerts in the channel a server admin chose (`bot.credit_alerts` decides)."""

from __future__ import annotations

import logging

import discord

log = logging.getLogger("bot.adapter.notifier")


class ChannelAlertNotifier:
    """`AlertNotifier` for Discord: a plain channel post, no mentions."""

    def __init__(self, client: discord.Client) -> None:
        self.client = client

    async def post_alert(self, guild_id: int, channel_id: int, text: str) -> bool:
        channel = self.client.get_partial_messageable(channel_id, guild_id=guild_id)
        try:
            await channel.send(text, allowed_mentions=discord.AllowedMentions.none())
        except discord.HTTPException as error:
            log.warning("could not post an alert guild=%s channel=%s status=%s", guild_id, channel_id, error.status)
            return False
        return True


class OwnerNotifier:
    """`balance.OwnerNotifier` for Discord: the owner alert channel when set, else a DM to the application's
    owner (a team's owner for team-owned apps)."""

    def __init__(self, client: discord.Client, channel_id: int | None) -> None:
        self.client = client
        self.channel_id = channel_id

    async def tell_owner(self, text: str) -> bool:
        try:
            if self.channel_id is not None:
                await self.client.get_partial_messageable(self.channel_id).send(
                    text, allowed_mentions=discord.AllowedMentions.none()
                )
                return True
            info = await self.client.application_info()
            owner = info.team.owner if info.team and info.team.owner else info.owner
            await owner.send(text)
            return True
        except discord.HTTPException as error:
            log.warning("could not reach the bot owner status=%s", error.status)
            return False
