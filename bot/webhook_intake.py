"""What a verified Magic Hour event does: wake the job that waits on it, or resolve a held job.

Recording the event in the ledger first makes a duplicate delivery (to this or another process) a
no-op, and on PostgreSQL it is also what wakes the process that owns the job. A job is delivered
only by the one wait that tracks it, so an event can end that wait but never deliver twice.
"""

from __future__ import annotations

import json
import logging
import re

from bot.jobs import JobRunner
from bot.ledger import JobStatus, Ledger
from bot.project_events import ProjectEvent, ProjectEvents
from bot.webhooks import IMAGE_EVENTS, WebhookEvent

log = logging.getLogger("bot.webhooks")

# The bot names every job "... #<interaction id>", and an image after a request's first "... #<interaction id>/<n>".
_JOB_SUFFIX = re.compile(r"#(\d{15,22})(?:/(\d{1,2}))?$")


def job_key_in(name: str | None) -> tuple[int, int] | None:
    """(interaction id, image position) named by a job's suffix."""
    match = _JOB_SUFFIX.search(name or "")
    return (int(match.group(1)), int(match.group(2) or 0)) if match else None


class WebhookIntake:
    def __init__(self, ledger: Ledger, hub: ProjectEvents, runner: JobRunner) -> None:
        self.ledger = ledger
        self.hub = hub
        self.runner = runner

    async def receive(self, event: WebhookEvent) -> str:
        """Act on one verified event; returns its outcome (a metrics label)."""
        if event.type not in IMAGE_EVENTS or event.project is None:
            return "ignored_type"
        project = event.project
        # The waiter here, if any, is woken before the ledger write: a result is never held back by it, and
        # a second copy of the event cannot deliver twice (a wait ends at its first terminal event).
        woke = self.hub.publish(ProjectEvent(event.type, project))
        fresh = await self.ledger.record_webhook_event(project.id, event.type, json.dumps(event.payload))
        if woke:
            return "woke_waiter" if fresh else "duplicate"
        if not fresh:
            return "duplicate"
        job = await self.ledger.get_job_by_project(project.id)
        if job is not None:
            # Owned by another process (the ledger's NOTIFY wakes it) or already settled.
            return "settled" if job.status in (JobStatus.COMPLETE, JobStatus.FAILED) else "relayed"
        return await self._resolve_held(event)

    async def _resolve_held(self, event: WebhookEvent) -> str:
        assert event.project is not None
        key = job_key_in(event.project.name)
        if key is None:
            return "unknown_project"
        interaction_id, position = key
        claimed = await self.ledger.claim_held_job(
            interaction_id,
            project_id=event.project.id,
            credits_charged=event.project.credits_charged,
            position=position,
        )
        if claimed is None:
            return "unknown_project"
        log.info(
            "held job found by its webhook event guild=%s interaction=%s project=%s",
            claimed.guild_id,
            interaction_id,
            event.project.id,
        )
        # The event is in the hub's recent list, so the resumed wait ends at once.
        return "resolved_held" if self.runner.resume_held(claimed) else "held_recorded"
