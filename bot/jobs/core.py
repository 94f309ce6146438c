"""What every part of the runner shares: its collaborators, its settings, the phase book, and housekeeping."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bot.balance import BalanceWatch
from bot.imaging import ImageWorker
from bot.ledger import JobRecord, Ledger, RequestRecord
from bot.magic_hour import AsyncClient, MagicHourError, PollSchedule
from bot.metrics import Metrics
from bot.project_events import ProjectEvents
from bot.slots import SlotQueue

from .cleanup import DeletePolicy, Janitor
from .events import RequestEventsFactory
from .model import ImageInput, ImageJob, options_from_json
from .phases import Phase, PhaseBook

log = logging.getLogger("bot.jobs")

HOUSEKEEPING_SECONDS = 60.0
SettledListener = Callable[[int | None], Awaitable[None]]


class RunnerCore:
    def __init__(
        self,
        client: AsyncClient,
        ledger: Ledger,
        *,
        max_concurrent: int = 16,
        max_per_member: int = 1,
        slow_after: float = 45.0,
        deadline: float = 600.0,
        resume_deadline: float = 24 * 3600.0,
        max_output_bytes: int | None = None,
        poll_policy: PollSchedule | None = None,
        balance: BalanceWatch | None = None,
        project_events: ProjectEvents | None = None,
        metrics: Metrics | None = None,
        images: ImageWorker | None = None,
        delete_results: DeletePolicy = DeletePolicy.PRIVATE,
    ) -> None:
        self.client = client
        self.ledger = ledger
        self.slots = SlotQueue(max_concurrent)
        self.max_per_member = max_per_member
        self.slow_after = min(slow_after, deadline)
        self.deadline = deadline
        self.resume_deadline = resume_deadline
        self.max_output_bytes = max_output_bytes
        self.poll_policy = poll_policy  # None: the client's own schedule
        self.balance = balance  # None: no balance check before a create
        self.project_events = project_events  # webhook wake-ups; None: polling only
        self.metrics = metrics
        self.images = images  # None: options are not applied (results go out as Magic Hour made them)
        self.delete_results = delete_results
        self.janitor: Janitor | None = None  # set by whoever runs the deletions (resources)
        self.phases = PhaseBook()
        self.accepting = True
        self._drained = False
        self.instance_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # claims deliveries
        self._settled_listeners: list[SettledListener] = []
        self._creates: set[asyncio.Task[str]] = set()  # shielded creates: their answer must outlive a cancel
        self._background: set[asyncio.Task[None]] = set()  # work for no one job (resuming a request, a lookup)
        self._housekept_at = float("-inf")
        # How the adapter reaches the member of a request this process did not start (restart, a held job found).
        self.events_for_request: RequestEventsFactory | None = None
        if metrics is not None:
            metrics.watch_slots(lambda: self.slots.waiting, lambda: self.slots.in_use)
            metrics.watch_phases(lambda: {phase.value: count for phase, count in self.phases.counts().items()})

    def on_settled(self, listener: SettledListener) -> None:
        """Call `listener(guild_id)` after every job that settles (e.g. the credit alerts); the guild id is the
        paying server's, None when a member's own install paid."""
        self._settled_listeners.append(listener)

    def deletes(self, *, private: bool) -> bool:
        """Whether a request's projects are deleted at Magic Hour once delivered (DELETE_RESULTS_AFTER_DELIVERY)."""
        return self.delete_results is DeletePolicy.ALL or (self.delete_results is DeletePolicy.PRIVATE and private)

    def member_active(self, user_id: int) -> int:
        """The member's requests in flight, wherever they were made (a request of five images counts once)."""
        return self.phases.member_requests(user_id)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _end(self, job: ImageJob) -> None:
        """This process is done with the job, if it is this task's to end."""
        self.phases.end(job.key, owner=asyncio.current_task())

    async def _notify_settled(self, guild_id: int | None) -> None:
        await self._housekeeping()
        for listener in self._settled_listeners:
            try:
                await listener(guild_id)
            except Exception:
                log.exception("a settled-job listener failed guild=%s", guild_id)

    async def _housekeeping(self) -> None:
        """At most once a minute: forget expired interaction tokens (credentials) and old webhook events."""
        if time.monotonic() - self._housekept_at < HOUSEKEEPING_SECONDS:
            return
        self._housekept_at = time.monotonic()
        try:
            await self.ledger.clear_expired_tokens()
            horizon = self.ledger.now() - timedelta(seconds=self.resume_deadline)
            await self.ledger.prune_webhook_events(horizon)
        except Exception:
            log.exception("ledger housekeeping failed; trying again after the next job")

    def _log_failure(self, job: ImageJob, error: BaseException) -> None:
        level = logging.WARNING if isinstance(error, MagicHourError) else logging.INFO
        log.log(level, "job ended without a result %s reason=%s: %s", job.log_context(), type(error).__name__, error)

    def _count_end(self, outcome: str, *, project_id: str | None = None, credits: int = 0) -> None:
        if self.metrics is not None:
            self.metrics.job_ended(outcome, project_id=project_id, credits=credits)


def image_job(request: RequestRecord, record: JobRecord) -> ImageJob:
    """A job the ledger holds, with its request's origin: how restarts and webhooks rebuild it."""
    image = ImageInput(record.input_url or "", record.input_filename, record.name)
    return ImageJob(
        request.origin,
        record.position,
        image,
        record.background_url,
        payer=request.payer,
        options=options_from_json(request.options),
        private=request.private,
    )


FOLLOWING = (Phase.CONFIRMED, Phase.DELIVERING)
"""Phases in which Magic Hour has confirmed the job: a restart delivers it."""
