"""Wake the job waiting on a Magic Hour project the moment its webhook event arrives, in any process.

The runner waits on a project by racing the poll schedule against this hub: a verified event for the
project ends the wait at once (zero polls), and when the event is lost the polls still find the
result, just later. While webhooks are live the first poll waits long enough (`SPARSE_POLL`) for an
event to make it unnecessary. An event can reach a process that does not own the job (a load
balancer in front of several): it is recorded in the ledger, which NOTIFYs every process on
PostgreSQL (`PostgresRelay`); on SQLite there is one process and the hub is all there is.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from bot.ledger import Ledger
from bot.ledger.webhook_events import EventListener
from bot.magic_hour import AsyncClient, ImageProject, JobFailedError, PollPolicy, PollSchedule, ProjectStatus
from bot.magic_hour.client import StatusCallback
from bot.webhooks import COMPLETED, ERRORED, IMAGE_EVENTS, TERMINAL_EVENTS

log = logging.getLogger("bot.project_events")

SPARSE_POLL = PollPolicy(
    first_delay=20.0, dense_start=20.0, dense_end=20.0, dense_interval=2.0, max_interval=10.0, deadline=600.0
)
"""The fallback schedule while webhooks are live: a delivered event makes every poll unnecessary."""
MISSES_BEFORE_DENSE = 3  # consecutive jobs finished by polling, not by an event: webhooks look broken
RECENT_EVENTS = 2048


@dataclass(frozen=True)
class ProjectEvent:
    type: str
    project: ImageProject


class ProjectEvents:
    """Per-process: who waits on which project, and the latest events (for a wait that starts late)."""

    def __init__(self, *, sparse_poll: PollPolicy = SPARSE_POLL) -> None:
        self.sparse_poll = sparse_poll
        self.live = False  # set when the webhook endpoint is up
        self.misses = 0
        # Events another process recorded before this one started waiting (PostgreSQL only).
        self.backlog: Callable[[str], Awaitable[list[ProjectEvent]]] | None = None
        self.relay_lost = False
        self._waiters: dict[str, set[asyncio.Queue[ProjectEvent]]] = {}
        self._recent: OrderedDict[str, ProjectEvent] = OrderedDict()

    @property
    def trusted(self) -> bool:
        """Webhooks are on and recent jobs did get their events: poll sparsely."""
        return self.live and not self.relay_lost and self.misses < MISSES_BEFORE_DENSE

    def is_waiting(self, project_id: str) -> bool:
        return bool(self._waiters.get(project_id))

    def publish(self, event: ProjectEvent) -> bool:
        """Hand an event to whoever waits on its project here; True when someone did."""
        project_id = event.project.id
        if event.type in TERMINAL_EVENTS:
            self._recent[project_id] = event
            self._recent.move_to_end(project_id)
            while len(self._recent) > RECENT_EVENTS:
                self._recent.popitem(last=False)
        queues = self._waiters.get(project_id, set())
        for queue in queues:
            queue.put_nowait(event)
        if queues:
            self.misses = 0
        return bool(queues)

    @contextlib.contextmanager
    def watch(self, project_id: str) -> Iterator[asyncio.Queue[ProjectEvent]]:
        queue: asyncio.Queue[ProjectEvent] = asyncio.Queue()
        if (early := self._recent.get(project_id)) is not None:
            queue.put_nowait(early)  # the event beat the wait (a held job, a second wait after "slow")
        self._waiters.setdefault(project_id, set()).add(queue)
        try:
            yield queue
        finally:
            waiting = self._waiters.get(project_id)
            if waiting is not None:
                waiting.discard(queue)
                if not waiting:
                    del self._waiters[project_id]

    async def wait(
        self,
        client: AsyncClient,
        project_id: str,
        *,
        on_status: StatusCallback | None = None,
        deadline: float | None = None,
        policy: PollSchedule | None = None,
        started_at: float | None = None,
    ) -> ImageProject:
        """Like `client.v1.image_projects.wait`, but an event for the project ends it at once.

        While webhooks are trusted the poll is the sparse safety net; otherwise `policy` (the estimate).
        """
        projects = client.v1.image_projects
        poll_policy = self.sparse_poll if self.trusted else policy
        with self.watch(project_id) as queue:
            if self.backlog is not None:
                for early in await self.backlog(project_id):
                    if early.type in TERMINAL_EVENTS:
                        queue.put_nowait(early)
            poll = asyncio.ensure_future(
                projects.wait(
                    id=project_id, on_status=on_status, deadline=deadline, policy=poll_policy, started_at=started_at
                )
            )
            try:
                while True:
                    event_task = asyncio.ensure_future(queue.get())
                    try:
                        await asyncio.wait({poll, event_task}, return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        event_task.cancel()
                    if not event_task.cancelled() and event_task.done():
                        event = event_task.result()
                        if event.type in TERMINAL_EVENTS:
                            return await self._final(client, event)
                        await _call(on_status, event.project)
                        continue
                    if self.live:
                        self.misses += 1
                        log.info("project %s finished without its webhook event; polling found it", project_id)
                    return poll.result()
            finally:
                if not poll.done():
                    poll.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await poll

    @staticmethod
    async def _final(client: AsyncClient, event: ProjectEvent) -> ImageProject:
        project = event.project
        wanted = ProjectStatus.COMPLETE if event.type == COMPLETED else ProjectStatus.ERROR
        if project.status != wanted or (wanted == ProjectStatus.COMPLETE and not project.downloads):
            # The status comes from the event; only a missing download URL costs one read.
            project = await client.v1.image_projects.get(id=project.id)
        # No progress edit for the final status: the result follows at once, and an edit in flight would
        # hold it back by a Discord round trip.
        if event.type == ERRORED or project.status in (ProjectStatus.ERROR, ProjectStatus.CANCELED):
            raise JobFailedError(project)
        return project


async def _call(callback: StatusCallback | None, project: ImageProject) -> None:
    if callback is None:
        return
    result = callback(project)
    if inspect.isawaitable(result):
        await result


def event_from_record(event_type: str, payload: str) -> ProjectEvent | None:
    """An event as the ledger stored it (it was verified before it was stored)."""
    if event_type not in IMAGE_EVENTS:
        return None
    try:
        return ProjectEvent(event_type, ImageProject.from_json(json.loads(payload)))
    except Exception:
        log.warning("a recorded webhook event could not be read back (type %s)", event_type)
        return None


class PostgresRelay:
    """Wakes this process's waits with events another process recorded: the ledger LISTENs on PostgreSQL
    and names each project whose event was just recorded."""

    def __init__(self, ledger: Ledger, hub: ProjectEvents) -> None:
        self.ledger = ledger
        self.hub = hub
        self._listener: EventListener | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def connected(self) -> bool:
        return self._listener is not None and self._listener.connected

    async def start(self) -> PostgresRelay:
        self._listener = await self.ledger.listen_for_events(self._notified, self._lost)
        self.hub.backlog = self._recorded
        return self

    def _lost(self) -> None:
        self.hub.relay_lost = True  # back to the normal poll schedule
        log.warning("the PostgreSQL LISTEN connection closed; other processes' webhook events now wait for polls")

    def _notified(self, project_id: str) -> None:
        if not self.hub.is_waiting(project_id):
            return  # not ours: whoever waits on it reads it
        task = asyncio.ensure_future(self._deliver(project_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _recorded(self, project_id: str) -> list[ProjectEvent]:
        try:
            rows = await self.ledger.webhook_events_for(project_id)
        except Exception:
            log.exception("could not read the recorded webhook events of project %s", project_id)
            return []
        return [event for kind, payload in rows if (event := event_from_record(kind, payload)) is not None]

    async def _deliver(self, project_id: str) -> None:
        for event in await self._recorded(project_id):
            self.hub.publish(event)

    async def close(self) -> None:
        self.hub.backlog = None
        for task in list(self._tasks):
            task.cancel()
        if self._listener is not None:
            await self._listener.close()
