"""The Magic Hour account's balance, as the bot last knew it: refuse jobs it cannot pay, warn the owner.

Asking Magic Hour before every job would double the requests, so the balance is fetched at most every
`refresh_every` seconds and, in between, lowered by what each create reported it charged. A job is
refused before its create when the last known balance is below its cost (the member gets the
out-of-credits message, nothing is charged). When the balance falls below the owner's threshold, the
owner hears it once per crossing (the crossing is remembered in the ledger, so a restart doesn't repeat it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.ledger import Ledger
from bot.magic_hour import AsyncClient

log = logging.getLogger("bot.balance")

REFRESH_SECONDS = 60.0
LOW_BALANCE_META_KEY = "owner.low_balance_alerted"


class BalanceTooLow(Exception):
    """The bot's Magic Hour account cannot pay for the job; nothing was sent or charged."""

    def __init__(self, balance: int, cost: int) -> None:
        super().__init__(f"Magic Hour balance {balance} is below the job's cost {cost}")
        self.balance = balance
        self.cost = cost


class OwnerNotifier(Protocol):
    async def tell_owner(self, text: str) -> bool:
        """Send `text` to the bot's owner; True when it arrived."""
        ...


class BalanceWatch:
    def __init__(
        self,
        client: AsyncClient,
        ledger: Ledger,
        *,
        low_threshold: int | None = None,
        refresh_every: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.low_threshold = low_threshold
        self.refresh_every = refresh_every
        self._clock = clock
        self.known: int | None = None
        self._fetched_at = float("-inf")

    def _stale(self) -> bool:
        return self._clock() - self._fetched_at >= self.refresh_every

    async def refresh(self) -> int | None:
        """Ask Magic Hour; on failure keep what was known (monitoring must never stop jobs)."""
        self._fetched_at = self._clock()
        try:
            self.known = (await self.client.v1.account.get()).credits
        except Exception as error:
            log.warning("could not read the Magic Hour balance (%s); using the last known one", type(error).__name__)
        return self.known

    async def ensure_affordable(self, cost: int) -> None:
        """Raise BalanceTooLow when the last known balance is below `cost`; an unknown balance lets it pass."""
        if self._stale():
            await self.refresh()
        if self.known is not None and self.known < cost:
            raise BalanceTooLow(self.known, cost)

    def spent(self, credits: int) -> None:
        """A create reported its charge: lower the known balance until the next refresh."""
        if self.known is not None:
            self.known -= max(credits, 0)

    async def after_job(self, notifier: OwnerNotifier) -> None:
        """After a job settles: refresh when stale, then tell the owner if the balance crossed the threshold."""
        if self._stale():
            await self.refresh()
        threshold = self.low_threshold
        if threshold is None or self.known is None:
            return
        alerted = await self.ledger.get_meta(LOW_BALANCE_META_KEY) == "1"
        if self.known >= threshold:
            if alerted:
                await self.ledger.set_meta(LOW_BALANCE_META_KEY, "0")  # back above: the next fall is a new crossing
            return
        if alerted:
            return
        spent = await self.ledger.spend_since(datetime.now(UTC) - timedelta(hours=24))
        text = (
            f"💳 The bot's Magic Hour balance is down to {self.known} credits (your LOW_BALANCE_CREDITS is "
            f"{threshold}). The bot spent {spent} credits in the last 24 hours. Top up at https://magichour.ai."
        )
        if await notifier.tell_owner(text):
            await self.ledger.set_meta(LOW_BALANCE_META_KEY, "1")
        else:
            log.warning("could not tell the owner about the low balance; trying again after the next job")
