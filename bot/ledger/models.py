"""The ledger's value types: plain frozen data, safe to hand to any layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .lifecycle import JobStatus
from .periods import Period, parse_period

COST_PER_JOB = 5
"""Credits Magic Hour charges for one background removal (refunded if the job ends in error)."""


class Payer(StrEnum):
    """Whose budget a request spends: the server that installed the bot, or the member's own user install."""

    GUILD = "guild"
    USER = "user"


@dataclass(frozen=True)
class Origin:
    """Where a request came from and where its answers go: one value, stored once per request.

    `guild_id` is None in DMs and group DMs. The token lets the bot edit its reply for Discord's 15 minutes;
    it is a credential, so kept out of repr.
    """

    interaction_id: int
    guild_id: int | None
    channel_id: int
    user_id: int
    created_at: datetime
    application_id: int | None = None
    token: str | None = field(default=None, repr=False)
    locale: str | None = None  # the member's Discord locale: what language answers are in
    guild_locale: str | None = None  # the server's community language (its alerts speak it)

    def log_context(self) -> str:
        return f"guild={self.guild_id} user={self.user_id} interaction={self.interaction_id}"


@dataclass(frozen=True)
class LedgerDefaults:
    """Limits for servers whose admins never set one, and the owner's ceiling on what admins may set."""

    credit_limit: int = 100
    period: Period = Period.MONTH
    max_credit_limit: int | None = None
    # The owner's spend across every server; None means no bot-wide budget.
    bot_budget: int | None = None
    bot_period: Period = Period.MONTH
    # What a member may spend through their own install of the app; None: user installs are off.
    user_install_limit: int | None = None
    user_install_period: Period = Period.DAY

    def __post_init__(self) -> None:
        object.__setattr__(self, "period", parse_period(self.period))
        object.__setattr__(self, "bot_period", parse_period(self.bot_period))
        object.__setattr__(self, "user_install_period", parse_period(self.user_install_period))
        if self.user_install_limit is not None and self.user_install_limit < 0:
            raise ValueError("user-install credit limit must be 0 or more")
        if self.credit_limit < 0:
            raise ValueError("default credit limit must be 0 or more")
        if self.bot_budget is not None and self.bot_budget < 0:
            raise ValueError("bot-wide budget must be 0 or more")
        if self.max_credit_limit is not None:
            if self.max_credit_limit < 0:
                raise ValueError("maximum credit limit must be 0 or more")
            if self.credit_limit > self.max_credit_limit:
                raise ValueError(
                    f"default credit limit {self.credit_limit} is above the maximum {self.max_credit_limit}"
                )


@dataclass(frozen=True)
class JobRecord:
    """One image's job in the journal. Where its answers go is its request's business (`RequestRecord`)."""

    id: int
    interaction_id: int
    guild_id: int | None  # the paying server; None when the member's own budget paid
    channel_id: int
    user_id: int
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
    sent_at: datetime | None = None  # when the create was sent (the status says whether it was)
    delivery_owner: str | None = None
    request_id: str | None = None  # the request this image belongs to (several jobs may share one interaction)
    position: int = 0  # the image's place in its request, from 0
    input_filename: str | None = None  # the member's file name, for naming the result
    payer: Payer = Payer.GUILD


@dataclass(frozen=True)
class ImageSpec:
    """One image of a request, as reserved: its inputs and the file name the result is named after."""

    input_url: str | None
    background_url: str | None = None
    name: str | None = None
    input_filename: str | None = None


@dataclass(frozen=True)
class RequestRecord:
    """One member's interaction: who asked, where to reply, whether only they may see it, how many images.

    Every delivery path (live, restart, a held job found later, a job past its deadline) builds its reply
    from this record, so the private flag can never be lost on the way.
    """

    id: str
    origin: Origin
    private: bool
    images: int
    payer: Payer = Payer.GUILD
    channel_posts: bool = True  # the bot is in the server: it may post in the channel (else: the interaction only)
    options: str | None = None  # what to do to its results, as the jobs layer wrote it (JSON)

    @property
    def interaction_id(self) -> int:
        return self.origin.interaction_id


@dataclass(frozen=True)
class GuildSettings:
    guild_id: int
    credit_limit: int
    period: Period
    member_limit: int | None = None
    alert_channel_id: int | None = None
    is_default: bool = True  # the limit comes from LedgerDefaults (admins never set one)
    updated_at: datetime | None = None
    granted_ceiling: int | None = None  # the owner raised this server's ceiling (`python -m bot grant`)
    max_credit_limit: int | None = None  # the ceiling admins may set here: the grant if any, else the global one
    locale: str | None = None  # the server's community language, as Discord last told it


@dataclass(frozen=True)
class Usage:
    used: int  # settled charges in the period
    reserved: int  # holds still counting: open jobs, `held` included
    limit: int
    period: Period
    period_start: datetime
    resets_at: datetime | None
    member_used: int | None = None  # the member's credits incl. reservations, when a user was asked for
    member_limit: int | None = None  # the server's member limit (the setting), whoever asked
    # The member's own cap, when a user was asked for: the largest limit among their roles, else `member_limit`.
    member_cap: int | None = None
    member_cap_role_id: int | None = None  # the role that gives `member_cap`; None when it is the member limit
    held: int = 0  # part of `reserved`: jobs whose create may have reached Magic Hour but were never confirmed
    held_since: datetime | None = None  # created_at of the oldest of those
    payer: Payer = Payer.GUILD  # whose budget these figures are: the server's, or the member's own

    @property
    def total(self) -> int:
        return self.used + self.reserved

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.total)


class LimitExceeded(Exception):
    """A reservation would overspend; carries what the user needs to be told.

    scope is "guild", "member", "user" (a member's own user-install budget) or "bot" (the owner's budget
    across all servers). For "bot", used/limit
    are bot-wide figures that span other servers: tell members only that the bot is out of credits and
    when it resets, never the numbers. A "member" refusal with `role_id` was the cap that role gives.
    """

    def __init__(
        self,
        scope: str,
        used: int,
        limit: int,
        period: Period,
        resets_at: datetime | None,
        cost: int,
        images: int = 1,
        *,
        role_id: int | None = None,
    ) -> None:
        self.images = images  # how many images the refused request covered; `cost` is their total
        self.role_id = role_id  # the member's cap came from this role (scope "member" only)
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


@dataclass(frozen=True)
class RoleLimit:
    """What each member carrying a role may spend in the server's period."""

    role_id: int
    credits: int
    updated_at: datetime | None = None


@dataclass(frozen=True)
class MemberCap:
    """The most one member may spend in the server's period, and where that figure comes from."""

    credits: int | None  # None: no cap of their own (the server's limit and the bot's budget still apply)
    role_id: int | None = None  # the role whose limit it is; None: the server's member limit (or no cap)


class CeilingExceeded(ValueError):
    """An admin asked for a limit above what the owner allows on this server."""

    def __init__(self, requested: int, ceiling: int, *, granted: bool) -> None:
        self.requested = requested
        self.ceiling = ceiling
        self.granted = granted  # the ceiling is this server's grant rather than the global maximum
        super().__init__(
            f"the credit limit cannot exceed {ceiling} credits on this server; "
            "the bot owner can raise it with `python -m bot grant`"
        )


@dataclass(frozen=True)
class HeldJobs:
    """Credits held by jobs whose create may have reached Magic Hour but was never confirmed."""

    count: int
    credits: int
    since: datetime | None  # created_at of the oldest


@dataclass(frozen=True)
class ReleasedJobs:
    count: int
    credits: int
    interaction_ids: tuple[int, ...]


@dataclass(frozen=True)
class GuildReport:
    guild_id: int
    limit: int
    period: Period
    used: int  # settled charges in the report window
    reserved: int  # open holds in the window (includes `held`)
    held: int
    jobs: int
    failures: int

    @property
    def spend(self) -> int:
        return self.used + self.reserved


@dataclass(frozen=True)
class BotUsage:
    """Spend across every server in the bot period, against the owner's budget (None: no budget)."""

    used: int
    reserved: int
    budget: int | None
    period: Period
    period_start: datetime
    resets_at: datetime | None

    @property
    def total(self) -> int:
        return self.used + self.reserved


@dataclass(frozen=True)
class UserInstallReport:
    """Spend through members' own installs of the app, all members together (they are not named)."""

    members: int
    used: int
    reserved: int  # open holds (includes `held`)
    held: int
    jobs: int
    failures: int

    @property
    def spend(self) -> int:
        return self.used + self.reserved


@dataclass(frozen=True)
class Report:
    period: Period
    period_start: datetime
    resets_at: datetime | None
    guilds: tuple[GuildReport, ...]  # biggest spend first
    bot: BotUsage
    user_installs: UserInstallReport | None = None  # None when no member's own install spent anything


@dataclass(frozen=True)
class DueDeletion:
    """A delivered job whose project should now be deleted at Magic Hour; claimed for a while by one process."""

    job_id: int
    project_id: str
    attempts: int
