"""What a verified Magic Hour event does: wake the job that waits on it, or find the job it names.

The waiter in this process, if any, is woken first: a result is never held back by a ledger write, and a
second copy of an event cannot deliver twice (a wait ends at its first terminal event). Then the event is
matched to one of the bot's jobs, by its project id or by the job's name suffix; a job whose create is
still in flight (sending) or whose answer was lost (held) is claimed with the project the event names,
whenever the event comes. Only events of the bot's open jobs are stored (which, on PostgreSQL, is also
what wakes the process that owns the job); anyone else's are acknowledged and forgotten.
"""

from __future__ import annotations

import json
import logging

from bot.jobs import JobRunner, job_key_in
from bot.ledger import OPEN_STATUSES, JobStatus, Ledger
from bot.project_events import ProjectEvent, ProjectEvents
from bot.webhooks import IMAGE_EVENTS, WebhookEvent

log = logging.getLogger("bot.webhooks")


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
        woke = self.hub.publish(ProjectEvent(event.type, project))
        job = await self.ledger.get_job_by_project(project.id)
        claimed_from: JobStatus | None = None
        if job is None:
            key = job_key_in(project.name)
            claim = None
            if key is not None:
                interaction_id, position = key
                claim = await self.ledger.claim_project(
                    interaction_id, project_id=project.id, credits_charged=project.credits_charged, position=position
                )
            if claim is None:
                return "unknown_project"  # not the bot's (another app on the account, a superseded project)
            job, claimed_from = claim.record, claim.previous
        if job.status not in OPEN_STATUSES:
            return "settled"
        fresh = await self.ledger.record_webhook_event(project.id, event.type, json.dumps(project.to_json()))
        if claimed_from is JobStatus.HELD:
            log.info(
                "held job found by its webhook event guild=%s interaction=%s project=%s",
                job.guild_id,
                job.interaction_id,
                project.id,
            )
            # The event is in the hub's recent list (and the ledger), so the resumed wait ends at once.
            return "resolved_held" if self.runner.resume_held(job) else "held_recorded"
        if claimed_from is JobStatus.SENDING:
            return "claimed_in_flight"  # its create's own task follows it when the create returns
        if woke:
            return "woke_waiter" if fresh else "duplicate"
        return "relayed" if fresh else "duplicate"
