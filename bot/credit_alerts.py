"""When a server should hear that it is close to its credit limit: the 80 % and 100 % alerts.

The decision (which thresholds were crossed this period, and that each is said once) is policy over the
ledger, so it lives here, Discord-free; the adapter only implements `AlertNotifier` to post the text.
An alert is claimed before it is posted so two processes never both post it, and the claim is given
back when the post fails, so the next settled job tries again.
"""

from __future__ import annotations

import logging
from typing import Protocol

from bot import replies
from bot.i18n import words_for
from bot.ledger import Ledger

log = logging.getLogger("bot.credit_alerts")

ALERT_THRESHOLDS = (80, 100)


class AlertNotifier(Protocol):
    async def post_alert(self, guild_id: int, channel_id: int, text: str) -> bool:
        """Post `text` in the channel; True when it arrived."""
        ...


class CreditAlerts:
    def __init__(self, ledger: Ledger, thresholds: tuple[int, ...] = ALERT_THRESHOLDS) -> None:
        self.ledger = ledger
        self.thresholds = thresholds

    async def check(self, guild_id: int | None, notifier: AlertNotifier) -> list[int]:
        """After a job settles: post each threshold crossed this period once; returns those posted.

        `guild_id` None: a member's own install paid, and no server's budget moved."""
        if guild_id is None:
            return []
        settings = await self.ledger.get_settings(guild_id)
        if settings.alert_channel_id is None or settings.credit_limit <= 0:
            return []
        usage = await self.ledger.usage(guild_id)
        posted: list[int] = []
        for threshold in self.thresholds:
            if usage.total * 100 < threshold * usage.limit:
                continue
            if not await self.ledger.claim_alert(guild_id, threshold, usage.period_start):
                continue
            text = replies.limit_alert(words_for(settings.locale), threshold, usage)  # the server's language
            if await notifier.post_alert(guild_id, settings.alert_channel_id, text):
                posted.append(threshold)
            else:
                log.warning("the %d %% alert was not posted guild=%s; retrying after the next job", threshold, guild_id)
                await self.ledger.unclaim_alert(guild_id, threshold, usage.period_start)
        return posted
