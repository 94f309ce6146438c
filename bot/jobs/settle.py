"""Fetching results, handing them to the member, and settling each job at what Magic Hour charged.

The order is what makes a crash harmless: a result is delivered before its job is settled, so a crash in
between delivers it again rather than losing it; the delivery is claimed in the ledger first, so two
processes overlapping in a deploy never both post it. Files are closed whatever happens.
"""

from __future__ import annotations

import io
import logging
import time

from bot.imaging import ImageProblem, Processed, ResultOptions, process
from bot.ledger import JobStatus, Origin, Payer, Usage
from bot.magic_hour import DownloadedFile, ImageProject, JobFailedError, MagicHourError, OutputTooLargeError

from .core import RunnerCore
from .errors import JobCancelled, ShuttingDown
from .events import JobEvents, RequestEvents
from .model import DEFAULT_OPTIONS, ImageJob, ImageOutcome, JobResult, RequestResult

log = logging.getLogger("bot.jobs")


def _read_and_process(downloaded: DownloadedFile, options: ResultOptions) -> Processed:
    """In a worker thread: read the spooled result (it may be on disk) and apply the options to it."""
    return process(downloaded.read_bytes(), options)


class Settling(RunnerCore):
    async def _collect(self, job: ImageJob, project: ImageProject) -> JobResult:
        """Fetch the result, if it fits what a message can carry; a failed fetch leaves the link to send.

        With options (colour, trim, format) the result is fetched whatever its size, processed off the event
        loop, and only then measured against the upload limit."""
        processing = not job.options.is_default and self.images is not None
        cap = self.max_output_bytes if processing else self._download_cap(job)
        file: DownloadedFile | None = None
        too_large = False
        try:
            file = await self.client.v1.image_projects.download(project, max_bytes=cap)
        except OutputTooLargeError as error:
            too_large = True
            log.info("the result is too large to upload, sending the link %s: %s", job.log_context(project.id), error)
        except MagicHourError as error:
            log.warning("download failed, the link is delivered instead %s: %s", job.log_context(project.id), error)
        result = JobResult(
            project=project, file=file, credits_charged=project.credits_charged, usage=None, too_large=too_large
        )
        if not job.options.is_default:
            await self._process(job, result)
        return result

    async def _process(self, job: ImageJob, result: JobResult) -> None:
        """Apply the request's options to a fetched result; what cannot be applied is said, never hidden."""
        downloaded = result.file
        if downloaded is None or self.images is None:
            result.not_applied = ImageProblem.TOO_MANY_BYTES if result.too_large else ImageProblem.UNREADABLE
            return
        try:
            processed = await self.images.run(_read_and_process, downloaded, job.options)
        except Exception:
            log.exception("processing the result failed; delivering it as Magic Hour made it %s", job.log_context())
            result.not_applied = ImageProblem.UNREADABLE
            return
        if processed.skipped:
            result.not_applied = processed.problem
        else:
            downloaded.close()
            result.file = DownloadedFile(
                path=None,
                file=io.BytesIO(processed.data),
                size=len(processed.data),
                filename=f"result.{processed.extension}",
                content_type=f"image/{processed.extension}",
                url=downloaded.url,
                expires_at=downloaded.expires_at,
            )
            result.extension, result.applied = processed.extension, processed.applied
        if job.upload_limit is not None and result.file is not None and result.file.size > job.upload_limit:
            # Still too large for a message: the member gets Magic Hour's own link, as it made the image.
            result.close()
            result.file, result.too_large = None, True
            result.extension, result.applied, result.not_applied = "png", DEFAULT_OPTIONS, ImageProblem.TOO_MANY_BYTES

    def _download_cap(self, job: ImageJob) -> int | None:
        """Never fetch more than the reply could carry: past that only the link is of use."""
        caps = [cap for cap in (self.max_output_bytes, job.upload_limit) if cap is not None]
        return min(caps) if caps else None

    async def _usage(self, origin: Origin, payer: Payer) -> Usage | None:
        """The paying budget's figures for the result's text: the server's, or the member's own install's."""
        try:
            if payer is Payer.USER or origin.guild_id is None:
                return await self.ledger.user_usage(origin.user_id)
            return await self.ledger.usage(origin.guild_id, user_id=origin.user_id)
        except Exception:
            log.exception("could not read the usage; delivering without it %s", origin.log_context())
            return None

    async def _conclude(
        self, origin: Origin, payer: Payer, outcomes: list[ImageOutcome], events: RequestEvents
    ) -> RequestResult | None:
        """Deliver what there is in one go, then settle each delivered image; or say why there is nothing."""
        result = RequestResult(outcomes)
        try:
            if not result.delivered:
                errors = [outcome.error for outcome in outcomes]
                first = errors[0]
                alike = len({type(error) for error in errors}) == 1
                if isinstance(first, BaseException) and (
                    len(errors) == 1 or (alike and isinstance(first, JobCancelled | ShuttingDown))
                ):
                    await events.failed(first)
                    return None
            result.usage = await self._usage(origin, payer)
            for outcome in result.delivered:
                assert outcome.result is not None
                outcome.result.usage = result.usage
            return await self._deliver_and_settle(origin, payer, result, events)
        finally:
            result.close()

    async def _deliver_and_settle(
        self, origin: Origin, payer: Payer, result: RequestResult, events: RequestEvents
    ) -> RequestResult:
        """Claim each result, hand all of them over, then settle each: a crash in between re-delivers, never loses."""
        learned_at = time.perf_counter()
        for outcome in result.delivered:
            assert outcome.result is not None
            if not await self._claim_delivery(origin, outcome.position):
                log.info("another process is delivering this image %s image=%s", origin.log_context(), outcome.position)
                outcome.result.close()
                outcome.result = None
                outcome.error = None  # someone else shows it: not a failure either
        shown = [outcome for outcome in result.outcomes if outcome.result is not None or outcome.error is not None]
        if not shown:
            return result
        delivered: frozenset[int] = frozenset()
        try:
            delivered = await events.deliver(RequestResult(shown, result.usage))
        except Exception:
            log.exception("delivery failed %s", origin.log_context())
        finally:
            result.close()
        if delivered and self.metrics is not None:
            self.metrics.delivered(time.perf_counter() - learned_at)
        for outcome in result.delivered:
            assert outcome.result is not None and outcome.job is not None
            await self._settle_complete(outcome.job, outcome.result, outcome.position in delivered)
        return result

    async def _finish(self, job: ImageJob, project: ImageProject, events: JobEvents) -> None:
        """One image delivered on its own (past its request's deadline, or a held job found later)."""
        result = await self._collect(job, project)
        try:
            result.usage = await self._usage(job.origin, job.payer)
            if not await self._claim_delivery(job.origin, job.position):
                log.info("another process is delivering this job %s", job.log_context(project.id))
                return
            learned_at = time.perf_counter()
            delivered = False
            try:
                delivered = await events.deliver(result)
            except Exception:
                log.exception("delivery failed %s", job.log_context(project.id))
            if delivered and self.metrics is not None:
                self.metrics.delivered(time.perf_counter() - learned_at)
        finally:
            result.close()
        await self._settle_complete(job, result, delivered)

    async def _claim_delivery(self, origin: Origin, position: int) -> bool:
        """At most one process delivers a job; if the claim cannot be written, deliver anyway (paid for)."""
        try:
            return await self.ledger.claim_delivery(origin.interaction_id, self.instance_id, position=position)
        except Exception:
            log.exception("could not claim the delivery; delivering anyway %s image=%s", origin.log_context(), position)
            return True

    async def _settle_complete(self, job: ImageJob, result: JobResult, delivered: bool) -> None:
        project, (interaction_id, position) = result.project, job.key
        try:
            await self.ledger.settle(
                interaction_id, status=JobStatus.COMPLETE, credits_charged=project.credits_charged, position=position
            )
            if delivered:
                await self.ledger.mark_delivered(interaction_id, position=position)
                await self._schedule_deletion(job, project, linked=result.linked or result.file is None)
        except Exception:
            # The ledger retried and gave up; the member has the result, so this is for the owner only.
            # The job stays open in the ledger (still counted) and the next start settles it.
            log.exception("could not record the settled job %s", job.log_context(project.id))
            return
        finally:
            self.phases.end(job.key)
        if not delivered:
            log.warning("the result reached no one; it stays in the ledger %s", job.log_context(project.id))
        log.info("job complete %s credits_charged=%d", job.log_context(project.id), project.credits_charged)
        self._count_end("complete", project_id=project.id, credits=project.credits_charged)
        await self._notify_settled(job.paying_guild)

    async def _schedule_deletion(self, job: ImageJob, project: ImageProject, *, linked: bool) -> None:
        """Delete the project at Magic Hour once the member has the result, as DELETE_RESULTS_AFTER_DELIVERY says;
        a link the member was given instead of a file is left alive until it expires."""
        if not self.deletes(private=job.private):
            return
        due = self.ledger.now()
        if linked and project.downloads:
            due = max(due, max(download.expires_at for download in project.downloads))
        await self.ledger.schedule_deletion(job.origin.interaction_id, at=due, position=job.position)
        if self.janitor is not None:
            self.janitor.wake()

    async def _settle_failed(self, job: ImageJob, error: JobFailedError) -> None:
        charged = error.project.credits_charged if error.project is not None else 0
        interaction_id, position = job.key
        await self.ledger.settle(
            interaction_id,
            status=JobStatus.FAILED,
            credits_charged=charged,
            error=f"{error.code}: {error.message}",
            position=position,
        )
        self._count_end("failed", project_id=error.project_id, credits=charged)
        if error.project is not None:
            try:
                await self._schedule_deletion(job, error.project, linked=False)  # the request ended in failure
            except Exception:
                log.exception("could not schedule the failed project's deletion %s", job.log_context())
        await self._notify_settled(job.paying_guild)
