"""The two ways a job's events reach Discord: a live command's reply, or a job an earlier process left.

Both implement `bot.jobs.JobEvents`; keeping them side by side keeps their wording and fallbacks alike.
"""

from __future__ import annotations

import discord

from bot import replies
from bot.adapter.progress import ThrottledEditor
from bot.adapter.reply import Reply
from bot.adapter.views import CancelView
from bot.inputs import output_filename
from bot.jobs import JobEvents, JobResult, JobRunner
from bot.ledger import JobRecord
from bot.magic_hour import ProjectStatus


class InteractionEvents(JobEvents):
    """Shows one job's progress in the reply to the member's command."""

    def __init__(
        self, client: discord.Client, runner: JobRunner, interaction: discord.Interaction, input_name: str | None
    ) -> None:
        self.runner = runner
        self.interaction = interaction
        self.input_name = input_name
        self.reply = Reply.for_interaction(client, interaction)
        self.editor = ThrottledEditor(self.reply.edit_progress)
        self.view: CancelView | None = None

    async def queued(self, position: int) -> None:
        if self.view is None:
            interaction_id = self.interaction.id
            self.view = CancelView(
                lambda: self.runner.cancel(interaction_id),
                self.interaction.user.id,
                timeout=self.reply.token_seconds_left(),
            )
        await self.editor.update(replies.queued(position), view=self.view)

    async def started(self) -> None:
        if self.view is not None:
            self.view.stop()
            await self.editor.update(replies.progress(None), view=None)
            self.view = None

    async def status(self, status: ProjectStatus) -> None:
        await self.editor.update(replies.progress(status))

    async def slow(self) -> None:
        await self.editor.update(replies.slow())

    async def interrupted(self, resumable: bool) -> None:
        await self.editor.settle()
        await self.reply.send_final(replies.interrupted(resumable))

    async def deliver(self, result: JobResult) -> bool:
        await self.editor.settle()
        return await self.reply.deliver(result, output_filename(self.input_name))

    async def failed(self, error: BaseException) -> None:
        if self.view is not None:
            self.view.stop()
        await self.editor.settle()
        await self.reply.report_failure(error)


class RecoveredEvents(JobEvents):
    """Delivers a job that an earlier process started, through whatever is still open."""

    def __init__(self, client: discord.Client, record: JobRecord) -> None:
        self.reply = Reply.for_record(client, record)

    async def deliver(self, result: JobResult) -> bool:
        return await self.reply.deliver(result, output_filename(None))

    async def failed(self, error: BaseException) -> None:
        await self.reply.report_failure(error)
