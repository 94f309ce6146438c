"""What a request tells its audience. The adapter renders these as Discord messages; tests record them.

Every hook is optional (a no-op here). `RequestEvents` is a request of one or more images; `JobEvents` is
one image on its own: a request of one, or an image that ends after its request's final message.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.ledger import RequestRecord
from bot.magic_hour import ProjectStatus

from .model import JobResult, RequestResult


class JobEvents:
    """One image's audience."""

    async def queued(self, position: int) -> None:
        """Waiting for a free slot, at this place in line."""

    async def started(self) -> None:
        """A slot is free and the job goes to Magic Hour: a Cancel button no longer applies."""

    async def status(self, status: ProjectStatus) -> None:
        """Magic Hour reported a new status."""

    async def slow(self) -> None:
        """The job takes longer than usual; it is still being tracked."""

    async def deliver(self, result: JobResult) -> bool:
        """Hand the result over; True when a message really carried it. Raising is logged; the job settles anyway."""
        return False

    async def failed(self, error: BaseException) -> None:
        """The job ended without a result."""

    async def interrupted(self, resumable: bool) -> None:
        """The bot is shutting down before the job ended.

        `resumable`: Magic Hour confirmed the job, so the next start delivers it. Otherwise nobody can
        promise a result: the create's outcome is unknown and its credits are held.
        """


class RequestEvents:
    """A request's audience. `image` is an image's position in the request; the request is queued and started
    as a whole (its first image to get a slot starts it), and each image reports its own status and end."""

    async def queued(self, position: int) -> None:
        """Waiting for a free slot, at this place in line."""

    async def started(self) -> None:
        """The first image goes to Magic Hour: a Cancel button no longer applies."""

    async def status(self, image: int, status: ProjectStatus) -> None:
        """Magic Hour reported a new status for one image."""

    async def slow(self, image: int) -> None:
        """One image takes longer than usual; it is still being tracked."""

    async def image_ended(self, image: int, ok: bool) -> None:
        """One image has its result (ok) or its reason for having none; the others may still run."""

    async def deliver(self, result: RequestResult) -> frozenset[int]:
        """Hand every result over in as few messages as fit; returns the positions whose result arrived."""
        return frozenset()

    async def failed(self, error: BaseException) -> None:
        """The request ended with nothing to show (refused, cancelled, or its only image failed)."""

    async def interrupted(self, resumable: bool) -> None:
        """The bot is shutting down before the request ended (see `JobEvents.interrupted`)."""

    def later(self, image: int, filename: str | None = None) -> JobEvents:
        """Who hears of an image that ends after the request's final message (past its deadline, held)."""
        return JobEvents()


RequestEventsFactory = Callable[[RequestRecord], RequestEvents]
"""How the adapter reaches the member of a request this process did not start (restart, webhook)."""


class SingleImage(RequestEvents):
    """A request of one image, told through the one-job `JobEvents` hooks."""

    def __init__(self, events: JobEvents) -> None:
        self.events = events

    async def queued(self, position: int) -> None:
        await self.events.queued(position)

    async def started(self) -> None:
        await self.events.started()

    async def status(self, image: int, status: ProjectStatus) -> None:
        await self.events.status(status)

    async def slow(self, image: int) -> None:
        await self.events.slow()

    async def deliver(self, result: RequestResult) -> frozenset[int]:
        [outcome] = result.delivered
        assert outcome.result is not None
        return frozenset({outcome.position}) if await self.events.deliver(outcome.result) else frozenset()

    async def failed(self, error: BaseException) -> None:
        await self.events.failed(error)

    async def interrupted(self, resumable: bool) -> None:
        await self.events.interrupted(resumable)

    def later(self, image: int, filename: str | None = None) -> JobEvents:
        return self.events


class ImageProgress(JobEvents):
    """One image's progress, forwarded to its request's audience."""

    def __init__(self, events: RequestEvents, position: int) -> None:
        self.events = events
        self.position = position

    async def status(self, status: ProjectStatus) -> None:
        await self.events.status(self.position, status)

    async def slow(self) -> None:
        await self.events.slow(self.position)
