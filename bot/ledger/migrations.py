"""Ordered, append-only schema migrations, applied in one transaction when the ledger opens.

Each step is frozen as it shipped: never edit an old step, add a new one. The whole run holds the
SQLite write lock (BEGIN IMMEDIATE) or a PostgreSQL advisory lock, so two processes starting at once
apply each step exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.types import TypeEngine

from .schema import Id, UtcDateTime, schema_version

# pg_advisory_xact_lock(class, key): the class marks "ledger migration", the key is the schema.
_PG_MIGRATION_LOCK_CLASS = 0x4C44


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer release; refusing to run avoids corrupting it."""


def _v1_initial(conn: Connection) -> None:
    v1 = MetaData()
    Table(
        "jobs",
        v1,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("interaction_id", BigInteger, nullable=False, unique=True),
        Column("guild_id", BigInteger, nullable=False),
        Column("channel_id", BigInteger, nullable=False),
        Column("user_id", BigInteger, nullable=False),
        Column("project_id", String(64), unique=True),
        Column("status", String(16), nullable=False),
        Column("credits_reserved", Integer, nullable=False),
        Column("credits_charged", Integer),
        Column("error", Text),
        Column("created_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Index("ix_jobs_guild_created", "guild_id", "created_at"),
        Index("ix_jobs_status", "status"),
    )
    Table(
        "guild_settings",
        v1,
        Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
        Column("credit_limit", Integer),
        Column("period", String(8)),
        Column("updated_at", UtcDateTime, nullable=False),
    )
    Table(
        "meta",
        v1,
        Column("key", String(255), primary_key=True),
        Column("value", Text, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
    )
    v1.create_all(conn)


def _add_column(conn: Connection, table: str, name: str, type_: TypeEngine, extra: str = "") -> None:
    ddl_type = type_.compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {ddl_type} {extra}".rstrip())


def _v2_delivery_members_alerts(conn: Connection) -> None:
    """Restart-safe delivery (token, message, inputs), member limits, alert channel and alert dedup."""
    _add_column(conn, "jobs", "application_id", BigInteger())
    _add_column(conn, "jobs", "interaction_token", Text())
    _add_column(conn, "jobs", "message_id", BigInteger())
    _add_column(conn, "jobs", "input_url", Text())
    _add_column(conn, "jobs", "background_url", Text())
    _add_column(conn, "jobs", "name", Text())
    _add_column(conn, "jobs", "delivered", Boolean(), "NOT NULL DEFAULT false")
    _add_column(conn, "guild_settings", "member_limit", Integer())
    _add_column(conn, "guild_settings", "alert_channel_id", BigInteger())
    conn.exec_driver_sql("CREATE INDEX ix_jobs_guild_user_created ON jobs (guild_id, user_id, created_at)")
    Table(
        "alerts_sent",
        MetaData(),
        Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
        Column("period_start", UtcDateTime, primary_key=True),
        Column("threshold", Integer, primary_key=True, autoincrement=False),
        Column("sent_at", UtcDateTime, nullable=False),
    ).create(conn)


BOT_BUDGET_LOCK_KEY = "ledger.bot_budget_lock"
"""The meta row every reservation locks first while a bot-wide budget is set (before its guild row)."""


def _v3_sending_grants_delivery_claims(conn: Connection) -> None:
    """Tell queued jobs from sent creates, claim deliveries, owner grants, longer project ids, bot budget."""
    _add_column(conn, "jobs", "sent_at", UtcDateTime())
    _add_column(conn, "jobs", "delivery_owner", Text())
    _add_column(conn, "jobs", "delivery_claimed_at", UtcDateTime())
    _add_column(conn, "guild_settings", "granted_ceiling", Integer())
    if conn.dialect.name == "postgresql":  # SQLite never enforced the length
        conn.exec_driver_sql("ALTER TABLE jobs ALTER COLUMN project_id TYPE VARCHAR(255)")
    # Bot-wide sums (budget, reports, spend alerts) read every guild's jobs by creation time.
    conn.exec_driver_sql("CREATE INDEX ix_jobs_created ON jobs (created_at)")
    meta_v1 = Table("meta", MetaData(), Column("key", String), Column("value", Text), Column("updated_at", UtcDateTime))
    conn.execute(insert(meta_v1).values(key=BOT_BUDGET_LOCK_KEY, value="lock row", updated_at=datetime.now(UTC)))


def _v4_webhook_events(conn: Connection) -> None:
    """Magic Hour webhook events, one row per (project, type): duplicates are refused by the key,
    and a process that does not own the job reads the event from here when NOTIFY wakes it."""
    Table(
        "webhook_events",
        MetaData(),
        Column("project_id", String(255), primary_key=True),
        Column("event_type", String(32), primary_key=True),
        Column("payload", Text, nullable=False),
        Column("received_at", UtcDateTime, nullable=False),
    ).create(conn)


def _v5_jobs_table_sqlite(conn: Connection) -> None:
    """SQLite cannot drop a column's UNIQUE: rebuild jobs without it on interaction_id, keeping every row and id."""
    Table(
        "jobs_v5",
        MetaData(),
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("interaction_id", BigInteger, nullable=False),
        Column("guild_id", BigInteger, nullable=False),
        Column("channel_id", BigInteger, nullable=False),
        Column("user_id", BigInteger, nullable=False),
        Column("application_id", BigInteger),
        Column("interaction_token", Text),
        Column("message_id", BigInteger),
        Column("project_id", String(255), unique=True),
        Column("status", String(16), nullable=False),
        Column("credits_reserved", Integer, nullable=False),
        Column("credits_charged", Integer),
        Column("error", Text),
        Column("input_url", Text),
        Column("background_url", Text),
        Column("name", Text),
        Column("created_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("delivered", Boolean, nullable=False, server_default=text("0")),
        Column("sent_at", UtcDateTime),
        Column("delivery_owner", Text),
        Column("delivery_claimed_at", UtcDateTime),
        Column("request_id", String(40)),
        Column("position", Integer, nullable=False, server_default=text("0")),
        Column("input_filename", Text),
    ).create(conn)
    conn.exec_driver_sql(
        "INSERT INTO jobs_v5 (id, interaction_id, guild_id, channel_id, user_id, application_id, interaction_token, "
        "message_id, project_id, status, credits_reserved, credits_charged, error, input_url, background_url, name, "
        "created_at, updated_at, delivered, sent_at, delivery_owner, delivery_claimed_at) "
        "SELECT id, interaction_id, guild_id, channel_id, user_id, application_id, interaction_token, "
        "message_id, project_id, status, credits_reserved, credits_charged, error, input_url, background_url, name, "
        "created_at, updated_at, delivered, sent_at, delivery_owner, delivery_claimed_at FROM jobs"
    )
    conn.exec_driver_sql("DROP TABLE jobs")
    conn.exec_driver_sql("ALTER TABLE jobs_v5 RENAME TO jobs")
    conn.exec_driver_sql("CREATE INDEX ix_jobs_guild_created ON jobs (guild_id, created_at)")
    conn.exec_driver_sql("CREATE INDEX ix_jobs_status ON jobs (status)")
    conn.exec_driver_sql("CREATE INDEX ix_jobs_guild_user_created ON jobs (guild_id, user_id, created_at)")
    conn.exec_driver_sql("CREATE INDEX ix_jobs_created ON jobs (created_at)")


def _v5_jobs_table_postgresql(conn: Connection) -> None:
    unique = conn.exec_driver_sql(
        "SELECT conname FROM pg_constraint WHERE conrelid = 'jobs'::regclass AND contype = 'u' "
        "AND pg_get_constraintdef(oid) = 'UNIQUE (interaction_id)'"
    ).scalars()
    for name in list(unique):
        conn.exec_driver_sql(f'ALTER TABLE jobs DROP CONSTRAINT "{name}"')
    _add_column(conn, "jobs", "request_id", String(40))
    _add_column(conn, "jobs", '"position"', Integer(), "NOT NULL DEFAULT 0")
    _add_column(conn, "jobs", "input_filename", Text())


def _v5_requests(conn: Connection) -> None:
    """One interaction may ask for several images: a request row (who, where to reply) and a job per image.

    Every existing job becomes a request of its own, so no row is lost and history stays per image.
    """
    if conn.dialect.name == "postgresql":
        _v5_jobs_table_postgresql(conn)
    else:
        _v5_jobs_table_sqlite(conn)
    Table(
        "requests",
        MetaData(),
        Column("id", String(40), primary_key=True),
        Column("interaction_id", BigInteger, nullable=False, unique=True),
        Column("guild_id", BigInteger, nullable=False),
        Column("channel_id", BigInteger, nullable=False),
        Column("user_id", BigInteger, nullable=False),
        Column("application_id", BigInteger),
        Column("interaction_token", Text),
        Column("private", Boolean, nullable=False),
        Column("images", Integer, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
    ).create(conn)
    # A migrated job's request id is "legacy-<job id>": never a Discord id, never a new request's (hex) id.
    conn.exec_driver_sql(
        "INSERT INTO requests (id, interaction_id, guild_id, channel_id, user_id, application_id, interaction_token, "
        "private, images, created_at) SELECT 'legacy-' || CAST(id AS VARCHAR(20)), interaction_id, guild_id, "
        "channel_id, user_id, application_id, interaction_token, false, 1, created_at FROM jobs"
    )
    conn.exec_driver_sql("UPDATE jobs SET request_id = 'legacy-' || CAST(id AS VARCHAR(20))")
    conn.exec_driver_sql('CREATE UNIQUE INDEX ux_jobs_interaction_position ON jobs (interaction_id, "position")')
    conn.exec_driver_sql('CREATE UNIQUE INDEX ux_jobs_request_position ON jobs (request_id, "position")')


_V6_SCOPES = (("guild", "guild_id", "0"), ("member", "guild_id", "user_id"), ("bot", "0", "0"))


def _v6_lifecycle_and_balances(conn: Connection) -> None:
    """Explicit job states (sending, held), running balances built from the journal, interaction tokens kept
    on requests only, and no webhook events kept for jobs that have settled or were never the bot's."""
    conn.exec_driver_sql("UPDATE jobs SET status = 'sending' WHERE status = 'reserved' AND sent_at IS NOT NULL")
    conn.exec_driver_sql("UPDATE jobs SET status = 'held' WHERE status = 'unknown' AND project_id IS NULL")
    conn.exec_driver_sql("UPDATE jobs SET status = 'submitted' WHERE status = 'unknown'")  # a project to poll
    conn.exec_driver_sql("UPDATE jobs SET status = 'held' WHERE status = 'submitted' AND project_id IS NULL")
    conn.exec_driver_sql("UPDATE jobs SET interaction_token = NULL WHERE interaction_token IS NOT NULL")
    Table(
        "balances",
        MetaData(),
        Column("scope", String(8), primary_key=True),
        Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
        Column("user_id", BigInteger, primary_key=True, autoincrement=False),
        Column("day", Integer, primary_key=True, autoincrement=False),
        Column("used", BigInteger, nullable=False),
        Column("reserved", BigInteger, nullable=False),
        Column("held", BigInteger, nullable=False),
        Column("jobs", BigInteger, nullable=False),
        Column("failures", BigInteger, nullable=False),
    ).create(conn)
    if conn.dialect.name == "postgresql":
        day = "(CAST(created_at AT TIME ZONE 'UTC' AS DATE) - DATE '1970-01-01')"
    else:  # naive UTC text: 'YYYY-MM-DD HH:MM:SS…'
        day = "CAST(julianday(substr(created_at, 1, 10)) - 2440587.5 AS INTEGER)"
    counted = (
        "CASE WHEN status IN ('complete', 'failed') THEN COALESCE(credits_charged, credits_reserved) ELSE 0 END "
        "AS used, "
        "CASE WHEN status IN ('reserved', 'sending', 'submitted') THEN credits_reserved ELSE 0 END AS reserved, "
        "CASE WHEN status = 'held' THEN credits_reserved ELSE 0 END AS held, "
        "CASE WHEN status = 'failed' THEN 1 ELSE 0 END AS failures"
    )
    for scope, guild, user in _V6_SCOPES:
        for bucket in (day, "-1"):  # each day's row, and the all-time row
            # Every part is a constant of this function.
            source = f"SELECT {guild} AS g, {user} AS u, {bucket} AS d, {counted} FROM jobs"  # noqa: S608
            sums = f"SELECT '{scope}', g, u, d, SUM(used), SUM(reserved), SUM(held), COUNT(*), SUM(failures)"
            conn.exec_driver_sql(
                "INSERT INTO balances (scope, guild_id, user_id, day, used, reserved, held, jobs, failures) "
                + f"{sums} FROM ({source}) AS counted GROUP BY g, u, d"
            )
    conn.exec_driver_sql(
        "DELETE FROM webhook_events WHERE project_id NOT IN (SELECT project_id FROM jobs WHERE project_id IS NOT NULL "
        "AND status IN ('reserved', 'sending', 'held', 'submitted'))"
    )
    conn.exec_driver_sql("CREATE INDEX ix_webhook_events_received ON webhook_events (received_at)")


def _v7_jobs_sqlite(conn: Connection) -> None:
    """SQLite cannot drop NOT NULL: rebuild jobs with a nullable guild_id and its payer, keeping every row and id."""
    Table(
        "jobs_v7",
        MetaData(),
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("interaction_id", BigInteger, nullable=False),
        Column("guild_id", BigInteger),
        Column("channel_id", BigInteger, nullable=False),
        Column("user_id", BigInteger, nullable=False),
        Column("application_id", BigInteger),
        Column("interaction_token", Text),
        Column("message_id", BigInteger),
        Column("project_id", String(255), unique=True),
        Column("status", String(16), nullable=False),
        Column("credits_reserved", Integer, nullable=False),
        Column("credits_charged", Integer),
        Column("error", Text),
        Column("input_url", Text),
        Column("background_url", Text),
        Column("name", Text),
        Column("created_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Column("delivered", Boolean, nullable=False, server_default=text("0")),
        Column("sent_at", UtcDateTime),
        Column("delivery_owner", Text),
        Column("delivery_claimed_at", UtcDateTime),
        Column("request_id", String(40)),
        Column("position", Integer, nullable=False, server_default=text("0")),
        Column("input_filename", Text),
        Column("payer", String(8), nullable=False, server_default=text("'guild'")),
    ).create(conn)
    columns = (
        "id, interaction_id, guild_id, channel_id, user_id, application_id, interaction_token, message_id, "
        "project_id, status, credits_reserved, credits_charged, error, input_url, background_url, name, created_at, "
        'updated_at, delivered, sent_at, delivery_owner, delivery_claimed_at, request_id, "position", input_filename'
    )
    conn.exec_driver_sql(f"INSERT INTO jobs_v7 ({columns}) SELECT {columns} FROM jobs")  # noqa: S608
    conn.exec_driver_sql("DROP TABLE jobs")
    conn.exec_driver_sql("ALTER TABLE jobs_v7 RENAME TO jobs")
    for statement in (
        "CREATE INDEX ix_jobs_guild_created ON jobs (guild_id, created_at)",
        "CREATE INDEX ix_jobs_status ON jobs (status)",
        "CREATE INDEX ix_jobs_guild_user_created ON jobs (guild_id, user_id, created_at)",
        "CREATE INDEX ix_jobs_created ON jobs (created_at)",
        'CREATE UNIQUE INDEX ux_jobs_interaction_position ON jobs (interaction_id, "position")',
        'CREATE UNIQUE INDEX ux_jobs_request_position ON jobs (request_id, "position")',
    ):
        conn.exec_driver_sql(statement)


def _v7_requests_sqlite(conn: Connection) -> None:
    Table(
        "requests_v7",
        MetaData(),
        Column("id", String(40), primary_key=True),
        Column("interaction_id", BigInteger, nullable=False, unique=True),
        Column("guild_id", BigInteger),
        Column("channel_id", BigInteger, nullable=False),
        Column("user_id", BigInteger, nullable=False),
        Column("application_id", BigInteger),
        Column("interaction_token", Text),
        Column("private", Boolean, nullable=False),
        Column("images", Integer, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("payer", String(8), nullable=False, server_default=text("'guild'")),
        Column("channel_posts", Boolean, nullable=False, server_default=text("1")),
    ).create(conn)
    columns = (
        "id, interaction_id, guild_id, channel_id, user_id, application_id, interaction_token, private, images, "
        "created_at"
    )
    conn.exec_driver_sql(f"INSERT INTO requests_v7 ({columns}) SELECT {columns} FROM requests")  # noqa: S608
    conn.exec_driver_sql("DROP TABLE requests")
    conn.exec_driver_sql("ALTER TABLE requests_v7 RENAME TO requests")


def _v7_user_installs(conn: Connection) -> None:
    """Members' own installs of the app pay from their own budget: a job's payer, a server only when one pays
    (none in DMs), and whether the bot may post in the request's channel (not where it is not installed)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE jobs ALTER COLUMN guild_id DROP NOT NULL")
        _add_column(conn, "jobs", "payer", String(8), "NOT NULL DEFAULT 'guild'")
        conn.exec_driver_sql("ALTER TABLE requests ALTER COLUMN guild_id DROP NOT NULL")
        _add_column(conn, "requests", "payer", String(8), "NOT NULL DEFAULT 'guild'")
        _add_column(conn, "requests", "channel_posts", Boolean(), "NOT NULL DEFAULT true")
    else:
        _v7_jobs_sqlite(conn)
        _v7_requests_sqlite(conn)


def _v8_results(conn: Connection) -> None:
    """What a request asked to be done to its results (colour, trim, format, as JSON), and the deletion of its
    projects at Magic Hour once delivered: when it is due, when it was done, how often it failed."""
    _add_column(conn, "requests", "options", Text())
    _add_column(conn, "jobs", "delete_after", UtcDateTime())
    _add_column(conn, "jobs", "deleted_at", UtcDateTime())
    _add_column(conn, "jobs", "delete_attempts", Integer(), "NOT NULL DEFAULT 0")
    conn.exec_driver_sql("CREATE INDEX ix_jobs_delete_after ON jobs (delete_after)")


def _v9_role_limits(conn: Connection) -> None:
    """Per-role member caps: what each member carrying a role may spend in the server's period. A member's cap is
    the largest among their roles and replaces the server's member limit for them."""
    Table(
        "role_limits",
        MetaData(),
        Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
        Column("role_id", BigInteger, primary_key=True, autoincrement=False),
        Column("credits", Integer, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
    ).create(conn)


def _v10_locales(conn: Connection) -> None:
    """The member's language with each request (a later delivery speaks it) and each server's language (its
    alerts do)."""
    _add_column(conn, "requests", "locale", String(16))
    _add_column(conn, "guild_settings", "locale", String(16))


MIGRATIONS: tuple[tuple[int, Callable[[Connection], None]], ...] = (
    (1, _v1_initial),
    (2, _v2_delivery_members_alerts),
    (3, _v3_sending_grants_delivery_claims),
    (4, _v4_webhook_events),
    (5, _v5_requests),
    (6, _v6_lifecycle_and_balances),
    (7, _v7_user_installs),
    (8, _v8_results),
    (9, _v9_role_limits),
    (10, _v10_locales),
)
LATEST_VERSION = MIGRATIONS[-1][0]


def _apply(conn: Connection, target: int) -> list[int]:
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(select(func.max(schema_version.c.version))).scalar() or 0
    if current > LATEST_VERSION:
        raise SchemaTooNewError(
            f"the ledger database is at schema version {current}, newer than this bot ({LATEST_VERSION}); "
            "upgrade the bot"
        )
    applied = []
    for version, step in MIGRATIONS:
        if current < version <= target:
            step(conn)
            conn.execute(insert(schema_version).values(version=version, applied_at=datetime.now(UTC)))
            applied.append(version)
    return applied


async def migrate(engine: AsyncEngine, target: int = LATEST_VERSION) -> list[int]:
    """Bring the schema to `target`; returns the versions applied (empty when already current)."""
    async with engine.connect() as conn:
        conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
        async with conn.begin():
            if conn.dialect.name == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:cls, hashtext(current_schema()))"),
                    {"cls": _PG_MIGRATION_LOCK_CLASS},
                )
            return await conn.run_sync(_apply, target)
