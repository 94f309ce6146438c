"""Image work off the event loop, a bounded number at a time.

Decoding and encoding a large image takes seconds of CPU and hundreds of MB; on the event loop it would
stall every interaction, and a burst run all at once would exhaust a small dyno's memory. A dedicated
pool of `max_parallel` threads bounds both: its threads are the only ones that run image work, so even
a caller that gives up (its task cancelled) cannot let more run at once, since a running thread cannot
be stopped and the pool keeps its slot until it finishes. Pillow releases the GIL for most of its C
work, so two threads do overlap on two cores.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import ParamSpec, Self, TypeVar

from .decoding import configure_pillow

P = ParamSpec("P")
R = TypeVar("R")


class ImageWorker:
    """`await worker.run(process, data, options)`: at most `max_parallel` image functions run at once."""

    def __init__(self, max_parallel: int = 2) -> None:
        if max_parallel < 1:
            raise ValueError("max_parallel must be at least 1")
        configure_pillow()
        self.max_parallel = max_parallel
        self._slots = asyncio.Semaphore(max_parallel)
        self._pool = ThreadPoolExecutor(max_workers=max_parallel, thread_name_prefix="imaging")
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Calls waiting for a free slot (for metrics, or to tell a member they are in line)."""
        return self._waiting

    async def run(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """`fn(*args, **kwargs)` in one of the pool's threads, once a slot is free; its result or its exception."""
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self._pool, call)
        finally:
            self._slots.release()

    def close(self) -> None:
        """Let running work finish in its threads, drop work not yet started; returns at once."""
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
