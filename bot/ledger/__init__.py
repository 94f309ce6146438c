"""Credits and job records for the bot; knows nothing of Discord or HTTP."""

from .export import export_csv
from .models import (
    COST_PER_JOB,
    BotUsage,
    CeilingExceeded,
    GuildReport,
    GuildSettings,
    HeldJobs,
    ImageSpec,
    JobRecord,
    JobStatus,
    LedgerDefaults,
    LimitExceeded,
    ReleasedJobs,
    Report,
    RequestRecord,
    Usage,
)
from .periods import Period, parse_period, period_bounds
from .store import INTERRUPTED_ERROR, NEVER_SENT_ERROR, Ledger
from .urls import DatabaseUrlError, normalize_database_url, redact_database_url

__all__ = [
    "COST_PER_JOB",
    "INTERRUPTED_ERROR",
    "NEVER_SENT_ERROR",
    "BotUsage",
    "CeilingExceeded",
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
    "Period",
    "ReleasedJobs",
    "Report",
    "RequestRecord",
    "Usage",
    "export_csv",
    "normalize_database_url",
    "parse_period",
    "period_bounds",
    "redact_database_url",
]
