"""A first-come, first-served limit on jobs in flight that can tell a waiter its place in line.

asyncio.Semaphore wakes waiters fairly but cannot say how many are ahead, and a member waiting for a
slot deserves to see "position 3" rather than silence; so the line is kept explicitly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

PositionCallback = Callable[[int], Awaitable[None]]


class SlotQueue:
    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.in_use = 0
        self._waiters: list[tuple[asyncio.Future[None], PositionCallback | None]] = []
        self._announcements: set[asyncio.Task[None]] = set()

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self, on_position: PositionCallback | None = None) -> None:
        """Wait for a slot; while waiting, report the 1-based position in line on each change."""
        if self.in_use < self.capacity and not self._waiters:
            self.in_use += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (future, on_position)
        self._waiters.append(entry)
        try:
            if on_position is not None:
                await on_position(len(self._waiters))
            await future
        except asyncio.CancelledError:
            if entry in self._waiters:
                self._waiters.remove(entry)
                self._announce_positions()
            elif future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as the waiter gave up: pass it on
            raise

    def release(self) -> None:
        while self._waiters:
            future, _ = self._waiters.pop(0)
            if not future.done():
                future.set_result(None)  # the slot passes straight to the next waiter
                self._announce_positions()
                return
        self.in_use -= 1

    def _announce_positions(self) -> None:
        for position, (_, callback) in enumerate(self._waiters, start=1):
            if callback is not None:
                task = asyncio.get_running_loop().create_task(callback(position))
                self._announcements.add(task)
                task.add_done_callback(self._announcements.discard)
