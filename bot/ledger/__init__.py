"""Credits and job records for the bot; knows nothing of Discord or HTTP."""

from .core import MAX_CREDITS
from .export import export_csv
from .lifecycle import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    SETTLED_STATUSES,
    TRANSITIONS,
    JobStatus,
    RequestState,
    Tally,
    request_state,
)
from .models import (
    COST_PER_JOB,
    BotUsage,
    CeilingExceeded,
    GuildReport,
    GuildSettings,
    HeldJobs,
    ImageSpec,
    JobRecord,
    LedgerDefaults,
    LimitExceeded,
    Origin,
    ReleasedJobs,
    Report,
    RequestRecord,
    Usage,
)
from .periods import Period, parse_period, period_bounds
from .store import Ledger
from .transitions import INTERRUPTED_ERROR, NEVER_SENT_ERROR, Claim
from .urls import DatabaseUrlError, normalize_database_url, redact_database_url

__all__ = [
    "COST_PER_JOB",
    "FINAL_STATUSES",
    "INTERRUPTED_ERROR",
    "MAX_CREDITS",
    "NEVER_SENT_ERROR",
    "OPEN_STATUSES",
    "SETTLED_STATUSES",
    "TRANSITIONS",
    "BotUsage",
    "CeilingExceeded",
    "Claim",
    "DatabaseUrlError",
    "GuildReport",
    "GuildSettings",
    "HeldJobs",
    "ImageSpec",
    "JobRecord",
    "JobStatus",
    "Ledger",
    "LedgerDefaults",
    "LimitExceeded",
    "Origin",
    "Period",
    "ReleasedJobs",
    "Report",
    "RequestRecord",
    "RequestState",
    "Tally",
    "Usage",
    "export_csv",
    "normalize_database_url",
    "parse_period",
    "period_bounds",
    "redact_database_url",
    "request_state",
]
