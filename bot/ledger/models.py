"""The ledger's value types: plain frozen data, safe to hand to any layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .periods import Period, parse_period

COST_PER_JOB = 5
"""Credits Magic Hour charges for one background removal (refunded if the job ends in error)."""


class JobStatus(StrEnum):
    RESERVED = "reserved"  # credits held, create not answered yet
    SUBMITTED = "submitted"  # Magic Hour accepted the job (project id known)
    COMPLETE = "complete"
    FAILED = "failed"  # ended in error/canceled; credits_charged is what Magic Hour kept
    REFUNDED = "refunded"  # create failed for certain: nothing was charged
    UNKNOWN = "unknown"  # outcome ambiguous: keep counting the reservation until resolved


HOLDING_STATUSES = frozenset({JobStatus.RESERVED, JobStatus.SUBMITTED, JobStatus.UNKNOWN})
"""Statuses whose `credits_reserved` still count against the limit."""
SETTLED_STATUSES = frozenset({JobStatus.COMPLETE, JobStatus.FAILED})
"""Statuses whose `credits_charged` count against the limit."""


@dataclass(frozen=True)
class LedgerDefaults:
    """Limits for servers whose admins never set one, and the owner's ceiling on what admins may set."""

    credit_limit: int = 100
    period: Period = Period.MONTH
    max_credit_limit: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "period", parse_period(self.period))
        if self.credit_limit < 0:
            raise ValueError("default credit limit must be 0 or more")
        if self.max_credit_limit is not None:
            if self.max_credit_limit < 0:
                raise ValueError("maximum credit limit must be 0 or more")
            if self.credit_limit > self.max_credit_limit:
                raise ValueError(
                    f"default credit limit {self.credit_limit} is above the maximum {self.max_credit_limit}"
                )


@dataclass(frozen=True)
class JobRecord:
    id: int
    interaction_id: int
    guild_id: int
    channel_id: int
    user_id: int
    application_id: int | None
    # Lets the bot edit its reply after a restart; a credential for 15 minutes, so kept out of repr.
    interaction_token: str | None = field(repr=False)
    message_id: int | None
    project_id: str | None
    status: JobStatus
    credits_reserved: int
    credits_charged: int | None
    error: str | None
    input_url: str | None
    background_url: str | None
    name: str | None
    created_at: datetime
    updated_at: datetime
    delivered: bool

    @property
    def counted_credits(self) -> int:
        """What this job counts against its guild's limit right now."""
        if self.status in HOLDING_STATUSES:
            return self.credits_reserved
        if self.status in SETTLED_STATUSES:
            return self.credits_reserved if self.credits_charged is None else self.credits_charged
        return 0

    @property
    def is_final(self) -> bool:
        return self.status in SETTLED_STATUSES or self.status is JobStatus.REFUNDED


@dataclass(frozen=True)
class GuildSettings:
    guild_id: int
    credit_limit: int
    period: Period
    member_limit: int | None = None
    alert_channel_id: int | None = None
    is_default: bool = True  # the limit comes from LedgerDefaults (admins never set one)
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Usage:
    used: int  # settled charges in the period
    reserved: int  # reservations still counting (reserved, submitted, unknown)
    limit: int
    period: Period
    period_start: datetime
    resets_at: datetime | None
    member_used: int | None = None  # the member's credits incl. reservations, when a user was asked for
    member_limit: int | None = None

    @property
    def total(self) -> int:
        return self.used + self.reserved

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.total)

    @property
    def fraction(self) -> float:
        """Share of the limit spent; a zero limit counts as fully spent."""
        if self.limit <= 0:
            return 1.0
        return self.total / self.limit

    @property
    def member_remaining(self) -> int | None:
        if self.member_limit is None or self.member_used is None:
            return None
        return max(0, self.member_limit - self.member_used)


class LimitExceeded(Exception):
    """A reservation would overspend; carries what the user needs to be told."""

    def __init__(
        self,
        scope: str,
        used: int,
        limit: int,
        period: Period,
        resets_at: datetime | None,
        cost: int,
    ) -> None:
        self.scope = scope
        self.used = used
        self.limit = limit
        self.period = period
        self.resets_at = resets_at
        self.cost = cost
        when = f"resets {resets_at.isoformat()}" if resets_at else "never resets"
        super().__init__(
            f"{scope} credit limit reached: {used}/{limit} used, {cost} needed (period {period.value}, {when})"
        )

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)
