"""Jobs that outlive the request that started them: past its deadline, after a restart, found by a webhook.

Each is followed by exactly one task (`track`, refused by the phase book when another task follows the
job), and reaches its member through its request's record, so a private request stays private whichever
way its result comes back.
"""

from __future__ import annotations

import asyncio
import logging

from bot.ledger import JobRecord, JobStatus
from bot.magic_hour import JobFailedError

from .core import image_job
from .errors import EXPECTED, StillRunning
from .events import JobEvents, RequestEventsFactory
from .model import ImageJob, ImageOutcome
from .phases import Phase
from .submit import Submitting

log = logging.getLogger("bot.jobs")

UNFINISHED = frozenset({JobStatus.FAILED, JobStatus.REFUNDED, JobStatus.HELD})
"""A resumed request's images that will not be delivered; its final message says why."""


class Recovering(Submitting):
    def track(self, job: ImageJob, project_id: str, events: JobEvents) -> bool:
        """Follow a confirmed job to its end in the background and deliver it through `events`.

        False when another task already follows it here: a job is downloaded, delivered and settled once.
        """
        task = asyncio.ensure_future(self._follow(job, project_id, events))
        if not self.phases.follow(job.key, job.origin.user_id, task):
            task.cancel()
            log.warning("job already followed here; not tracking it twice %s", job.log_context(project_id))
            return False
        return True

    async def _follow(self, job: ImageJob, project_id: str, events: JobEvents) -> None:
        log.info("job followed in the background %s", job.log_context(project_id))
        try:
            project = await self._await_project(project_id, None, self.resume_deadline, None)
            self.phases.move(job.key, Phase.DELIVERING)
            await self._finish(job, project, events)
        except JobFailedError as error:
            await self._settle_failed(job, error)
            self._log_failure(job, error)
            await events.failed(error)
        except EXPECTED as error:
            self._log_failure(job, error)  # left in the ledger as it is: counted, and resumed next start
        except Exception:
            log.exception("following the job failed; the next start resumes it %s", job.log_context(project_id))
        finally:
            self._end(job)

    # ---- a held job, found by its webhook event -----------------------------------------------------

    def resume_held(self, record: JobRecord) -> bool:
        """A held job's project turned up (its webhook event named the job): follow and deliver it."""
        if self.events_for_request is None or not record.project_id or not record.request_id or not self.accepting:
            return False
        self._spawn(self._follow_record(record))
        return True

    async def follow_record(self, record: JobRecord, events: JobEvents | None = None) -> bool:
        """Follow one job of the ledger to its end. Its audience is `events`, or else the adapter's way to reach
        its request's member (the image follows as a message of its own). False when there is nothing to follow."""
        if not record.project_id or not record.request_id:
            return False
        request = await self.ledger.get_request(record.request_id)
        if request is None:
            log.warning("a job's request is gone; it stays in the ledger interaction=%s", record.interaction_id)
            return False
        if events is None:
            if self.events_for_request is None:
                return False
            events = self.events_for_request(request).later(record.position, record.input_filename)
        return self.track(image_job(request, record), record.project_id, events)

    async def _follow_record(self, record: JobRecord) -> None:
        await self.follow_record(record)

    # ---- start-up ---------------------------------------------------------------------------------------

    def resume_requests(self, records: list[JobRecord], events_for: RequestEventsFactory) -> int:
        """Start-up: resume each unfinished image; a request's results go out together, as a live one's do."""
        by_request: dict[str, list[JobRecord]] = {}
        for record in records:
            if record.project_id and record.request_id:
                by_request.setdefault(record.request_id, []).append(record)
        for request_id, open_jobs in by_request.items():
            self._spawn(self._resume_request(request_id, open_jobs, events_for))
        return len(by_request)

    async def _resume_request(
        self, request_id: str, open_jobs: list[JobRecord], events_for: RequestEventsFactory
    ) -> None:
        request = await self.ledger.get_request(request_id)
        if request is None:
            log.warning("a resumed job's request is gone; it stays in the ledger request=%s", request_id)
            return
        siblings = await self.ledger.request_jobs(request.id)
        events = events_for(request)
        if any(record.delivered for record in siblings):
            # The request's message went out (these images outlived it): each follows on its own, as it would have.
            for record in open_jobs:
                assert record.project_id is not None
                self.track(
                    image_job(request, record), record.project_id, events.later(record.position, record.input_filename)
                )
            return
        task = asyncio.current_task()
        assert task is not None
        jobs: list[ImageJob] = []
        for record in list(open_jobs):
            job = image_job(request, record)
            if self.phases.is_followed(job.key):
                open_jobs.remove(record)  # already followed here (e.g. a held job its event resolved)
                continue
            self.phases.enter(job.key, job.origin.user_id, Phase.CONFIRMED, task)
            jobs.append(job)
        try:
            resumed = await asyncio.gather(
                *(self._resume_image(job, record) for job, record in zip(jobs, open_jobs, strict=True)),
                return_exceptions=True,
            )
            by_position: dict[int, ImageOutcome] = {}
            for job, outcome in zip(jobs, resumed, strict=True):
                if isinstance(outcome, BaseException):
                    log.error("resuming an image failed %s", job.log_context(), exc_info=outcome)
                    outcome = ImageOutcome(job.position, job.image.filename, error=StillRunning(""))
                by_position[job.position] = outcome
            outcomes = [
                by_position.get(record.position)
                or ImageOutcome(record.position, record.input_filename, error=record.error or record.status.value)
                for record in siblings
                if record.position in by_position or record.status in UNFINISHED
            ]
            await self._conclude(request.origin, request.payer, outcomes, events)
        finally:
            for job in jobs:
                self._end(job)

    async def _resume_image(self, job: ImageJob, record: JobRecord) -> ImageOutcome:
        assert record.project_id is not None
        outcome = ImageOutcome(record.position, record.input_filename, job=job)
        log.info("job resumed %s", job.log_context(record.project_id))
        try:
            project = await self._await_project(record.project_id, None, self.resume_deadline, None)
            self.phases.move(job.key, Phase.DELIVERING)
            outcome.result = await self._collect(job, project)
        except JobFailedError as error:
            await self._settle_failed(job, error)
            self._log_failure(job, error)
            outcome.error = error
        except EXPECTED as error:
            self._log_failure(job, error)  # left in the ledger as it is: counted, and resumed next start
            outcome.error = StillRunning(record.project_id)
        return outcome
