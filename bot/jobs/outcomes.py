"""What a failure means, apart from how it is said: its kind, and what it cost the member.

The runner and the adapter decide with `classify()`; `bot/replies.py` holds one sentence per kind. Keeping
the two apart means a translation (or a new way to say it) never touches the decision, and the decision
(was anything charged? is this a refusal only the member should see?) is tested without words.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.balance import BalanceTooLow
from bot.ledger import LimitExceeded
from bot.magic_hour import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    InternalServerError,
    JobFailedError,
    MagicHourError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    create_may_have_happened,
    is_input_fetch_failure,
)

from .errors import JobCancelled, MemberBusy, ShuttingDown, StillRunning, Unexpected


class FailureKind(StrEnum):
    LIMIT = "limit"  # a server, member or bot-wide limit refused the request
    MEMBER_BUSY = "member_busy"
    SHUTTING_DOWN = "shutting_down"
    CANCELLED = "cancelled"  # by the member, while queued
    STILL_RUNNING = "still_running"  # past the deadline: followed in the background
    FAILED_AT_MAGIC_HOUR = "failed_at_magic_hour"  # the job ended in error
    INPUT_UNREACHABLE = "input_unreachable"  # Magic Hour could not fetch the image (a dead link, an expired URL)
    CANCELED_AT_MAGIC_HOUR = "canceled_at_magic_hour"
    REJECTED = "rejected"  # Magic Hour refused the input (400/422)
    OUT_OF_CREDITS = "out_of_credits"  # the owner's Magic Hour account cannot pay
    MISCONFIGURED = "misconfigured"  # the key or the plan is wrong: only the owner can fix it
    OUTCOME_UNKNOWN = "outcome_unknown"  # the create may have happened: credits held
    BUSY = "busy"  # Magic Hour is overloaded or unreachable; nothing was created
    REFUSED = "refused"  # another status Magic Hour refused the job with
    RECORDED = "recorded"  # a reason an earlier process wrote in the ledger
    UNEXPECTED = "unexpected"


class Charge(StrEnum):
    NOTHING = "nothing"  # nothing was or will be charged
    KEPT = "kept"  # Magic Hour kept `Failure.kept` credits (possibly 0, after a refund)
    HELD = "held"  # unknown: the credits stay counted until someone knows
    RUNNING = "running"  # the job goes on and will be charged when it ends


REFUSALS = frozenset({FailureKind.LIMIT, FailureKind.MEMBER_BUSY, FailureKind.SHUTTING_DOWN})
"""Said to the member only (an ephemeral message), never in the channel."""


@dataclass(frozen=True)
class Failure:
    kind: FailureKind
    charge: Charge
    kept: int = 0  # with Charge.KEPT: what Magic Hour kept
    message: str | None = None  # Magic Hour's own words, or the recorded reason
    status: int | None = None  # an HTTP status, for REFUSED
    limit: LimitExceeded | None = None  # for LIMIT: which limit, how much is left, when it resets

    @property
    def is_refusal(self) -> bool:
        return self.kind in REFUSALS


def classify(error: BaseException | str | None) -> Failure:
    """What happened, and what it cost; nothing here is worded for anyone."""
    match error:
        case LimitExceeded():
            return Failure(FailureKind.LIMIT, Charge.NOTHING, limit=error)
        case MemberBusy():
            return Failure(FailureKind.MEMBER_BUSY, Charge.NOTHING)
        case ShuttingDown():
            return Failure(FailureKind.SHUTTING_DOWN, Charge.NOTHING)
        case JobCancelled():
            return Failure(FailureKind.CANCELLED, Charge.NOTHING)
        case StillRunning():
            return Failure(FailureKind.STILL_RUNNING, Charge.RUNNING)
        case JobFailedError():
            kept = error.project.credits_charged if error.project is not None else 0
            kind = FailureKind.CANCELED_AT_MAGIC_HOUR if error.code == "canceled" else FailureKind.FAILED_AT_MAGIC_HOUR
            if kind is FailureKind.FAILED_AT_MAGIC_HOUR and is_input_fetch_failure(error):
                kind = FailureKind.INPUT_UNREACHABLE
            return Failure(kind, Charge.KEPT, kept=max(kept, 0), message=error.message)
        case BadRequestError() | UnprocessableEntityError():
            return Failure(FailureKind.REJECTED, Charge.NOTHING, message=error.message)
        case InsufficientCreditsError() | BalanceTooLow():
            return Failure(FailureKind.OUT_OF_CREDITS, Charge.NOTHING)
        case AuthenticationError() | PermissionDeniedError() | NotFoundError():
            return Failure(FailureKind.MISCONFIGURED, Charge.NOTHING)
        case MagicHourError() if create_may_have_happened(error):
            return Failure(FailureKind.OUTCOME_UNKNOWN, Charge.HELD)
        case RateLimitError() | InternalServerError() | APIConnectionError():
            return Failure(FailureKind.BUSY, Charge.NOTHING)
        case APIStatusError():
            return Failure(FailureKind.REFUSED, Charge.NOTHING, status=error.status)
        case Unexpected():
            return Failure(FailureKind.UNEXPECTED, Charge.HELD if error.charged else Charge.NOTHING)
        case str():
            return Failure(FailureKind.RECORDED, Charge.NOTHING, message=error)
    return Failure(FailureKind.UNEXPECTED, Charge.NOTHING)
