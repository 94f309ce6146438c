"""Credits and job records for the bot; knows nothing of Discord or HTTP."""

from .models import (
    COST_PER_JOB,
    GuildSettings,
    JobRecord,
    JobStatus,
    LedgerDefaults,
    LimitExceeded,
    Usage,
)
from .periods import Period, parse_period, period_bounds
from .store import INTERRUPTED_ERROR, Ledger
from .urls import DatabaseUrlError, normalize_database_url, redact_database_url

__all__ = [
    "COST_PER_JOB",
    "INTERRUPTED_ERROR",
    "DatabaseUrlError",
    "GuildSettings",
    "JobRecord",
    "JobStatus",
    "Ledger",
    "LedgerDefaults",
    "LimitExceeded",
    "Period",
    "Usage",
    "normalize_database_url",
    "parse_period",
    "period_bounds",
    "redact_database_url",
]
