"""Every setting the bot reads, from the environment and `.env`, validated up front.

Start-up must fail on one clear line that names the variable and says how to fix it, rather than
half-way through the first job, so every value is parsed here and nowhere else.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from bot.ledger.periods import Period
from bot.magic_hour.urls import validate_base_url


class SettingsError(Exception):
    """A setting is missing or malformed; the message is meant for the person running the bot."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


@dataclass(frozen=True)
class Settings:
    """Each field is read from the environment variable of the same name in capitals; its default is here."""

    discord_token: str = field(repr=False)
    magic_hour_api_key: str = field(repr=False)
    magic_hour_base_url: str = "https://api.magichour.ai"
    database_url: str = field(default="sqlite:///data/bot.db", repr=False)
    log_level: str = "INFO"
    dev_guild_id: int | None = None
    max_input_bytes: int = 20_000_000
    max_output_bytes: int = 100_000_000
    max_concurrent_jobs: int = 16
    max_jobs_per_member: int = 1
    job_deadline_seconds: float = 600.0
    shutdown_grace_seconds: float = 20.0
    magic_hour_connect_timeout: float = 10.0
    magic_hour_request_timeout: float = 60.0
    magic_hour_max_retries: int = 3
    default_guild_credit_limit: int = 100
    default_guild_credit_period: Period = Period.MONTH
    max_guild_credit_limit: int | None = None  # None: the default server limit (admins may lower, not raise)
    bot_credit_budget: int | None = None  # across every server; None: no bot-wide budget
    bot_credit_period: Period = Period.MONTH
    allowed_guild_ids: frozenset[int] | None = None  # None: every server the bot is in (server installs only)
    user_install_credit_limit: int | None = None  # credits per member per period through their own install; None: off
    user_install_credit_period: Period = Period.DAY
    low_balance_credits: int | None = None  # tell the owner when the Magic Hour balance falls below this
    owner_alert_channel_id: int | None = None  # where owner alerts go instead of a DM
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None
    port: int | None = None
    host: str = "0.0.0.0"  # noqa: S104 - a platform's router reaches the process on every interface
    magic_hour_webhook_secret: str | None = field(default=None, repr=False)
    delete_results_after_delivery: str = "private"  # private, all or never
    image_processing_slots: int = 1  # results processed at once (colour, trim, format); each may take ~250 MB


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | os.PathLike[str] | None = ".env"
) -> Settings:
    """Read settings; the process environment wins over `.env`, as users of Heroku and dotenv expect."""
    return parse_settings(read_environment(environ, env_file))


def read_environment(
    environ: Mapping[str, str] | None = None, env_file: str | os.PathLike[str] | None = ".env"
) -> dict[str, str]:
    """The raw variables `load_settings` parses, for callers (the owner's commands) that need fewer secrets."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return values


def default(name: str) -> Any:
    """A setting's default, as written once on `Settings`."""
    spec = next(f for f in fields(Settings) if f.name == name)
    if spec.default is MISSING:
        raise KeyError(f"{name} has no default")
    return spec.default


def parse_settings(env: Mapping[str, str]) -> Settings:
    """`env` maps variable names (DISCORD_TOKEN, …) to text; each field of `Settings` is its name in capitals."""

    def raw(name: str) -> str | None:
        value = env.get(name.upper())
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def required(name: str, hint: str) -> str:
        value = raw(name)
        if value is None:
            raise SettingsError(name.upper(), f"is not set. {hint}")
        return value

    def integer(name: str, minimum: int = 0) -> Any:
        value = raw(name)
        if value is None:
            return default(name)
        try:
            number = int(value.replace("_", ""))
        except ValueError:
            raise SettingsError(name.upper(), f"must be a whole number, got {value!r}.") from None
        if number < minimum:
            raise SettingsError(name.upper(), f"must be at least {minimum}, got {number}.")
        return number

    def seconds(name: str) -> float:
        value = raw(name)
        if value is None:
            return float(default(name))
        try:
            parsed = float(value)
        except ValueError:
            raise SettingsError(name.upper(), f"must be a number of seconds, got {value!r}.") from None
        if not math.isfinite(parsed) or parsed <= 0:
            raise SettingsError(name.upper(), f"must be a finite number of seconds greater than 0, got {value}.")
        return parsed

    def choice(name: str, choices: tuple[str, ...]) -> str:
        value = (raw(name) or default(name)).lower()
        if value not in choices:
            raise SettingsError(name.upper(), f"must be one of {', '.join(choices)}, got {value!r}.")
        return value

    def period(name: str) -> Period:
        value = raw(name)
        if value is None:
            return Period(default(name))
        try:
            return Period(value.lower())
        except ValueError:
            choices = ", ".join(p.value for p in Period)
            raise SettingsError(name.upper(), f"must be one of {choices}, got {value.lower()!r}.") from None

    token = required(
        "discord_token",
        "Copy the bot token from https://discord.com/developers/applications (Bot → Reset Token) "
        "into .env or the environment.",
    )
    if any(ch.isspace() for ch in token) or token.lower().startswith("bot "):
        raise SettingsError("DISCORD_TOKEN", "looks malformed: give the bare token, without 'Bot ' or spaces.")
    api_key = required(
        "magic_hour_api_key",
        "Create an API key at https://magichour.ai/developer and put it in .env or the environment.",
    )
    if any(ch.isspace() for ch in api_key):
        raise SettingsError("MAGIC_HOUR_API_KEY", "looks malformed: it must not contain spaces.")

    base_url = raw("magic_hour_base_url") or default("magic_hour_base_url")
    try:
        base_url = validate_base_url(base_url)
    except ValueError as error:
        problem = str(error).removeprefix("MAGIC_HOUR_BASE_URL").lstrip(" :")
        raise SettingsError("MAGIC_HOUR_BASE_URL", problem) from None

    log_level = (raw("log_level") or default("log_level")).upper()
    if log_level not in LOG_LEVELS:
        raise SettingsError(
            "LOG_LEVEL", f"must be {', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]}, got {log_level!r}."
        )

    shard_count = integer("shard_count", minimum=1)
    shard_ids: tuple[int, ...] | None = None
    if (ids := raw("shard_ids")) is not None:
        try:
            shard_ids = tuple(int(part) for part in ids.replace(" ", "").split(",") if part)
        except ValueError:
            raise SettingsError("SHARD_IDS", f"must be a comma-separated list of shard numbers, got {ids!r}.") from None
        if shard_count is None:
            raise SettingsError("SHARD_IDS", "needs SHARD_COUNT too: set the total number of shards.")
        if not shard_ids or any(not 0 <= i < shard_count for i in shard_ids):
            raise SettingsError(
                "SHARD_IDS", f"every shard number must be between 0 and SHARD_COUNT-1 ({shard_count - 1})."
            )

    default_limit = integer("default_guild_credit_limit")
    max_limit = integer("max_guild_credit_limit")
    if max_limit is not None and default_limit > max_limit:
        raise SettingsError(
            "DEFAULT_GUILD_CREDIT_LIMIT", f"({default_limit}) is above MAX_GUILD_CREDIT_LIMIT ({max_limit})."
        )
    if max_limit is None:
        max_limit = default_limit  # safe by default: only the bot's owner raises a server above it

    allowed: frozenset[int] | None = None
    if (ids := raw("allowed_guild_ids")) is not None:
        try:
            allowed = frozenset(int(part) for part in ids.replace(" ", "").split(",") if part)
        except ValueError:
            raise SettingsError(
                "ALLOWED_GUILD_IDS", f"must be a comma-separated list of server ids, got {ids!r}."
            ) from None
        if not allowed or any(guild <= 0 for guild in allowed):
            raise SettingsError("ALLOWED_GUILD_IDS", "must list at least one server id (or be left unset).")

    port = integer("port", minimum=0)
    if port is not None and port > 65535:
        raise SettingsError("PORT", f"must be a TCP port between 0 and 65535, got {port}.")
    webhook_secret = raw("magic_hour_webhook_secret")
    if webhook_secret is not None and any(ch.isspace() for ch in webhook_secret):
        raise SettingsError("MAGIC_HOUR_WEBHOOK_SECRET", "looks malformed: it must not contain spaces.")

    return Settings(
        discord_token=token,
        magic_hour_api_key=api_key,
        magic_hour_base_url=base_url,
        database_url=raw("database_url") or default("database_url"),
        log_level=log_level,
        dev_guild_id=integer("dev_guild_id", minimum=1),
        max_input_bytes=integer("max_input_bytes", minimum=1),
        max_output_bytes=integer("max_output_bytes", minimum=1),
        max_concurrent_jobs=integer("max_concurrent_jobs", minimum=1),
        max_jobs_per_member=integer("max_jobs_per_member", minimum=1),
        job_deadline_seconds=seconds("job_deadline_seconds"),
        shutdown_grace_seconds=seconds("shutdown_grace_seconds"),
        magic_hour_connect_timeout=seconds("magic_hour_connect_timeout"),
        magic_hour_request_timeout=seconds("magic_hour_request_timeout"),
        magic_hour_max_retries=integer("magic_hour_max_retries"),
        default_guild_credit_limit=default_limit,
        default_guild_credit_period=period("default_guild_credit_period"),
        max_guild_credit_limit=max_limit,
        bot_credit_budget=integer("bot_credit_budget"),
        bot_credit_period=period("bot_credit_period"),
        allowed_guild_ids=allowed,
        user_install_credit_limit=integer("user_install_credit_limit"),
        user_install_credit_period=period("user_install_credit_period"),
        low_balance_credits=integer("low_balance_credits", minimum=1),
        owner_alert_channel_id=integer("owner_alert_channel_id", minimum=1),
        shard_count=shard_count,
        shard_ids=shard_ids,
        port=port,
        host=raw("host") or default("host"),
        magic_hour_webhook_secret=webhook_secret,
        delete_results_after_delivery=choice("delete_results_after_delivery", DELETE_CHOICES),
        image_processing_slots=integer("image_processing_slots", minimum=1),
    )


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DELETE_CHOICES = ("private", "all", "never")
