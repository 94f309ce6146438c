"""The background-removal job, start to end: reserve → create → poll → download → deliver → settle.

Nothing here knows about Discord. The cogs turn an interaction into a `JobRequest` and a `JobEvents`
implementation into message edits; restart recovery feeds records from the ledger through the same
path. The order of steps is chosen so that a crash at any point loses neither credits nor results:
the reservation is written before Magic Hour is called, the project id right after it answers, and the
job is settled only after the result has been handed over (a crash in between re-delivers it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from bot.balance import BalanceTooLow, BalanceWatch
from bot.ledger import COST_PER_JOB, ImageSpec, JobRecord, JobStatus, Ledger, LimitExceeded, RequestRecord, Usage
from bot.magic_hour import (
    AsyncClient,
    DownloadedFile,
    ImageProject,
    JobFailedError,
    MagicHourError,
    OutputTooLargeError,
    PollSchedule,
    PollTimeoutError,
    ProjectStatus,
    create_may_have_happened,
    is_input_fetch_failure,
)
from bot.magic_hour.client import StatusCallback
from bot.metrics import Metrics
from bot.project_events import ProjectEvents
from bot.slots import SlotQueue

log = logging.getLogger("bot.jobs")


@dataclass(frozen=True)
class JobRequest:
    """One image's job. A request of several images runs one of these per image (`position` tells them apart)."""

    interaction_id: int
    guild_id: int
    channel_id: int
    user_id: int
    image_url: str
    background_url: str | None = None
    name: str | None = None
    application_id: int | None = None
    interaction_token: str | None = None
    upload_limit: int | None = None  # the largest file the reply can carry: a bigger result is sent as a link
    position: int = 0  # the image's place in its request
    input_filename: str | None = None  # the member's file name: the result is named after it

    @classmethod
    def from_record(cls, record: JobRecord) -> JobRequest:
        return cls(
            interaction_id=record.interaction_id,
            guild_id=record.guild_id,
            channel_id=record.channel_id,
            user_id=record.user_id,
            image_url=record.input_url or "",
            background_url=record.background_url,
            name=record.name,
            application_id=record.application_id,
            interaction_token=record.interaction_token,
            position=record.position,
            input_filename=record.input_filename,
        )

    def log_context(self, project_id: str | None = None) -> str:
        ids = f"guild={self.guild_id} user={self.user_id} interaction={self.interaction_id}"
        if self.position:
            ids += f" image={self.position}"
        return f"{ids} project={project_id}" if project_id else ids


@dataclass(frozen=True)
class BatchImage:
    image_url: str
    filename: str | None = None
    name: str | None = None  # the job's name at Magic Hour (its suffix identifies the job for webhooks)


@dataclass(frozen=True)
class BatchRequest:
    """A member's request: one interaction, one or more images, one reservation for all of them."""

    interaction_id: int
    guild_id: int
    channel_id: int
    user_id: int
    images: tuple[BatchImage, ...]
    background_url: str | None = None
    application_id: int | None = None
    interaction_token: str | None = None
    upload_limit: int | None = None
    private: bool = False

    @classmethod
    def single(cls, request: JobRequest) -> BatchRequest:
        image = BatchImage(request.image_url, request.input_filename, request.name)
        return cls(
            interaction_id=request.interaction_id,
            guild_id=request.guild_id,
            channel_id=request.channel_id,
            user_id=request.user_id,
            images=(image,),
            background_url=request.background_url,
            application_id=request.application_id,
            interaction_token=request.interaction_token,
            upload_limit=request.upload_limit,
        )

    def job(self, position: int) -> JobRequest:
        image = self.images[position]
        return JobRequest(
            interaction_id=self.interaction_id,
            guild_id=self.guild_id,
            channel_id=self.channel_id,
            user_id=self.user_id,
            image_url=image.image_url,
            background_url=self.background_url,
            name=image.name,
            application_id=self.application_id,
            interaction_token=self.interaction_token,
            upload_limit=self.upload_limit,
            position=position,
            input_filename=image.filename,
        )

    def log_context(self) -> str:
        return f"guild={self.guild_id} user={self.user_id} interaction={self.interaction_id} images={len(self.images)}"


@dataclass
class JobResult:
    project: ImageProject
    file: DownloadedFile | None  # None when the output could not be fetched: show the link instead
    credits_charged: int
    usage: Usage | None  # None when the ledger could not be read: the result goes out all the same
    too_large: bool = False  # larger than the reply can carry, so it was not downloaded: send the link


@dataclass
class ImageOutcome:
    """How one image of a request ended: a result to deliver, or the reason it has none."""

    position: int
    filename: str | None
    result: JobResult | None = None
    error: BaseException | str | None = None  # an `Expected` error, or a reason recorded by an earlier process


@dataclass
class BatchResult:
    """Everything a request's final message says: each image in the member's order, and the server's usage."""

    outcomes: list[ImageOutcome]
    usage: Usage | None

    @property
    def delivered(self) -> list[ImageOutcome]:
        return [outcome for outcome in self.outcomes if outcome.result is not None]

    @property
    def failures(self) -> list[ImageOutcome]:
        return [outcome for outcome in self.outcomes if outcome.result is None]

    @property
    def credits_charged(self) -> int:
        return sum(outcome.result.credits_charged for outcome in self.delivered if outcome.result is not None)


class MemberBusy(Exception):
    def __init__(self, active: int, limit: int) -> None:
        super().__init__(f"member already has {active} job(s) running (limit {limit})")
        self.active = active
        self.limit = limit


class ShuttingDown(Exception):
    """The bot is restarting and takes no new jobs."""


class JobCancelled(Exception):
    """The member cancelled while waiting for a free slot; nothing was charged."""


class StillRunning(Exception):
    """Magic Hour has not finished by the deadline; the job is tracked on and delivered when it ends."""

    def __init__(self, project_id: str) -> None:
        super().__init__(f"project {project_id} is still running")
        self.project_id = project_id


CREATE_DRAIN_SECONDS = 5.0
TOKEN_SWEEP_SECONDS = 60.0
CREATE_CUT_SHORT = "the bot shut down while Magic Hour was creating the job"
Expected = (BalanceTooLow, MagicHourError, LimitExceeded, MemberBusy, ShuttingDown, JobCancelled, StillRunning)
InputRefresher = Callable[[JobRequest], Awaitable[JobRequest | None]]
SettledListener = Callable[[int], Awaitable[None]]
EventsFactory = Callable[[JobRecord], "JobEvents"]


class JobEvents:
    """What a job tells its audience; every hook is optional. The cogs render these as message edits."""

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
        """The job ended without a result (one of `Expected`)."""

    async def interrupted(self, resumable: bool) -> None:
        """The bot is shutting down before the job ended.

        `resumable`: Magic Hour confirmed the job, so the next start delivers it. Otherwise nobody can
        promise a result: the create's outcome is unknown and its credits are held.
        """


class BatchEvents:
    """What a request of one or more images tells its audience; every hook is optional.

    `image` is an image's position in the request. The request is queued and started as a whole (the
    first image to get a slot starts it); each image reports its own status and end.
    """

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

    async def deliver(self, result: BatchResult) -> frozenset[int]:
        """Hand every result over in as few messages as fit; returns the positions whose result arrived."""
        return frozenset()

    async def failed(self, error: BaseException) -> None:
        """The request ended with nothing to show (refused, cancelled, or its only image failed)."""

    async def interrupted(self, resumable: bool) -> None:
        """The bot is shutting down before the request ended (see `JobEvents.interrupted`)."""

    def later(self, image: int, filename: str | None = None) -> JobEvents:
        """Who hears of an image that ends after the request's final message (it outlived its deadline)."""
        return JobEvents()


class _SingleEvents(BatchEvents):
    """A request of one image, told through the one-job `JobEvents` hooks (the messages single jobs always had)."""

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

    async def deliver(self, result: BatchResult) -> frozenset[int]:
        [outcome] = result.delivered
        assert outcome.result is not None
        return frozenset({outcome.position}) if await self.events.deliver(outcome.result) else frozenset()

    async def failed(self, error: BaseException) -> None:
        await self.events.failed(error)

    async def interrupted(self, resumable: bool) -> None:
        await self.events.interrupted(resumable)

    def later(self, image: int, filename: str | None = None) -> JobEvents:
        return self.events


class _ImageEvents(JobEvents):
    """One image's progress, forwarded to its request's audience."""

    def __init__(self, events: BatchEvents, position: int) -> None:
        self.events = events
        self.position = position

    async def status(self, status: ProjectStatus) -> None:
        await self.events.status(self.position, status)

    async def slow(self) -> None:
        await self.events.slow(self.position)


@dataclass
class _Batch:
    """A running request's shared state: whether it has started, for the single `started` hook and drain."""

    request: BatchRequest
    events: BatchEvents
    task: asyncio.Task[object]
    started: bool = False


RequestEventsFactory = Callable[[RequestRecord], BatchEvents]


class JobRunner:
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
        self._settled_listeners: list[SettledListener] = []
        self.accepting = True
        self._drained = False
        self._active: Counter[tuple[int, int]] = Counter()
        self._waiting: dict[int, set[asyncio.Task[ImageOutcome]]] = {}  # per request: its images waiting for a slot
        self._running: dict[int, tuple[asyncio.Task[object], BatchEvents]] = {}  # requests with an image started
        self._member_cancels: set[int] = set()
        self._confirmed: set[tuple[int, int]] = set()  # running images whose project id Magic Hour has given
        self._creates: set[asyncio.Task[str]] = set()  # creates in flight, shielded from cancellation
        self._sending: set[tuple[int, int]] = set()  # (interaction id, position) whose create is in flight
        self.instance_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # claims deliveries
        self._tokens_cleared_at = float("-inf")
        self._background: set[asyncio.Task[None]] = set()
        self.project_events = project_events  # webhook wake-ups; None: polling only
        self.metrics = metrics
        if metrics is not None:
            metrics.watch_slots(lambda: self.slots.waiting, lambda: self.slots.in_use)
        # How the adapter reaches the member of a job this process did not start (held jobs a webhook resolves).
        self.events_for_record: EventsFactory | None = None
        # The same for a request of several images: its late images then follow as messages of their own.
        self.events_for_request: RequestEventsFactory | None = None

    def on_settled(self, listener: SettledListener) -> None:
        """Call `listener(guild_id)` after every job that settles (e.g. the credit alerts)."""
        self._settled_listeners.append(listener)

    # -- live jobs -------------------------------------------------------------------------------

    def member_active(self, guild_id: int, user_id: int) -> int:
        """The member's requests in flight (a request of five images counts once)."""
        return self._active[(guild_id, user_id)]

    async def run(
        self, request: JobRequest, events: JobEvents, refresh: InputRefresher | None = None
    ) -> JobResult | None:
        """Run one image for a member: a request of one; expected failures go to `events.failed`."""
        batch = await self.run_batch(BatchRequest.single(request), _SingleEvents(events), refresh)
        return batch.outcomes[0].result if batch is not None else None

    async def run_batch(
        self, request: BatchRequest, events: BatchEvents, refresh: InputRefresher | None = None
    ) -> BatchResult | None:
        """Run a request of one or more images; expected failures go to `events`, never up the stack.

        None when the request ended with nothing to deliver (refused, cancelled, its only image failed).
        """
        try:
            return await self._run_batch(request, events, refresh)
        except Expected as error:
            log.log(
                logging.WARNING if isinstance(error, MagicHourError) else logging.INFO,
                "request ended without a result %s reason=%s: %s",
                request.log_context(),
                type(error).__name__,
                error,
            )
            if self.metrics is not None:
                self.metrics.job_ended(type(error).__name__)
            await events.failed(error)
            return None

    def cancel(self, interaction_id: int) -> bool:
        """Cancel a request's images still waiting for a slot (the Cancel button); pressing twice is one cancel.

        Running images cannot be cancelled: Magic Hour has already charged for them.
        """
        tasks = [task for task in self._waiting.get(interaction_id, ()) if not task.done()]
        if not tasks:
            return False
        if interaction_id not in self._member_cancels:
            self._member_cancels.add(interaction_id)
            for task in tasks:
                task.cancel()
        return True

    async def _run_batch(
        self, request: BatchRequest, events: BatchEvents, refresh: InputRefresher | None
    ) -> BatchResult | None:
        if not self.accepting:
            raise ShuttingDown()
        key = (request.guild_id, request.user_id)
        if self._active[key] >= self.max_per_member:
            raise MemberBusy(self._active[key], self.max_per_member)
        self._active[key] += 1
        task = asyncio.current_task()
        assert task is not None
        batch = _Batch(request, events, task)
        try:
            await self.ledger.reserve_request(
                interaction_id=request.interaction_id,
                guild_id=request.guild_id,
                channel_id=request.channel_id,
                user_id=request.user_id,
                images=[
                    ImageSpec(image.image_url, request.background_url, image.name, image.filename)
                    for image in request.images
                ],
                cost=COST_PER_JOB,
                application_id=request.application_id,
                interaction_token=request.interaction_token,
                private=request.private,
            )
            log.info("request reserved %s credits=%d", request.log_context(), COST_PER_JOB * len(request.images))
            images = [
                asyncio.ensure_future(self._run_image(request.job(position), batch, refresh))
                for position in range(len(request.images))
            ]
            self._waiting[request.interaction_id] = set(images)
            try:
                outcomes = list(await asyncio.gather(*images))
            except asyncio.CancelledError:
                for image in images:
                    image.cancel()
                raise
            return await self._conclude(request.job(0), outcomes, events)
        finally:
            self._waiting.pop(request.interaction_id, None)
            self._member_cancels.discard(request.interaction_id)
            self._running.pop(request.interaction_id, None)
            self._active[key] -= 1
            if self._active[key] <= 0:
                del self._active[key]

    async def _run_image(self, request: JobRequest, batch: _Batch, refresh: InputRefresher | None) -> ImageOutcome:
        """One image, from its slot to its result; never raises an `Expected` error (it becomes the outcome)."""
        outcome = ImageOutcome(request.position, request.input_filename)
        task = asyncio.current_task()
        assert task is not None
        try:
            await self.slots.acquire(batch.events.queued)
        except asyncio.CancelledError:
            self._waiting.get(request.interaction_id, set()).discard(task)
            by_member = request.interaction_id in self._member_cancels
            await self.ledger.release(
                request.interaction_id, error="cancelled before it started", position=request.position
            )
            log.info("job cancelled while queued %s", request.log_context())
            if (by_member and self.accepting) or not batch.task.cancelling():
                while task.cancelling():
                    task.uncancel()
                return self._without_result(outcome, JobCancelled() if by_member and self.accepting else ShuttingDown())
            raise
        self._waiting.get(request.interaction_id, set()).discard(task)
        try:
            if not self.accepting:
                await self.ledger.release(
                    request.interaction_id, error="the bot was shutting down", position=request.position
                )
                return self._without_result(outcome, ShuttingDown())
            if not batch.started:
                batch.started = True
                self._running[request.interaction_id] = (batch.task, batch.events)
                await batch.events.started()
            outcome.result = await self._submit_and_finish(
                request, _ImageEvents(batch.events, request.position), refresh
            )
        except Expected as error:
            self._log_failure(request, error)
            if self.metrics is not None and not isinstance(error, JobFailedError | StillRunning):  # counted later
                self.metrics.job_ended(type(error).__name__)
            if isinstance(error, StillRunning):
                self._track_later(
                    request, error.project_id, batch.events.later(request.position, request.input_filename)
                )
            outcome.error = error
        finally:
            self._confirmed.discard((request.interaction_id, request.position))
            self.slots.release()
        try:
            await batch.events.image_ended(request.position, outcome.result is not None)
        except Exception:
            log.exception("could not show an image's end %s", request.log_context())
        return outcome

    def _without_result(self, outcome: ImageOutcome, error: BaseException) -> ImageOutcome:
        if self.metrics is not None:
            self.metrics.job_ended(type(error).__name__)
        outcome.error = error
        return outcome

    async def _conclude(
        self, first: JobRequest, outcomes: list[ImageOutcome], events: BatchEvents
    ) -> BatchResult | None:
        """Deliver what there is in one go, then settle each delivered image; or say why there is nothing."""
        if not any(outcome.result is not None for outcome in outcomes):
            errors = [outcome.error for outcome in outcomes]
            if len(errors) == 1 or len({type(error) for error in errors}) == 1:
                error = errors[0]
                if isinstance(error, BaseException) and (
                    len(errors) == 1 or isinstance(error, JobCancelled | ShuttingDown)
                ):
                    await events.failed(error)
                    return None
        usage: Usage | None = None
        try:
            usage = await self.ledger.usage(first.guild_id, user_id=first.user_id)
        except Exception:
            log.exception("could not read the usage; delivering without it %s", first.log_context())
        for outcome in outcomes:
            if outcome.result is not None:
                outcome.result.usage = usage
        return await self._deliver_and_settle(first, BatchResult(outcomes, usage), events)

    async def _deliver_and_settle(self, first: JobRequest, batch: BatchResult, events: BatchEvents) -> BatchResult:
        """Claim each result, hand all of them over, then settle each: a crash in between re-delivers, never loses."""
        learned_at = time.perf_counter()
        for outcome in batch.delivered:
            assert outcome.result is not None
            if not await self._claim_delivery(replace(first, position=outcome.position)):
                log.info(
                    "another process is delivering this image %s",
                    replace(first, position=outcome.position).log_context(),
                )
                self._close(outcome.result)
                outcome.result = None
                outcome.error = None  # someone else shows it: not a failure either
        shown = [outcome for outcome in batch.outcomes if outcome.result is not None or outcome.error is not None]
        if not shown:
            return batch
        delivered: frozenset[int] = frozenset()
        try:
            delivered = await events.deliver(BatchResult(shown, batch.usage))
        except Exception:
            log.exception("delivery failed %s", first.log_context())
        finally:
            for outcome in batch.delivered:
                assert outcome.result is not None
                self._close(outcome.result)
        if delivered and self.metrics is not None:
            self.metrics.delivered(time.perf_counter() - learned_at)
        for outcome in batch.delivered:
            assert outcome.result is not None
            await self._settle_complete(
                replace(first, position=outcome.position), outcome.result.project, outcome.position in delivered
            )
        return batch

    @staticmethod
    def _close(result: JobResult) -> None:
        if result.file is not None:
            result.file.close()

    async def _settle_complete(self, request: JobRequest, project: ImageProject, delivered: bool) -> None:
        try:
            await self.ledger.settle(
                request.interaction_id,
                status=JobStatus.COMPLETE,
                credits_charged=project.credits_charged,
                position=request.position,
            )
            if delivered:
                await self.ledger.mark_delivered(request.interaction_id, position=request.position)
        except Exception:
            # The ledger retried and gave up; the member has the result, so this is for the owner only.
            # The job stays open in the ledger (still counted) and the next start settles it.
            log.exception("could not record the settled job %s", request.log_context(project.id))
            return
        if not delivered:
            log.warning("the result reached no one; it stays in the ledger %s", request.log_context(project.id))
        log.info("job complete %s credits_charged=%d", request.log_context(project.id), project.credits_charged)
        if self.metrics is not None:
            self.metrics.job_ended("complete", project_id=project.id, credits=project.credits_charged)
        await self._notify_settled(request.guild_id)

    async def _submit_and_finish(
        self, request: JobRequest, events: JobEvents, refresh: InputRefresher | None
    ) -> JobResult:
        await self._check_balance(request)
        project_id = await self._create(request)
        try:
            project = await self._wait(request, project_id, events)
        except JobFailedError as error:
            retry = await self._refreshed(request, refresh) if refresh and is_input_fetch_failure(error) else None
            if retry is None:
                await self._settle_failed(request, error)
                raise
            log.info("input could not be fetched, retrying with a fresh URL %s", request.log_context(project_id))
            request = retry
            project_id = await self._create(request)
            try:
                project = await self._wait(request, project_id, events)
            except JobFailedError as second:
                await self._settle_failed(request, second)
                raise
        return await self._collect(request, project)

    async def _check_balance(self, request: JobRequest) -> None:
        """Refuse before the create when the account cannot pay: nothing is sent, the hold is released."""
        if self.balance is None:
            return
        try:
            await self.balance.ensure_affordable(COST_PER_JOB)
        except BalanceTooLow as error:
            await self.ledger.release(request.interaction_id, error=str(error), position=request.position)
            raise

    async def _refreshed(self, request: JobRequest, refresh: InputRefresher) -> JobRequest | None:
        """A fresh copy of the inputs, or None when there is none (message deleted, CDN link gone)."""
        try:
            return await refresh(request)
        except Exception as error:  # the refresher is the caller's (Discord); any failure means "no retry"
            log.warning("could not refresh the inputs %s: %s", request.log_context(), error)
            return None

    async def _create(self, request: JobRequest) -> str:
        """Create the job and record its project id, shielded: a shutdown must not cut that pair apart.

        If the caller is cancelled (SIGTERM past the grace period), the create still runs to its answer
        in the background and `drain` waits for it; only if that too is cut short is the job recorded
        as held (its outcome unknown), never lost and never released.
        """
        create = asyncio.ensure_future(self._create_and_record(request))
        self._creates.add(create)
        create.add_done_callback(self._creates.discard)
        project_id = await asyncio.shield(create)
        self._confirmed.add((request.interaction_id, request.position))
        return project_id

    async def _create_and_record(self, request: JobRequest) -> str:
        assets = {"image_file_path": request.image_url}
        if request.background_url:
            assets["background_image_file_path"] = request.background_url
        # From here a restart holds the credits instead of releasing them: the create may happen.
        if not await self.ledger.mark_sending(request.interaction_id, position=request.position):
            raise JobCancelled()  # the job was settled meanwhile (e.g. released by a newer process)
        self._sending.add((request.interaction_id, request.position))
        try:
            return await self._send_create(request, assets)
        finally:
            self._sending.discard((request.interaction_id, request.position))

    async def _send_create(self, request: JobRequest, assets: dict[str, str]) -> str:
        try:
            created = await self.client.v1.image_background_remover.create(assets=assets, name=request.name)
        except asyncio.CancelledError:
            await asyncio.shield(
                self.ledger.mark_unknown(request.interaction_id, error=CREATE_CUT_SHORT, position=request.position)
            )
            log.warning("create cut short by shutdown; the job is held %s", request.log_context())
            raise
        except Exception as error:
            if create_may_have_happened(error):
                # The request may have reached Magic Hour: keep the credits counted ("held") until resolved.
                await self.ledger.mark_unknown(
                    request.interaction_id, error=str(error)[:500], position=request.position
                )
            else:
                await self.ledger.release(
                    request.interaction_id,
                    error=f"Magic Hour refused the job: {error}"[:500],
                    position=request.position,
                )
            raise
        await self.ledger.mark_submitted(
            request.interaction_id,
            project_id=created.id,
            credits_charged=created.credits_charged,
            position=request.position,
        )
        log.info("job submitted %s credits_charged=%d", request.log_context(created.id), created.credits_charged)
        if self.balance is not None:
            self.balance.spent(created.credits_charged)
        return created.id

    async def _wait(self, request: JobRequest, project_id: str, events: JobEvents) -> ImageProject:
        async def on_status(project: ImageProject) -> None:
            log.info("job status %s status=%s", request.log_context(project_id), project.status)
            await events.status(project.status)

        started = self.client.now()  # both waits follow one schedule, and the estimate sees the whole duration
        try:
            try:
                return await self._await_project(project_id, on_status, self.slow_after, started)
            except PollTimeoutError:
                await events.slow()
            return await self._await_project(project_id, on_status, self.deadline, started)
        except JobFailedError:
            raise
        except MagicHourError as error:
            # The job exists and is paid for: whatever went wrong with polling, keep tracking it.
            log.warning("polling stopped, tracking in the background %s: %s", request.log_context(project_id), error)
            self._track_later(request, project_id, events)
            raise StillRunning(project_id) from None

    async def _await_project(
        self, project_id: str, on_status: StatusCallback | None, deadline: float, started: float | None
    ) -> ImageProject:
        """Poll until final, or less: with webhooks, an event for the project ends the wait at once.

        `started` None: a job picked up midway (resumed), whose elapsed time says nothing about how long
        jobs take, so it polls on the client's own schedule and teaches the estimate nothing.
        """
        policy = self.poll_policy if started is not None else None
        if self.project_events is None:
            return await self.client.v1.image_projects.wait(
                id=project_id, on_status=on_status, deadline=deadline, policy=policy, started_at=started
            )
        return await self.project_events.wait(
            self.client, project_id, on_status=on_status, deadline=deadline, policy=policy, started_at=started
        )

    async def _collect(self, request: JobRequest, project: ImageProject) -> JobResult:
        """Fetch the result, if it fits what a message can carry; a failed fetch leaves the link to send."""
        file: DownloadedFile | None = None
        too_large = False
        try:
            file = await self.client.v1.image_projects.download(project, max_bytes=self._download_cap(request))
        except OutputTooLargeError as error:
            too_large = True
            log.info(
                "the result is too large to upload, sending the link %s: %s", request.log_context(project.id), error
            )
        except MagicHourError as error:
            log.warning("download failed, the link is delivered instead %s: %s", request.log_context(project.id), error)
        return JobResult(
            project=project, file=file, credits_charged=project.credits_charged, usage=None, too_large=too_large
        )

    async def _finish(self, request: JobRequest, project: ImageProject, events: JobEvents) -> JobResult:
        """One image delivered on its own (resumed, or tracked past its request's final message)."""
        result = await self._collect(request, project)
        try:
            result.usage = await self.ledger.usage(request.guild_id, user_id=request.user_id)
        except Exception:
            log.exception("could not read the usage; delivering without it %s", request.log_context(project.id))
        learned_at = time.perf_counter()
        delivered = False
        try:
            if await self._claim_delivery(request):
                delivered = await events.deliver(result)
            else:
                log.info("another process is delivering this job %s", request.log_context(project.id))
                return result
        except Exception:
            log.exception("delivery failed %s", request.log_context(project.id))
        finally:
            self._close(result)
        if delivered and self.metrics is not None:
            self.metrics.delivered(time.perf_counter() - learned_at)
        await self._settle_complete(request, project, delivered)
        return result

    async def _claim_delivery(self, request: JobRequest) -> bool:
        """At most one process delivers a job; if the claim cannot be written, deliver anyway (paid for)."""
        try:
            return await self.ledger.claim_delivery(request.interaction_id, self.instance_id, position=request.position)
        except Exception:
            log.exception("could not claim the delivery; delivering anyway %s", request.log_context())
            return True

    def in_flight(self) -> frozenset[int]:
        """Interaction ids of requests with a create this process is sending right now (not to be released)."""
        return frozenset(interaction_id for interaction_id, _ in self._sending)

    def _download_cap(self, request: JobRequest) -> int | None:
        """Never fetch more than the reply could carry: past that only the link is of use."""
        caps = [cap for cap in (self.max_output_bytes, request.upload_limit) if cap is not None]
        return min(caps) if caps else None

    async def _settle_failed(self, request: JobRequest, error: JobFailedError) -> None:
        charged = error.project.credits_charged if error.project is not None else 0
        await self.ledger.settle(
            request.interaction_id,
            status=JobStatus.FAILED,
            credits_charged=charged,
            error=f"{error.code}: {error.message}",
            position=request.position,
        )
        if self.metrics is not None:
            self.metrics.job_ended("failed", project_id=error.project_id, credits=charged)
        await self._notify_settled(request.guild_id)

    async def _notify_settled(self, guild_id: int) -> None:
        if time.monotonic() - self._tokens_cleared_at > TOKEN_SWEEP_SECONDS:
            self._tokens_cleared_at = time.monotonic()
            try:
                await self.ledger.clear_expired_tokens()  # a token is a credential for 15 minutes: keep none longer
            except Exception:
                log.exception("could not clear expired interaction tokens")
        for listener in self._settled_listeners:
            try:
                await listener(guild_id)
            except Exception:
                log.exception("a settled-job listener failed guild=%s", guild_id)

    def _log_failure(self, request: JobRequest, error: BaseException) -> None:
        level = logging.WARNING if isinstance(error, MagicHourError) else logging.INFO
        log.log(
            level, "job ended without a result %s reason=%s: %s", request.log_context(), type(error).__name__, error
        )

    # -- jobs that outlive their interaction -----------------------------------------------------

    def _track_later(self, request: JobRequest, project_id: str, events: JobEvents) -> None:
        self._spawn(self._resume(request, project_id, events))

    def resume(self, record: JobRecord, events: JobEvents) -> None:
        """Pick up a job left by an earlier process (or one past its deadline) and see it to the end."""
        if not record.project_id:
            return
        self._spawn(self._resume(JobRequest.from_record(record), record.project_id, events))

    def resume_held(self, record: JobRecord) -> bool:
        """A held job's project turned up (its webhook event named the job): track and deliver it."""
        if self.events_for_record is None or not record.project_id or not self.accepting:
            return False
        self._spawn(self._resume_held(record))
        return True

    async def _resume_held(self, record: JobRecord) -> None:
        assert self.events_for_record is not None and record.project_id is not None
        request = await self.ledger.get_request(record.request_id) if record.request_id else None
        if request is not None and request.images > 1 and self.events_for_request is not None:
            # The request's message went out long ago: this image follows as a message of its own.
            events = self.events_for_request(request).later(record.position, record.input_filename)
        else:
            events = self.events_for_record(record)
        await self._resume(JobRequest.from_record(record), record.project_id, events)

    def resume_requests(self, records: list[JobRecord], events_for: RequestEventsFactory) -> int:
        """Start-up: resume each unfinished image; a request's results go out together, as a live one's do."""
        by_request: dict[str, list[JobRecord]] = {}
        for record in records:
            if record.project_id:
                by_request.setdefault(record.request_id or f"job-{record.id}", []).append(record)
        for request_id, open_jobs in by_request.items():
            self._spawn(self._resume_request(request_id, open_jobs, events_for))
        return len(by_request)

    async def _resume_request(
        self, request_id: str, open_jobs: list[JobRecord], events_for: RequestEventsFactory
    ) -> None:
        first = open_jobs[0]
        stored = await self.ledger.get_request(request_id) if first.request_id else None
        request = stored or RequestRecord(
            id=request_id,
            interaction_id=first.interaction_id,
            guild_id=first.guild_id,
            channel_id=first.channel_id,
            user_id=first.user_id,
            application_id=first.application_id,
            interaction_token=first.interaction_token,
            private=False,
            images=1,
            created_at=first.created_at,
        )
        siblings = await self.ledger.request_jobs(request.id) if stored is not None else list(open_jobs)
        events = events_for(request)
        if any(record.delivered for record in siblings):
            # The request's message went out (these images outlived it): each follows on its own, as it would have.
            for record in open_jobs:
                assert record.project_id is not None
                later = events.later(record.position, record.input_filename)
                self._spawn(self._resume(JobRequest.from_record(record), record.project_id, later))
            return
        resumed = await asyncio.gather(*(self._resume_image(record) for record in open_jobs))
        by_position = {outcome.position: outcome for outcome in resumed}
        outcomes: list[ImageOutcome] = []
        for record in siblings:
            if record.position in by_position:
                outcomes.append(by_position[record.position])
            elif record.status in (JobStatus.FAILED, JobStatus.REFUNDED) or (
                record.status is JobStatus.UNKNOWN and record.project_id is None
            ):
                outcomes.append(
                    ImageOutcome(record.position, record.input_filename, error=record.error or record.status)
                )
        await self._conclude(JobRequest.from_record(first), outcomes, events)

    async def _resume_image(self, record: JobRecord) -> ImageOutcome:
        request = JobRequest.from_record(record)
        outcome = ImageOutcome(record.position, record.input_filename)
        assert record.project_id is not None
        log.info("job resumed %s", request.log_context(record.project_id))
        try:
            project = await self._await_project(record.project_id, None, self.resume_deadline, None)
            outcome.result = await self._collect(request, project)
        except JobFailedError as error:
            await self._settle_failed(request, error)
            self._log_failure(request, error)
            outcome.error = error
        except Expected as error:
            self._log_failure(request, error)  # left in the ledger as it is: counted, and resumed next start
            outcome.error = StillRunning(record.project_id)
        return outcome

    async def _resume(self, request: JobRequest, project_id: str, events: JobEvents) -> None:
        log.info("job resumed %s", request.log_context(project_id))
        try:
            project = await self._await_project(project_id, None, self.resume_deadline, None)
            await self._finish(request, project, events)
        except JobFailedError as error:
            await self._settle_failed(request, error)
            self._log_failure(request, error)
            await events.failed(error)
        except Expected as error:
            self._log_failure(request, error)  # left in the ledger as it is: counted, and resumed next start

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- shutdown ----------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def closing(self, grace: float) -> AsyncIterator[JobRunner]:
        """`async with runner.closing(grace):` drains on the way out, unless the bot already did."""
        try:
            yield self
        finally:
            await self.drain(grace)

    async def drain(self, grace: float) -> None:
        """Stop taking jobs, let running ones finish for `grace` seconds, leave the rest to the next start."""
        if self._drained:
            return
        self._drained = True
        self.accepting = False
        queued = [task for tasks in self._waiting.values() for task in tasks]
        for task in queued:
            task.cancel()  # never started: released, nothing charged, the member is told
        if queued:
            await asyncio.wait(queued, timeout=5)
        running = [task for task, _ in self._running.values()] + list(self._background)
        if running:
            log.info("waiting up to %.0f s for %d running job(s)", grace, len(running))
            _, pending = await asyncio.wait(running, timeout=grace)
        else:
            pending = set()
        for interaction_id, (_, events) in list(self._running.items()):
            confirmed = any(key == interaction_id for key, _ in self._confirmed)
            sending = any(key == interaction_id for key, _ in self._sending)
            try:
                await events.interrupted(resumable=confirmed and not sending)
            except Exception:
                log.exception("could not tell a member about the restart")
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
        if self._creates:
            # A create's answer is the one thing that must not be lost: give it a little longer.
            creates = list(self._creates)
            _, unanswered = await asyncio.wait(creates, timeout=CREATE_DRAIN_SECONDS)
            for create in unanswered:
                create.cancel()  # recorded as held by _create_and_record
            if unanswered:
                await asyncio.wait(unanswered, timeout=5)
        if pending:
            log.info("%d job(s) left recorded; the next start resumes them", len(pending))
