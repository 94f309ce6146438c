"""Keeps the job-duration estimate in the ledger's meta table, so a restart does not start over from the prior.

The window is small (a few hundred numbers as JSON under one key, with the prior when a change of speed
re-centred it), and is saved at most once per `min_interval` after an observation: a burst of
completions costs one write, not one per job. Earlier releases stored a plain list; it still loads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.magic_hour.durations import DurationEstimate

log = logging.getLogger(__name__)

META_KEY = "magic_hour.job_durations"
Sleep = Callable[[float], Awaitable[None]]


class MetaStore(Protocol):
    """The part of Ledger this needs."""

    async def get_meta(self, key: str) -> str | None: ...

    async def set_meta(self, key: str, value: str) -> None: ...


async def load_estimate(store: MetaStore, *, key: str = META_KEY, window: int = 200) -> DurationEstimate:
    """The stored estimate, or one with only the shipped prior if nothing (or something unreadable) is stored."""
    text = await store.get_meta(key)
    if text is None:
        return DurationEstimate(window=window)
    try:
        return DurationEstimate.from_json(text, window=window)
    except ValueError:
        log.warning("stored job durations under %s are unreadable; starting from the prior", key)
        return DurationEstimate(window=window)


class DurationKeeper:
    """Saves `estimate` to `store` after observations, throttled; close() writes what is pending."""

    def __init__(
        self,
        store: MetaStore,
        estimate: DurationEstimate,
        *,
        key: str = META_KEY,
        min_interval: float = 30.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.store = store
        self.estimate = estimate
        self.key = key
        self.min_interval = min_interval
        self._sleep = sleep
        self._dirty = False
        self._pending: asyncio.Task[None] | None = None
        self._closed = False
        self.saves = 0
        estimate.add_listener(self._changed)

    def _changed(self) -> None:
        self._dirty = True
        if not self._closed and (self._pending is None or self._pending.done()):
            self._pending = asyncio.get_running_loop().create_task(self._save_while_dirty())

    async def _save_while_dirty(self) -> None:
        try:
            while self._dirty and not self._closed:
                await self.save()
                await self._sleep(self.min_interval)  # observations meanwhile wait for the next round
        except asyncio.CancelledError:
            raise
        except Exception as error:  # losing an estimate update must never break a job
            log.warning("saving job durations failed: %s", type(error).__name__)
        finally:
            self._pending = None

    async def save(self) -> None:
        self._dirty = False
        await self.store.set_meta(self.key, self.estimate.to_json())
        self.saves += 1

    async def close(self) -> None:
        """Stop the throttle and write any unsaved observation now (call at shutdown, ledger still open)."""
        self._closed = True
        if self._pending is not None and not self._pending.done():
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pending
        self._pending = None
        if self._dirty:
            await self.save()
