"""Deleting members' results at Magic Hour once they have them (DELETE_RESULTS_AFTER_DELIVERY).

Magic Hour keeps every project and its outputs until someone deletes it; a member's private photo should not
stay there. The runner schedules a deletion in the ledger when a result reached its member (or its request
failed); the janitor carries out what is due, in the background, in whichever process claims it first. A
failed delete is tried again later with a growing delay and never affects anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from enum import StrEnum

from bot.ledger import Ledger
from bot.magic_hour import AsyncClient, NotFoundError

log = logging.getLogger("bot.jobs.cleanup")

SWEEP_SECONDS = 60.0
MAX_ATTEMPTS = 8


class DeletePolicy(StrEnum):
    PRIVATE = "private"  # the projects of private requests (the default)
    ALL = "all"
    NEVER = "never"


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4 … minutes, at most about two hours apart."""
    return timedelta(minutes=min(2**attempts, 128))


class Janitor:
    def __init__(self, client: AsyncClient, ledger: Ledger, *, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self.client = client
        self.ledger = ledger
        self.sweep_seconds = sweep_seconds
        self._wake = asyncio.Event()
        self.deleted = 0

    def wake(self) -> None:
        """A deletion was scheduled: look now rather than at the next sweep."""
        self._wake.set()

    async def sweep(self) -> int:
        """Delete what is due now; returns how many projects were deleted."""
        done = 0
        while due := await self.ledger.claim_due_deletions():
            for item in due:
                try:
                    await self.client.v1.image_projects.delete(id=item.project_id)
                except NotFoundError:
                    pass  # gone already: what we wanted
                except Exception as error:
                    attempts = item.attempts + 1
                    retry_at = None if attempts >= MAX_ATTEMPTS else self.ledger.now() + retry_delay(attempts)
                    log.warning(
                        "could not delete project %s at Magic Hour (try %d): %s%s",
                        item.project_id,
                        attempts,
                        type(error).__name__,
                        "; giving up" if retry_at is None else "",
                    )
                    await self.ledger.deletion_failed(item.job_id, retry_at=retry_at)
                    continue
                await self.ledger.deletion_done(item.job_id)
                done += 1
        self.deleted += done
        return done

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except Exception:
                log.exception("deleting delivered results failed; trying again at the next sweep")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.sweep_seconds):
                    await self._wake.wait()
            self._wake.clear()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Janitor]:
        task = asyncio.ensure_future(self.run())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
