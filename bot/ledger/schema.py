"""Table definitions used by queries; the DDL that creates them lives in `migrations.py`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect


class UtcDateTime(TypeDecorator[datetime]):
    """timestamptz on PostgreSQL, naive-UTC text on SQLite; always aware UTC in Python."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("the ledger stores timezone-aware datetimes only")
        value = value.astimezone(UTC)
        # SQLite compares the stored text, so every value must be written in one zone and format.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


REQUEST_ID_MAX = 40
"""requests.id: the bot's own request id (not Discord's interaction id), since schema v5."""

PROJECT_ID_MAX = 255
"""jobs.project_id length since schema v3 (v1 had 64)."""

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UtcDateTime, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("interaction_id", BigInteger, nullable=False),  # the request's; unique with `position` since v5
    Column("guild_id", BigInteger),  # the paying server; NULL when the member's own install paid (since v7)
    Column("channel_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("application_id", BigInteger),
    Column("interaction_token", Text),
    Column("message_id", BigInteger),
    Column("project_id", String(PROJECT_ID_MAX), unique=True),
    Column("status", String(16), nullable=False),
    Column("credits_reserved", Integer, nullable=False),
    Column("credits_charged", Integer),
    Column("error", Text),
    Column("input_url", Text),
    Column("background_url", Text),
    Column("name", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("delivered", Boolean, nullable=False, default=False),
    Column("sent_at", UtcDateTime),
    Column("delivery_owner", Text),
    Column("delivery_claimed_at", UtcDateTime),
    Column("request_id", String(REQUEST_ID_MAX)),
    Column("position", Integer, nullable=False, server_default="0"),
    Column("input_filename", Text),
    Column("payer", String(8), nullable=False, server_default="guild"),  # "guild" or "user", since v7
    # Deleting the project at Magic Hour once its result was delivered (since v8): due, done, failed tries.
    Column("delete_after", UtcDateTime),
    Column("deleted_at", UtcDateTime),
    Column("delete_attempts", Integer, nullable=False, server_default="0"),
)

requests = Table(
    "requests",
    metadata,
    Column("id", String(REQUEST_ID_MAX), primary_key=True),
    Column("interaction_id", BigInteger, nullable=False, unique=True),
    Column("guild_id", BigInteger),  # where it was asked; NULL in DMs (since v7)
    Column("channel_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("application_id", BigInteger),
    Column("interaction_token", Text),
    Column("private", Boolean, nullable=False, default=False),
    Column("images", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("payer", String(8), nullable=False, server_default="guild"),  # since v7
    Column("channel_posts", Boolean, nullable=False, server_default="1"),  # may the bot post there (since v7)
    Column("options", Text),  # what to do to the results (JSON, the jobs layer's business), since v8
    Column("locale", String(16)),  # the member's Discord locale, for answers that come later (since v10)
)

guild_settings = Table(
    "guild_settings",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    # NULL limit and period: the server follows LedgerDefaults (the row may exist only as a lock target).
    Column("credit_limit", Integer),
    Column("period", String(8)),
    Column("member_limit", Integer),
    Column("alert_channel_id", BigInteger),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("granted_ceiling", Integer),
    Column("locale", String(16)),  # the server's community language, for its alerts (since v10)
)

role_limits = Table(
    "role_limits",
    metadata,
    # What each member carrying the role may spend in the server's period (since v9); no row: no limit.
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("role_id", BigInteger, primary_key=True, autoincrement=False),
    Column("credits", Integer, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

alerts_sent = Table(
    "alerts_sent",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("period_start", UtcDateTime, primary_key=True),
    Column("threshold", Integer, primary_key=True, autoincrement=False),
    Column("sent_at", UtcDateTime, nullable=False),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("project_id", String(255), primary_key=True),
    Column("event_type", String(32), primary_key=True),
    Column("payload", Text, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
)

ALL_TIME = -1
"""balances.day of the row that sums every day: a period that never resets reads one row."""

balances = Table(
    "balances",
    metadata,
    # scope: "bot" (guild_id = user_id = 0), "guild" (user_id = 0), "member" (a member in a guild) or "user" (a
    # member's own user-install budget, guild_id = 0).
    Column("scope", String(8), primary_key=True),
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    # UTC days since 1970-01-01 of the jobs' reservation, or ALL_TIME.
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("used", BigInteger, nullable=False),
    Column("reserved", BigInteger, nullable=False),
    Column("held", BigInteger, nullable=False),
    Column("jobs", BigInteger, nullable=False),
    Column("failures", BigInteger, nullable=False),
)
"""Running totals beside the journal (the jobs), moved in the same transaction as every job transition."""
