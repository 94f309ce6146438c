"""Where each image of the running requests stands in this process, in one place.

An image moves queued → sending → confirmed → delivering → ended (`MOVES` says which moves exist), and a
move the table does not allow raises: a second tracker for the same job, a delivery before a result, a
job "ended" twice would be bugs, and they surface here rather than as a double charge or a lost image.
`drain`, cancel, the per-member count and the metrics all read this book instead of keeping sets of
their own. The ledger keeps the durable state (`bot.ledger.lifecycle`); this is the in-memory part of it.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

Key = tuple[int, int]  # (interaction id, position): the job's key in the ledger too


class Phase(StrEnum):
    QUEUED = "queued"  # reserved, waiting for a slot
    SENDING = "sending"  # the create is on its way
    CONFIRMED = "confirmed"  # Magic Hour gave a project id; the job is followed (polled or woken by an event)
    DELIVERING = "delivering"  # the result is being fetched and handed to Discord
    ENDED = "ended"


MOVES: dict[Phase, frozenset[Phase]] = {
    Phase.QUEUED: frozenset({Phase.SENDING, Phase.ENDED}),
    # sending → confirmed: the create answered, or a webhook event named the job while it was in flight.
    Phase.SENDING: frozenset({Phase.CONFIRMED, Phase.ENDED}),
    # confirmed → sending: Magic Hour could not fetch the input; the create goes again with a fresh URL.
    Phase.CONFIRMED: frozenset({Phase.SENDING, Phase.DELIVERING, Phase.ENDED}),
    Phase.DELIVERING: frozenset({Phase.ENDED}),
    Phase.ENDED: frozenset(),
}


class IllegalMove(RuntimeError):
    """A phase change the lifecycle does not allow: a bug in the runner, refused before it costs anything."""


@dataclass
class ImageState:
    key: Key
    member: int
    phase: Phase
    task: asyncio.Task[object] | None = None  # the one task following this job


@dataclass
class RequestState:
    """A live request: its task, its audience, and whether its first image went out (the single `started`)."""

    interaction_id: int
    member: int
    task: asyncio.Task[object]
    events: object
    started: bool = False
    cancelled_by_member: bool = False


class PhaseBook:
    def __init__(self) -> None:
        self._images: dict[Key, ImageState] = {}
        self._requests: dict[int, RequestState] = {}
        self._members: Counter[int] = Counter()

    # ---- requests -------------------------------------------------------------------------------------

    def open_request(
        self, interaction_id: int, member: int, task: asyncio.Task[object], events: object
    ) -> RequestState:
        if interaction_id in self._requests:
            raise IllegalMove(f"request {interaction_id} is already running")
        state = RequestState(interaction_id, member, task, events)
        self._requests[interaction_id] = state
        self._members[member] += 1
        return state

    def close_request(self, interaction_id: int) -> None:
        """The request has ended: every image of it has ended or was handed to a tracker."""
        state = self._requests.pop(interaction_id, None)
        if state is None:
            return
        self._members[state.member] -= 1
        if self._members[state.member] <= 0:
            del self._members[state.member]

    def member_requests(self, member: int) -> int:
        """A member's requests in flight (a request of five images counts once)."""
        return self._members[member]

    def requests(self) -> list[RequestState]:
        return list(self._requests.values())

    # ---- images ----------------------------------------------------------------------------------------

    def enter(
        self, key: Key, member: int, phase: Phase = Phase.QUEUED, task: asyncio.Task[object] | None = None
    ) -> None:
        """A job starts being followed here. Refused while another task follows it: one job, one task."""
        current = self._images.get(key)
        if current is not None and current.phase is not Phase.ENDED:
            raise IllegalMove(f"job {key} is already {current.phase.value} in this process")
        self._images[key] = ImageState(key, member, phase, task)

    def is_followed(self, key: Key) -> bool:
        current = self._images.get(key)
        return current is not None and current.phase is not Phase.ENDED

    def move(self, key: Key, phase: Phase) -> None:
        state = self._images.get(key)
        if state is None:
            raise IllegalMove(f"job {key} is not followed here")
        if phase not in MOVES[state.phase]:
            raise IllegalMove(f"job {key} cannot go from {state.phase.value} to {phase.value}")
        state.phase = phase

    def follow(self, key: Key, member: int, task: asyncio.Task[object]) -> bool:
        """`task` now follows a confirmed job: a job new here, or one handed over by the task that followed it
        until now (the caller). False, changing nothing, when some other task follows it: one job, one task."""
        current = self._images.get(key)
        if current is None or current.phase is Phase.ENDED:
            self.enter(key, member, Phase.CONFIRMED, task)
            return True
        if current.task is not asyncio.current_task() or current.phase is not Phase.CONFIRMED:
            return False
        current.task = task
        return True

    def end(self, key: Key, owner: asyncio.Task[object] | None = None) -> None:
        """The job needs nothing more from this process: ending is what every path does last, so it is
        idempotent, and with `owner` it ends only a job that task still follows (not one it handed over)."""
        state = self._images.get(key)
        if state is None or (owner is not None and state.task is not None and state.task is not owner):
            return
        del self._images[key]
        state.phase = Phase.ENDED

    def phase(self, key: Key) -> Phase:
        state = self._images.get(key)
        return Phase.ENDED if state is None else state.phase

    def of_request(self, interaction_id: int) -> list[ImageState]:
        return [state for key, state in self._images.items() if key[0] == interaction_id]

    def in_phase(self, *phases: Phase) -> Iterator[ImageState]:
        return (state for state in self._images.values() if state.phase in phases)

    def counts(self) -> Counter[Phase]:
        return Counter(state.phase for state in self._images.values())

    def tasks(self) -> set[asyncio.Task[object]]:
        """Every task following a job or running a request here: what a drain waits for."""
        found = {state.task for state in self._images.values() if state.task is not None}
        return found | {state.task for state in self._requests.values()}
