"""The Magic Hour account's balance, as the bot last knew it: refuse jobs it cannot pay, warn the owner.

Asking Magic Hour before every job would double the requests, so the balance is fetched at most every
`refresh_every` seconds and, in between, lowered by what each create reported it charged. A job is
refused before its create when the last known balance is below its cost (the member gets the
out-of-credits message, nothing is charged). When the balance falls below the owner's threshold, the
owner hears it once per crossing (the crossing is remembered in the ledger, so a restart doesn't repeat it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bot.ledger import Ledger
from bot.magic_hour import AsyncClient

log = logging.getLogger("bot.balance")

REFRESH_SECONDS = 60.0
TRUST_SECONDS = 600.0  # a balance not confirmed for this long is not used to refuse jobs
REFRESH_TIMEOUT_SECONDS = 5.0
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
    """The account's balance as last read, less what creates in flight may cost.

    A create takes its cost from the known balance when it is sent (`take`), as the ledger reserves credits,
    so concurrent jobs cannot all pass against the same figure; the answer settles the take at what Magic
    Hour really charged (`charged`), a certain refusal gives it back (`give_back`). The balance is read in the
    background with a short timeout, never inside a job's slot, and a figure older than `trust_for` is not
    used at all: a failing account endpoint lets jobs through (Magic Hour itself refuses one it cannot bill)
    rather than turning into refusing every job.
    """

    def __init__(
        self,
        client: AsyncClient,
        ledger: Ledger,
        *,
        low_threshold: int | None = None,
        refresh_every: float = REFRESH_SECONDS,
        trust_for: float = TRUST_SECONDS,
        refresh_timeout: float = REFRESH_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.low_threshold = low_threshold
        self.refresh_every = refresh_every
        self.trust_for = trust_for
        self.refresh_timeout = refresh_timeout
        self._clock = clock
        self.known: int | None = None
        self.pending = 0  # credits of creates sent and not yet answered
        self._fetched_at = float("-inf")  # the last successful read
        self._tried_at = float("-inf")  # the last attempt, successful or not
        self._refreshing: asyncio.Task[int | None] | None = None

    def _stale(self) -> bool:
        return self._clock() - self._tried_at >= self.refresh_every

    def usable(self) -> int | None:
        """What the account can still spend, as far as the bot can trust it; None when it cannot."""
        if self.known is None or self._clock() - self._fetched_at > self.trust_for:
            return None
        return self.known - self.pending

    async def refresh(self) -> int | None:
        """Ask Magic Hour, within `refresh_timeout`; on failure keep what was known (monitoring must never
        stop jobs), and trust it only for `trust_for` seconds after the last success."""
        self._tried_at = self._clock()
        try:
            async with asyncio.timeout(self.refresh_timeout):
                credits = (await self.client.v1.account.get()).credits
        except Exception as error:
            log.warning("could not read the Magic Hour balance (%s); using the last known one", type(error).__name__)
        else:
            self.known = credits
            self._fetched_at = self._clock()
        return self.known

    def refresh_soon(self) -> asyncio.Task[int | None] | None:
        """Start a read in the background when the figure is stale (one at a time); the running read, if any."""
        if self._refreshing is not None and not self._refreshing.done():
            return self._refreshing
        if not self._stale():
            return None
        self._refreshing = asyncio.ensure_future(self.refresh())
        return self._refreshing

    async def ready(self) -> None:
        """Before a request takes a slot: start a read when stale, and wait for it (at most `refresh_timeout`)
        only when nothing is known yet (the first job after a start)."""
        task = self.refresh_soon()
        if task is not None and self.known is None:
            await asyncio.shield(task)

    def take(self, cost: int) -> None:
        """A create is about to be sent: raise BalanceTooLow when the trusted balance cannot pay `cost`."""
        self.refresh_soon()
        left = self.usable()
        if left is not None and left < cost:
            raise BalanceTooLow(max(left, 0), cost)
        self.pending += cost

    def give_back(self, cost: int) -> None:
        """The create certainly did not happen."""
        self.pending = max(0, self.pending - cost)

    def charged(self, cost: int, credits: int) -> None:
        """The create answered: its take becomes the charge Magic Hour reported."""
        self.give_back(cost)
        if self.known is not None:
            self.known -= max(credits, 0)

    async def close(self) -> None:
        if self._refreshing is not None and not self._refreshing.done():
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing

    async def after_job(self, notifier: OwnerNotifier) -> None:
        """After a job settles: refresh when stale, then tell the owner if the balance crossed the threshold."""
        if self._stale():
            await self.refresh()  # after the job, outside its slot
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
