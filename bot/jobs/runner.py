"""The runner: a member's request from reservation to delivery, one task per image, and a clean shutdown.

A request is reserved as a whole, then each image runs in its own task within the bot's slots. Every image
ends in a definite state whatever is raised (its error becomes its outcome; a charged job goes on being
followed), and the request ends only when all its images have: their tasks awaited, their files closed,
the member's count released. Where each image stands lives in the phase book (`phases.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from bot.ledger import COST_PER_JOB
from bot.magic_hour import JobFailedError, MagicHourError

from .errors import EXPECTED, JobCancelled, MemberBusy, ShuttingDown, StillRunning, Unexpected
from .events import ImageProgress, JobEvents, RequestEvents, SingleImage
from .model import ImageJob, ImageOutcome, InputRefresher, JobResult, Request, RequestResult, options_to_json
from .phases import Phase, RequestState
from .recovery import Recovering

log = logging.getLogger("bot.jobs")

CREATE_DRAIN_SECONDS = 5.0


class JobRunner(Recovering):
    # ---- live requests ---------------------------------------------------------------------------------

    async def run(
        self, request: Request, events: RequestEvents | JobEvents, refresh: InputRefresher | None = None
    ) -> RequestResult | None:
        """Run a member's request; every failure goes to `events`, never up the stack (bar a broken ledger).

        None when the request ended with nothing to deliver (refused, cancelled, its only image failed).
        """
        audience = SingleImage(events) if isinstance(events, JobEvents) else events
        try:
            return await self._run(request, audience, refresh)
        except EXPECTED as error:
            log.log(
                logging.WARNING if isinstance(error, MagicHourError) else logging.INFO,
                "request ended without a result %s reason=%s: %s",
                request.log_context(),
                type(error).__name__,
                error,
            )
            self._count_end(type(error).__name__)
            await audience.failed(error)
            return None

    def cancel(self, interaction_id: int) -> bool:
        """Cancel a request's images still waiting for a slot (the Cancel button); pressing twice is one cancel.

        Running images cannot be cancelled: Magic Hour has already charged for them.
        """
        live = next((state for state in self.phases.requests() if state.interaction_id == interaction_id), None)
        queued = [state.task for state in self.phases.of_request(interaction_id) if state.phase is Phase.QUEUED]
        waiting = [task for task in queued if task is not None and not task.done()]
        if live is None or not waiting:
            return False
        if not live.cancelled_by_member:
            live.cancelled_by_member = True
            for task in waiting:
                task.cancel()
        return True

    async def _run(
        self, request: Request, events: RequestEvents, refresh: InputRefresher | None
    ) -> RequestResult | None:
        if not self.accepting:
            raise ShuttingDown()
        member = request.origin.user_id
        if (active := self.phases.member_requests(member)) >= self.max_per_member:
            raise MemberBusy(active, self.max_per_member)
        task = asyncio.current_task()
        assert task is not None
        live = self.phases.open_request(request.origin.interaction_id, member, task, events)
        images: list[asyncio.Task[ImageOutcome]] = []
        try:
            await self.ledger.reserve_request(
                request.origin,
                request.specs(),
                private=request.private,
                payer=request.payer,
                channel_posts=request.channel_posts,
                options=options_to_json(request.options),
                cost=COST_PER_JOB,
                roles=request.roles,
            )
            if self.balance is not None:
                await self.balance.ready()  # a stale balance is read now, before any slot is taken
            log.info("request reserved %s credits=%d", request.log_context(), COST_PER_JOB * len(request.images))
            for position in range(len(request.images)):
                image = asyncio.ensure_future(self._run_image(request.image(position), live, refresh))
                self.phases.enter((request.origin.interaction_id, position), member, Phase.QUEUED, image)
                images.append(image)
            try:
                ended = await asyncio.gather(*images, return_exceptions=True)
            except asyncio.CancelledError:
                for image in images:
                    image.cancel()
                await asyncio.wait(images, timeout=5)
                raise
            outcomes = [self._outcome_of(request.image(p), ended[p]) for p in range(len(images))]
            return await self._conclude(request.origin, request.payer, outcomes, events)
        finally:
            for position, image in enumerate(images):  # an image still this request's (not tracked) ends with it
                self.phases.end((request.origin.interaction_id, position), owner=image)
            self.phases.close_request(request.origin.interaction_id)

    def _outcome_of(self, job: ImageJob, ended: ImageOutcome | BaseException) -> ImageOutcome:
        if isinstance(ended, ImageOutcome):
            return ended
        # `_run_image` turns every error into an outcome; only a cancellation gets here.
        log.warning("an image ended without an outcome %s: %r", job.log_context(), ended)
        return ImageOutcome(job.position, job.image.filename, error=ShuttingDown())

    async def _run_image(self, job: ImageJob, live: RequestState, refresh: InputRefresher | None) -> ImageOutcome:
        """One image, from its slot to its result. Never raises but to a shutdown that cancels its request:
        whatever goes wrong becomes its outcome, and a job Magic Hour confirmed is followed to its end."""
        outcome = ImageOutcome(job.position, job.image.filename, job=job)
        try:
            await self.slots.acquire(live.events.queued)
        except asyncio.CancelledError:
            return await self._cancelled_in_queue(job, live, outcome)
        try:
            outcome.result = await self._image(job, live, refresh)
        except EXPECTED as error:
            outcome.error = error
            self._log_failure(job, error)
            if isinstance(error, StillRunning):
                # Paid for: followed in the background and delivered whenever it ends.
                self.track(job, error.project_id, live.events.later(job.position, job.image.filename))
            elif not isinstance(error, JobFailedError):  # a failed job is counted when it is settled
                self._count_end(type(error).__name__)
        except Exception as error:
            outcome.error = await self._unexpected(job, live, error)
        finally:
            self.slots.release()
            if self.phases.phase(job.key) is not Phase.DELIVERING:
                self._end(job)
        try:
            await live.events.image_ended(job.position, outcome.result is not None)
        except Exception:
            log.exception("could not show an image's end %s", job.log_context())
        return outcome

    async def _image(self, job: ImageJob, live: RequestState, refresh: InputRefresher | None) -> JobResult:
        interaction_id, position = job.key
        if not self.accepting:
            await self.ledger.release(interaction_id, error="the bot was shutting down", position=position)
            raise ShuttingDown()
        if not live.started:
            live.started = True
            await live.events.started()
        sent, project = await self._submit(job, ImageProgress(live.events, position), refresh)
        self.phases.move(job.key, Phase.DELIVERING)
        return await self._collect(sent, project)

    async def _cancelled_in_queue(self, job: ImageJob, live: RequestState, outcome: ImageOutcome) -> ImageOutcome:
        """Cancelled while waiting for a slot: nothing was sent, so the credits go back."""
        task = asyncio.current_task()
        assert task is not None
        by_member = live.cancelled_by_member and self.accepting
        try:
            await self.ledger.release(
                job.origin.interaction_id, error="cancelled before it started", position=job.position
            )
        except Exception:
            log.exception("could not release a cancelled job; the next start does %s", job.log_context())
        finally:
            self._end(job)
        log.info("job cancelled while queued %s", job.log_context())
        if by_member or not live.task.cancelling():
            while task.cancelling():
                task.uncancel()
            outcome.error = JobCancelled() if by_member else ShuttingDown()
            self._count_end(type(outcome.error).__name__)
            return outcome
        raise asyncio.CancelledError

    async def _unexpected(self, job: ImageJob, live: RequestState, error: Exception) -> BaseException:
        """A bug or a ledger that gave up: this image ends (the others go on); a charged job is not abandoned."""
        phase = self.phases.phase(job.key)
        log.error("an image failed unexpectedly in phase %s %s", phase.value, job.log_context(), exc_info=error)
        self._count_end("Unexpected")
        interaction_id, position = job.key
        try:
            if phase is Phase.QUEUED:  # nothing was sent: the credits go back
                await self.ledger.release(interaction_id, error=f"unexpected: {error}"[:500], position=position)
            elif phase is Phase.SENDING:  # the create may have happened: hold, as for a lost answer
                await self.ledger.mark_held(interaction_id, error=f"unexpected: {error}"[:500], position=position)
            else:
                record = await self.ledger.get_job(interaction_id, position)
                if record is not None and record.project_id:
                    if phase is Phase.DELIVERING:
                        self.phases.end(job.key)  # its result was lost here: fetch it again
                    later = live.events.later(job.position, job.image.filename)
                    if self.track(job, record.project_id, later):
                        return StillRunning(record.project_id)
        except Exception:
            log.exception("could not record the unexpected end; the next start settles it %s", job.log_context())
        return Unexpected(error, charged=phase is not Phase.QUEUED)

    # ---- shutdown ---------------------------------------------------------------------------------------

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
        queued = [state.task for state in self.phases.in_phase(Phase.QUEUED) if state.task is not None]
        for task in queued:
            task.cancel()  # never started: released, nothing charged, the member is told
        if queued:
            await asyncio.wait(queued, timeout=5)
        running = self.phases.tasks() | set(self._background)
        pending: set[asyncio.Task[object]] = set()
        if running:
            log.info("waiting up to %.0f s for %d running task(s)", grace, len(running))
            _, pending = await asyncio.wait(running, timeout=grace)
        for live in self.phases.requests():
            phases = [state.phase for state in self.phases.of_request(live.interaction_id)]
            resumable = any(p in (Phase.CONFIRMED, Phase.DELIVERING) for p in phases) and Phase.SENDING not in phases
            try:
                await live.events.interrupted(resumable=resumable)
            except Exception:
                log.exception("could not tell a member about the restart")
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
        if self._creates:
            # A create's answer is the one thing that must not be lost: give it a little longer.
            _, unanswered = await asyncio.wait(list(self._creates), timeout=CREATE_DRAIN_SECONDS)
            for create in unanswered:
                create.cancel()  # recorded as held by _send_create
            if unanswered:
                await asyncio.wait(unanswered, timeout=5)
        if pending:
            log.info("%d task(s) left unfinished; the next start resumes their jobs", len(pending))
