"""Progress edits of a job's reply, coalesced so Discord's per-token rate limit is never hit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any


class ThrottledEditor:
    """Coalesces progress edits so one job never sends more than one edit per `interval` seconds.

    Discord rate-limits edits per interaction token; status changes can arrive faster than that, and
    only the newest one matters, so older pending ones are dropped.
    """

    def __init__(
        self,
        send: Callable[..., Awaitable[None]],
        interval: float = 1.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.send = send
        self.interval = interval
        self.clock = clock
        self.sent = 0
        self._last = float("-inf")
        self._pending: tuple[str, dict[str, Any]] | None = None
        self._task: asyncio.Task[None] | None = None
        self._sending = False

    async def update(self, content: str, **kwargs: Any) -> None:
        self._pending = (content, kwargs)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._flush())

    async def settle(self) -> None:
        """Drop what is not yet sent and wait for an edit in flight, so the final message lands last."""
        self._pending = None
        if self._task is None or self._task.done():
            return
        if self._sending:
            await asyncio.wait([self._task])
        else:
            self._task.cancel()  # only sleeping until the next edit is allowed

    async def _flush(self) -> None:
        while self._pending is not None:
            wait = self._last + self.interval - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
                if self._pending is None:
                    return
            content, kwargs = self._pending
            self._pending = None
            self._last = self.clock()
            self.sent += 1
            self._sending = True
            try:
                await self.send(content, **kwargs)
            finally:
                self._sending = False
