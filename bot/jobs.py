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
from dataclasses import dataclass

from bot.balance import BalanceTooLow, BalanceWatch
from bot.ledger import COST_PER_JOB, JobRecord, JobStatus, Ledger, LimitExceeded, Usage
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
        )

    def log_context(self, project_id: str | None = None) -> str:
        ids = f"guild={self.guild_id} user={self.user_id} interaction={self.interaction_id}"
        return f"{ids} project={project_id}" if project_id else ids


@dataclass
class JobResult:
    project: ImageProject
    file: DownloadedFile | None  # None when the output could not be fetched: show the link instead
    credits_charged: int
    usage: Usage | None  # None when the ledger could not be read: the result goes out all the same
    too_large: bool = False  # larger than the reply can carry, so it was not downloaded: send the link


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
        self._waiting: dict[int, asyncio.Task[object]] = {}
        self._running: dict[int, tuple[asyncio.Task[object], JobEvents]] = {}
        self._member_cancels: set[int] = set()
        self._confirmed: set[int] = set()  # running jobs whose project id Magic Hour has given
        self._creates: set[asyncio.Task[str]] = set()  # creates in flight, shielded from cancellation
        self._sending: set[int] = set()  # interaction ids whose create is in flight
        self.instance_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # claims deliveries
        self._tokens_cleared_at = float("-inf")
        self._background: set[asyncio.Task[None]] = set()
        self.project_events = project_events  # webhook wake-ups; None: polling only
        self.metrics = metrics
        if metrics is not None:
            metrics.watch_slots(lambda: self.slots.waiting, lambda: self.slots.in_use)
        # How the adapter reaches the member of a job this process did not start (held jobs a webhook resolves).
        self.events_for_record: EventsFactory | None = None

    def on_settled(self, listener: SettledListener) -> None:
        """Call `listener(guild_id)` after every job that settles (e.g. the credit alerts)."""
        self._settled_listeners.append(listener)

    # -- live jobs -------------------------------------------------------------------------------

    def member_active(self, guild_id: int, user_id: int) -> int:
        return self._active[(guild_id, user_id)]

    async def run(
        self, request: JobRequest, events: JobEvents, refresh: InputRefresher | None = None
    ) -> JobResult | None:
        """Run one job for a member; expected failures go to `events.failed`, never up the stack."""
        try:
            return await self._run(request, events, refresh)
        except Expected as error:
            self._log_failure(request, error)
            if self.metrics is not None and not isinstance(error, JobFailedError | StillRunning):  # counted later
                self.metrics.job_ended(type(error).__name__)
            await events.failed(error)
            return None

    def cancel(self, interaction_id: int) -> bool:
        """Cancel a job still waiting for a slot (the Cancel button); pressing twice is one cancel.

        Running jobs cannot be cancelled: Magic Hour has already charged for them.
        """
        task = self._waiting.get(interaction_id)
        if task is None or task.done():
            return False
        if interaction_id not in self._member_cancels:
            self._member_cancels.add(interaction_id)
            task.cancel()
        return True

    async def _run(self, request: JobRequest, events: JobEvents, refresh: InputRefresher | None) -> JobResult:
        if not self.accepting:
            raise ShuttingDown()
        key = (request.guild_id, request.user_id)
        if self._active[key] >= self.max_per_member:
            raise MemberBusy(self._active[key], self.max_per_member)
        self._active[key] += 1
        task = asyncio.current_task()
        assert task is not None
        try:
            await self.ledger.reserve(
                interaction_id=request.interaction_id,
                guild_id=request.guild_id,
                channel_id=request.channel_id,
                user_id=request.user_id,
                cost=COST_PER_JOB,
                application_id=request.application_id,
                interaction_token=request.interaction_token,
                input_url=request.image_url,
                background_url=request.background_url,
                name=request.name,
            )
            log.info("job reserved %s credits=%d", request.log_context(), COST_PER_JOB)
            self._waiting[request.interaction_id] = task
            try:
                await self.slots.acquire(events.queued)
            except asyncio.CancelledError:
                self._waiting.pop(request.interaction_id, None)
                by_member = request.interaction_id in self._member_cancels
                self._member_cancels.discard(request.interaction_id)
                await self.ledger.release(request.interaction_id, error="cancelled before it started")
                log.info("job cancelled while queued %s", request.log_context())
                if by_member and self.accepting:
                    while task.cancelling():
                        task.uncancel()
                    raise JobCancelled() from None
                raise ShuttingDown() from None
            self._waiting.pop(request.interaction_id, None)
            try:
                if not self.accepting:
                    await self.ledger.release(request.interaction_id, error="the bot was shutting down")
                    raise ShuttingDown()
                self._running[request.interaction_id] = (task, events)
                await events.started()
                return await self._submit_and_finish(request, events, refresh)
            finally:
                self._running.pop(request.interaction_id, None)
                self._confirmed.discard(request.interaction_id)
                self.slots.release()
        finally:
            self._active[key] -= 1
            if self._active[key] <= 0:
                del self._active[key]

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
        return await self._finish(request, project, events)

    async def _check_balance(self, request: JobRequest) -> None:
        """Refuse before the create when the account cannot pay: nothing is sent, the hold is released."""
        if self.balance is None:
            return
        try:
            await self.balance.ensure_affordable(COST_PER_JOB)
        except BalanceTooLow as error:
            await self.ledger.release(request.interaction_id, error=str(error))
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
        self._confirmed.add(request.interaction_id)
        return project_id

    async def _create_and_record(self, request: JobRequest) -> str:
        assets = {"image_file_path": request.image_url}
        if request.background_url:
            assets["background_image_file_path"] = request.background_url
        # From here a restart holds the credits instead of releasing them: the create may happen.
        if not await self.ledger.mark_sending(request.interaction_id):
            raise JobCancelled()  # the job was settled meanwhile (e.g. released by a newer process)
        self._sending.add(request.interaction_id)
        try:
            return await self._send_create(request, assets)
        finally:
            self._sending.discard(request.interaction_id)

    async def _send_create(self, request: JobRequest, assets: dict[str, str]) -> str:
        try:
            created = await self.client.v1.image_background_remover.create(assets=assets, name=request.name)
        except asyncio.CancelledError:
            await asyncio.shield(self.ledger.mark_unknown(request.interaction_id, error=CREATE_CUT_SHORT))
            log.warning("create cut short by shutdown; the job is held %s", request.log_context())
            raise
        except Exception as error:
            if create_may_have_happened(error):
                # The request may have reached Magic Hour: keep the credits counted ("held") until resolved.
                await self.ledger.mark_unknown(request.interaction_id, error=str(error)[:500])
            else:
                await self.ledger.release(request.interaction_id, error=f"Magic Hour refused the job: {error}"[:500])
            raise
        await self.ledger.mark_submitted(
            request.interaction_id, project_id=created.id, credits_charged=created.credits_charged
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

    async def _finish(self, request: JobRequest, project: ImageProject, events: JobEvents) -> JobResult:
        learned_at = time.perf_counter()
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
        usage: Usage | None = None
        try:
            usage = await self.ledger.usage(request.guild_id, user_id=request.user_id)
        except Exception:
            log.exception("could not read the usage; delivering without it %s", request.log_context(project.id))
        result = JobResult(
            project=project, file=file, credits_charged=project.credits_charged, usage=usage, too_large=too_large
        )
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
            if file is not None:
                file.close()
        if delivered and self.metrics is not None:
            self.metrics.delivered(time.perf_counter() - learned_at)
        try:
            await self.ledger.settle(
                request.interaction_id, status=JobStatus.COMPLETE, credits_charged=project.credits_charged
            )
            if delivered:
                await self.ledger.mark_delivered(request.interaction_id)
        except Exception:
            # The ledger retried and gave up; the member has the result, so this is for the owner only.
            # The job stays open in the ledger (still counted) and the next start settles it.
            log.exception("could not record the settled job %s", request.log_context(project.id))
            return result
        if not delivered:
            log.warning("the result reached no one; it stays in the ledger %s", request.log_context(project.id))
        log.info("job complete %s credits_charged=%d", request.log_context(project.id), project.credits_charged)
        if self.metrics is not None:
            self.metrics.job_ended("complete", project_id=project.id, credits=project.credits_charged)
        await self._notify_settled(request.guild_id)
        return result

    async def _claim_delivery(self, request: JobRequest) -> bool:
        """At most one process delivers a job; if the claim cannot be written, deliver anyway (paid for)."""
        try:
            return await self.ledger.claim_delivery(request.interaction_id, self.instance_id)
        except Exception:
            log.exception("could not claim the delivery; delivering anyway %s", request.log_context())
            return True

    def in_flight(self) -> frozenset[int]:
        """Interaction ids of jobs whose create this process is sending right now (not to be released)."""
        return frozenset(self._sending)

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
        self.resume(record, self.events_for_record(record))
        return True

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
        queued = list(self._waiting.values())
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
            try:
                await events.interrupted(resumable=interaction_id in self._confirmed)
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
