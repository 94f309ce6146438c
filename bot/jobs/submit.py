"""Creating a job at Magic Hour and learning how it ended (a poll schedule, or a webhook event first).

The create is the one step that costs money, so it is guarded on every side: the ledger is told before it
is sent (a crash from here holds the credits instead of releasing them), the project id is recorded the
moment Magic Hour answers, and the pair runs shielded so a shutdown cannot cut them apart. A create whose
answer is lost ends held, unless a webhook event already named its project: then the job simply goes on.
"""

from __future__ import annotations

import asyncio
import logging

from bot.balance import BalanceTooLow
from bot.ledger import COST_PER_JOB, JobStatus
from bot.magic_hour import (
    ImageProject,
    JobFailedError,
    JobMayExistError,
    MagicHourError,
    PollTimeoutError,
    create_may_have_happened,
    is_input_fetch_failure,
)
from bot.magic_hour.client import StatusCallback

from .errors import JobCancelled, StillRunning
from .events import JobEvents
from .model import ImageJob, InputRefresher
from .phases import Phase
from .settle import Settling

log = logging.getLogger("bot.jobs")

CREATE_CUT_SHORT = "the bot shut down while Magic Hour was creating the job"


class Submitting(Settling):
    async def _submit(
        self, job: ImageJob, events: JobEvents, refresh: InputRefresher | None
    ) -> tuple[ImageJob, ImageProject]:
        """Create the job and follow it to Magic Hour's final answer; one retry with fresh inputs when Magic
        Hour could not fetch them. Returns the job as finally sent and its completed project."""
        project_id = await self._create(job)
        try:
            return job, await self._wait(job, project_id, events)
        except JobFailedError as error:
            retry = await self._refreshed(job, refresh) if refresh and is_input_fetch_failure(error) else None
            if retry is None:
                await self._settle_failed(job, error)
                raise
            log.info("input could not be fetched, retrying with a fresh URL %s", job.log_context(project_id))
        project_id = await self._create(retry)
        try:
            return retry, await self._wait(retry, project_id, events)
        except JobFailedError as second:
            await self._settle_failed(retry, second)
            raise

    async def _refreshed(self, job: ImageJob, refresh: InputRefresher) -> ImageJob | None:
        """A fresh copy of the inputs, or None when there is none (message deleted, CDN link gone)."""
        try:
            return await refresh(job)
        except Exception as error:  # the refresher is the caller's (Discord); any failure means "no retry"
            log.warning("could not refresh the inputs %s: %s", job.log_context(), error)
            return None

    async def _create(self, job: ImageJob) -> str:
        """Create the job and record its project id, shielded: a shutdown must not cut that pair apart.

        If the caller is cancelled (SIGTERM past the grace period), the create still runs to its answer in the
        background and `drain` waits for it; only if that too is cut short is the job recorded as held.
        """
        create = asyncio.ensure_future(self._create_and_record(job))
        self._creates.add(create)
        create.add_done_callback(self._creates.discard)
        return await asyncio.shield(create)

    async def _create_and_record(self, job: ImageJob) -> str:
        if self.balance is not None:
            try:
                self.balance.take(COST_PER_JOB)
            except BalanceTooLow as error:
                await self.ledger.release(job.origin.interaction_id, error=str(error), position=job.position)
                raise
        # From here a restart holds the credits instead of releasing them: the create may happen.
        try:
            sending = await self.ledger.mark_sending(job.origin.interaction_id, position=job.position)
        except BaseException:
            self._give_back()
            raise
        if not sending:
            self._give_back()
            raise JobCancelled()  # the job was settled meanwhile (e.g. released by a newer process)
        self.phases.move(job.key, Phase.SENDING)
        project_id = await self._send_create(job)
        self.phases.move(job.key, Phase.CONFIRMED)
        return project_id

    def _give_back(self) -> None:
        """The create certainly did not happen: its cost goes back to the known balance."""
        if self.balance is not None:
            self.balance.give_back(COST_PER_JOB)

    def _charged(self, credits: int) -> None:
        """The create happened (or may have: then its cost is assumed until the balance is read again)."""
        if self.balance is not None:
            self.balance.charged(COST_PER_JOB, credits)

    async def _send_create(self, job: ImageJob) -> str:
        interaction_id, position = job.key
        assets = {"image_file_path": job.image.url}
        if job.background_url:
            assets["background_image_file_path"] = job.background_url
        try:
            created = await self.client.v1.image_background_remover.create(assets=assets, name=job.image.name)
        except asyncio.CancelledError:
            self._charged(COST_PER_JOB)
            await asyncio.shield(self.ledger.mark_held(interaction_id, error=CREATE_CUT_SHORT, position=position))
            log.warning("create cut short by shutdown; the job is held %s", job.log_context())
            raise
        except Exception as error:
            if not create_may_have_happened(error):
                self._give_back()
                reason = f"Magic Hour refused the job: {error}"[:500]
                await self.ledger.release(interaction_id, error=reason, position=position)
                raise
            # The request may have reached Magic Hour: keep the credits counted ("held") until it is known.
            self._charged(COST_PER_JOB)
            record = await self.ledger.mark_held(interaction_id, error=str(error)[:500], position=position)
            if record is not None and record.status is JobStatus.SUBMITTED and record.project_id:
                # Its webhook event named the project while the create was in flight: the job simply goes on.
                log.info("create answer lost, but its event named the project %s", job.log_context(record.project_id))
                return record.project_id
            raise
        self._charged(created.credits_charged)
        record = await self.ledger.mark_submitted(
            interaction_id, project_id=created.id, credits_charged=created.credits_charged, position=position
        )
        if record is None or record.status is not JobStatus.SUBMITTED:
            # Recorded as held (an id the ledger cannot store): no one can follow it; the member is told so.
            raise JobMayExistError("its project id could not be recorded")
        log.info("job submitted %s credits_charged=%d", job.log_context(created.id), created.credits_charged)
        return created.id

    async def _wait(self, job: ImageJob, project_id: str, events: JobEvents) -> ImageProject:
        """Follow the job to its end within the deadline; past it (or when polling keeps failing) raise
        StillRunning and let the caller hand the job to a tracker: it is paid for."""

        async def on_status(project: ImageProject) -> None:
            log.info("job status %s status=%s", job.log_context(project_id), project.status)
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
            log.warning("polling stopped, tracking in the background %s: %s", job.log_context(project_id), error)
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
