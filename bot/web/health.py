"""A health check answered from memory for a few seconds, so /healthz can't be turned into load.

/healthz needs no credentials, so its cost is anyone's to multiply: the database is asked at most once
per `ttl` however many requests arrive, and requests that come while it is being asked wait for that
answer instead of asking again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


class CachedCheck:
    def __init__(
        self, check: Callable[[], Awaitable[None]], *, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._check = check  # returns when healthy, raises otherwise
        self._ttl = ttl
        self._clock = clock
        self._lock = asyncio.Lock()
        self._answer: bool | None = None
        self._answered_at = 0.0

    async def __call__(self) -> bool:
        async with self._lock:
            if self._answer is not None and self._clock() - self._answered_at < self._ttl:
                return self._answer
            try:
                await self._check()
                answer = True
            except Exception:
                answer = False
            self._answer, self._answered_at = answer, self._clock()
            return answer
