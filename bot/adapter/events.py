"""The two ways a request's events reach Discord: a live command's reply, or a request an earlier process left.

Both implement `bot.jobs.RequestEvents`; keeping them side by side keeps their wording and fallbacks alike. A
request of one image says exactly what a single job always said; several images get one progress line
("2 of 5 done") and one final message carrying every result.
"""

from __future__ import annotations

import discord

from bot import replies
from bot.adapter.progress import ThrottledEditor
from bot.adapter.reply import Reply
from bot.adapter.views import CancelView, result_buttons
from bot.i18n import Words
from bot.inputs import output_filename
from bot.jobs import JobEvents, JobResult, JobRunner, Request, RequestEvents, RequestResult
from bot.ledger import RequestRecord
from bot.magic_hour import ProjectStatus
from bot.markdown import code


class _Progress:
    """What the progress line of a request of several images counts."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.statuses: dict[int, ProjectStatus] = {}
        self.ended: dict[int, bool] = {}
        self.slow = False

    def line(self, w: Words) -> str:
        done = sum(1 for ok in self.ended.values() if ok)
        failed = len(self.ended) - done
        rendering = sum(
            1
            for image, status in self.statuses.items()
            if image not in self.ended and status is ProjectStatus.RENDERING
        )
        return replies.batch_progress(w, self.total, done, failed, rendering, self.slow)


async def _deliver(reply: Reply, result: RequestResult, total: int) -> frozenset[int]:
    if total == 1 and len(result.outcomes) == 1 and result.delivered:
        [outcome] = result.delivered
        assert outcome.result is not None
        return frozenset({outcome.position}) if await reply.deliver(outcome.result, outcome.filename) else frozenset()
    return await reply.deliver_batch(result)


class LateImageEvents(JobEvents):
    """An image that outlived its request's final message: its result follows as a message of its own."""

    def __init__(self, reply: Reply, filename: str | None) -> None:
        self.reply = reply
        self.filename = filename

    async def deliver(self, result: JobResult) -> bool:
        return await self.reply.deliver_extra(result, self.filename)

    async def failed(self, error: BaseException) -> None:
        w = self.reply.words
        await self.reply.send_extra(f"{code(output_filename(self.filename))}: {replies.image_failure(w, error)}")


class InteractionEvents(RequestEvents):
    """Shows one request's progress in the reply to the member's command."""

    def __init__(
        self, client: discord.Client, runner: JobRunner, interaction: discord.Interaction, request: Request
    ) -> None:
        self.runner = runner
        self.interaction = interaction
        self.filenames = [image.filename for image in request.images]
        self.reply = Reply.for_interaction(
            client,
            interaction,
            private=request.private,
            channel_posts=request.channel_posts,
            view_for_results=result_buttons,
        )
        self.editor = ThrottledEditor(self.reply.edit_progress)
        self.view: CancelView | None = None
        self.progress = _Progress(len(self.filenames))

    @property
    def single(self) -> bool:
        return len(self.filenames) == 1

    async def queued(self, position: int) -> None:
        if self.view is None:
            interaction_id = self.interaction.id
            self.view = CancelView(
                lambda: self.runner.cancel(interaction_id),
                self.interaction.user.id,
                timeout=self.reply.token_seconds_left(),
                words=self.reply.words,
            )
        await self.editor.update(replies.queued(self.reply.words, position), view=self.view)

    async def started(self) -> None:
        if self.view is not None:
            self.view.stop()
            self.view = None
            await self.editor.update(self._line(None), view=None)
        elif not self.single:
            await self.editor.update(self._line(None))

    def _line(self, status: ProjectStatus | None) -> str:
        w = self.reply.words
        return replies.progress(w, status) if self.single else self.progress.line(w)

    async def status(self, image: int, status: ProjectStatus) -> None:
        self.progress.statuses[image] = status
        await self.editor.update(self._line(status))

    async def slow(self, image: int) -> None:
        self.progress.slow = True
        w = self.reply.words
        await self.editor.update(replies.slow(w) if self.single else self.progress.line(w))

    async def image_ended(self, image: int, ok: bool) -> None:
        self.progress.ended[image] = ok
        if not self.single:
            await self.editor.update(self.progress.line(self.reply.words))

    async def interrupted(self, resumable: bool) -> None:
        await self.editor.settle()
        await self.reply.send_final(replies.interrupted(self.reply.words, resumable))

    async def deliver(self, result: RequestResult) -> frozenset[int]:
        await self.editor.settle()
        return await _deliver(self.reply, result, len(self.filenames))

    async def failed(self, error: BaseException) -> None:
        if self.view is not None:
            self.view.stop()
        await self.editor.settle()
        await self.reply.report_failure(error)

    def later(self, image: int, filename: str | None = None) -> JobEvents:
        if self.single:
            return _SingleLater(self)
        return LateImageEvents(self.reply, self.filenames[image])


class _SingleLater(JobEvents):
    """A single job past its deadline ends in its own reply, as it always did."""

    def __init__(self, events: InteractionEvents) -> None:
        self.events = events

    async def deliver(self, result: JobResult) -> bool:
        await self.events.editor.settle()
        return await self.events.reply.deliver(result, self.events.filenames[0])

    async def failed(self, error: BaseException) -> None:
        await self.events.editor.settle()
        await self.events.reply.report_failure(error)


class RecoveredRequestEvents(RequestEvents):
    """Delivers a request that an earlier process started, or an image of it found later (a held job its
    webhook event resolved), through whatever is still open; private stays private (`Reply.for_request`)."""

    def __init__(self, client: discord.Client, request: RequestRecord) -> None:
        self.request = request
        self.reply = Reply.for_request(client, request, view_for_results=result_buttons)

    async def deliver(self, result: RequestResult) -> frozenset[int]:
        return await _deliver(self.reply, result, self.request.images)

    async def failed(self, error: BaseException) -> None:
        await self.reply.report_failure(error)

    def later(self, image: int, filename: str | None = None) -> JobEvents:
        if self.request.images == 1:
            return _RecoveredSingle(self.reply, filename)  # the request's own message gets the result
        return LateImageEvents(self.reply, filename)


class _RecoveredSingle(JobEvents):
    """The one image of a recovered request: its result replaces the request's message (or follows it)."""

    def __init__(self, reply: Reply, filename: str | None) -> None:
        self.reply = reply
        self.filename = filename

    async def deliver(self, result: JobResult) -> bool:
        return await self.reply.deliver(result, self.filename)

    async def failed(self, error: BaseException) -> None:
        await self.reply.report_failure(error)
