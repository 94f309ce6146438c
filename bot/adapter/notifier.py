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
