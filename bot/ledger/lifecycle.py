"""What can happen to a job, on one page: its stored states, the moves between them, and what each counts.

Every other part of the ledger asks this module instead of deciding for itself: a transition's
compare-and-set reads `TRANSITIONS`, the balances move by the difference of `tally()` before and after,
and restart recovery applies `ON_RESTART`. A request (several images) has no stored state of its own:
it is derived from its images' (`request_state`).

    reserved ──► sending ◄──► submitted ──► complete
        │          │   ▲          │
        │          ▼   │          └───────► failed
        │          held┘
        ▼          │
    refunded ◄─────┘   (and from sending: the create was refused for certain)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class JobStatus(StrEnum):
    RESERVED = "reserved"  # credits held; the create has not been sent
    SENDING = "sending"  # the create is on its way: from here a crash may have charged
    HELD = "held"  # the create may have reached Magic Hour but no project id came back: counted until resolved
    SUBMITTED = "submitted"  # Magic Hour confirmed the job: its project id is known and can be polled
    COMPLETE = "complete"
    FAILED = "failed"  # ended in error/canceled at Magic Hour; credits_charged is what Magic Hour kept
    REFUNDED = "refunded"  # nothing was charged for certain: never sent, refused, or released


TRANSITIONS: Mapping[JobStatus, frozenset[JobStatus]] = {
    JobStatus.RESERVED: frozenset({JobStatus.SENDING, JobStatus.REFUNDED}),
    JobStatus.SENDING: frozenset({JobStatus.SUBMITTED, JobStatus.HELD, JobStatus.REFUNDED}),
    # A held job's project turns up (its webhook event, or the create's late answer), or an admin releases it.
    JobStatus.HELD: frozenset({JobStatus.SUBMITTED, JobStatus.REFUNDED}),
    # submitted → submitted: the same answer recorded twice (an event beat the create's answer);
    # submitted → sending: Magic Hour could not fetch the input, so the create goes again with a fresh URL.
    JobStatus.SUBMITTED: frozenset({JobStatus.SENDING, JobStatus.SUBMITTED, JobStatus.COMPLETE, JobStatus.FAILED}),
    # Settled again: Magic Hour updates credits_charged when it refunds a job.
    JobStatus.COMPLETE: frozenset({JobStatus.COMPLETE}),
    JobStatus.FAILED: frozenset({JobStatus.FAILED}),
    JobStatus.REFUNDED: frozenset(),
}

OPEN_STATUSES = frozenset({JobStatus.RESERVED, JobStatus.SENDING, JobStatus.HELD, JobStatus.SUBMITTED})
SETTLED_STATUSES = frozenset({JobStatus.COMPLETE, JobStatus.FAILED})
FINAL_STATUSES = frozenset({*SETTLED_STATUSES, JobStatus.REFUNDED})
HOLDING_STATUSES = frozenset({JobStatus.RESERVED, JobStatus.SENDING, JobStatus.SUBMITTED})
"""Open and counted as `reserved`; a `held` job counts in its own column."""

ON_RESTART: Mapping[JobStatus, JobStatus] = {
    JobStatus.RESERVED: JobStatus.REFUNDED,  # queued only: never sent, so nothing was charged
    JobStatus.SENDING: JobStatus.HELD,  # the create may have happened: keep counting until it is known
}
"""What a new process does with a dead process's jobs. `submitted` jobs are polled to their end (`RESUMABLE`);
`held` jobs wait for their webhook event or an admin."""
RESUMABLE = frozenset({JobStatus.SUBMITTED})


def can_move(before: JobStatus, after: JobStatus) -> bool:
    return after in TRANSITIONS[before]


def sources_of(after: JobStatus) -> frozenset[JobStatus]:
    """Every status a job may be in for a move to `after` (what a compare-and-set matches)."""
    return frozenset(before for before, targets in TRANSITIONS.items() if after in targets)


@dataclass(frozen=True)
class Tally:
    """What jobs add to a balance: credits by column, and how many jobs (and failures) they are."""

    used: int = 0  # charges of settled jobs
    reserved: int = 0  # holds of open jobs whose fate is being followed
    held: int = 0  # holds of jobs whose create's outcome is unknown
    jobs: int = 0
    failures: int = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(a + b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def __sub__(self, other: Tally) -> Tally:
        return Tally(*(a - b for a, b in zip(self.astuple(), other.astuple(), strict=True)))

    def __neg__(self) -> Tally:
        return Tally() - self

    def astuple(self) -> tuple[int, int, int, int, int]:
        return (self.used, self.reserved, self.held, self.jobs, self.failures)

    @property
    def counted(self) -> int:
        """What counts against a limit: charges, holds and unknown outcomes alike."""
        return self.used + self.reserved + self.held

    @property
    def is_zero(self) -> bool:
        return not any(self.astuple())

    @classmethod
    def total(cls, tallies: Iterable[Tally]) -> Tally:
        result = cls()
        for tally in tallies:
            result = result + tally
        return result


def tally(status: JobStatus, credits_reserved: int, credits_charged: int | None) -> Tally:
    """What one job in `status` counts: the hold while open, the charge once settled, nothing if refunded."""
    if status in HOLDING_STATUSES:
        return Tally(reserved=credits_reserved, jobs=1)
    if status is JobStatus.HELD:
        return Tally(held=credits_reserved, jobs=1)
    if status in SETTLED_STATUSES:
        charged = credits_reserved if credits_charged is None else credits_charged
        return Tally(used=charged, jobs=1, failures=int(status is JobStatus.FAILED))
    return Tally(jobs=1)


class RequestState(StrEnum):
    OPEN = "open"  # some image is still queued, running or held
    ENDED = "ended"  # every image is final


def request_state(statuses: Iterable[JobStatus]) -> RequestState:
    """A request's state is its images': derived, never stored twice."""
    return RequestState.OPEN if any(status in OPEN_STATUSES for status in statuses) else RequestState.ENDED
