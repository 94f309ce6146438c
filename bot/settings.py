"""Every setting the bot reads, from the environment and `.env`, validated up front.

Start-up must fail on one clear line that names the variable and says how to fix it, rather than
half-way through the first job, so every value is parsed here and nowhere else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

PERIODS = ("day", "week", "month", "none")


class SettingsError(Exception):
    """A setting is missing or malformed; the message is meant for the person running the bot."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


@dataclass(frozen=True)
class Settings:
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
    default_guild_credit_period: str = "month"
    max_guild_credit_limit: int | None = None
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | os.PathLike[str] | None = ".env"
) -> Settings:
    """Read settings; the process environment wins over `.env`, as users of Heroku and dotenv expect."""
    values: dict[str, str] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)
    return parse_settings(values)


def parse_settings(env: Mapping[str, str]) -> Settings:
    def raw(name: str) -> str | None:
        value = env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def required(name: str, hint: str) -> str:
        value = raw(name)
        if value is None:
            raise SettingsError(name, f"is not set. {hint}")
        return value

    def integer(name: str, default: int | None, minimum: int = 0) -> int | None:
        value = raw(name)
        if value is None:
            return default
        try:
            number = int(value.replace("_", ""))
        except ValueError:
            raise SettingsError(name, f"must be a whole number, got {value!r}.") from None
        if number < minimum:
            raise SettingsError(name, f"must be at least {minimum}, got {number}.")
        return number

    def number(name: str, default: float, minimum: float = 0.0) -> float:
        value = raw(name)
        if value is None:
            return default
        try:
            parsed = float(value)
        except ValueError:
            raise SettingsError(name, f"must be a number of seconds, got {value!r}.") from None
        if parsed <= minimum:
            raise SettingsError(name, f"must be greater than {minimum:g}, got {value}.")
        return parsed

    token = required(
        "DISCORD_TOKEN",
        "Copy the bot token from https://discord.com/developers/applications (Bot → Reset Token) "
        "into .env or the environment.",
    )
    if any(ch.isspace() for ch in token) or token.lower().startswith("bot "):
        raise SettingsError("DISCORD_TOKEN", "looks malformed: give the bare token, without 'Bot ' or spaces.")
    api_key = required(
        "MAGIC_HOUR_API_KEY",
        "Create an API key at https://magichour.ai/developer and put it in .env or the environment.",
    )
    if any(ch.isspace() for ch in api_key):
        raise SettingsError("MAGIC_HOUR_API_KEY", "looks malformed: it must not contain spaces.")

    base_url = raw("MAGIC_HOUR_BASE_URL") or Settings.magic_hour_base_url
    if not base_url.startswith(("https://", "http://")):
        raise SettingsError("MAGIC_HOUR_BASE_URL", f"must start with https://, got {base_url!r}.")

    log_level = (raw("LOG_LEVEL") or "INFO").upper()
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError("LOG_LEVEL", f"must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {log_level!r}.")

    period = (raw("DEFAULT_GUILD_CREDIT_PERIOD") or "month").lower()
    if period not in PERIODS:
        raise SettingsError("DEFAULT_GUILD_CREDIT_PERIOD", f"must be one of {', '.join(PERIODS)}, got {period!r}.")

    shard_count = integer("SHARD_COUNT", None, minimum=1)
    shard_ids: tuple[int, ...] | None = None
    if (ids := raw("SHARD_IDS")) is not None:
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

    default_limit = integer("DEFAULT_GUILD_CREDIT_LIMIT", 100)
    max_limit = integer("MAX_GUILD_CREDIT_LIMIT", None)
    assert default_limit is not None
    if max_limit is not None and default_limit > max_limit:
        raise SettingsError(
            "DEFAULT_GUILD_CREDIT_LIMIT", f"({default_limit}) is above MAX_GUILD_CREDIT_LIMIT ({max_limit})."
        )

    settings = Settings(
        discord_token=token,
        magic_hour_api_key=api_key,
        magic_hour_base_url=base_url.rstrip("/"),
        database_url=raw("DATABASE_URL") or Settings.database_url,
        log_level=log_level,
        dev_guild_id=integer("DEV_GUILD_ID", None, minimum=1),
        max_input_bytes=_int(integer("MAX_INPUT_BYTES", 20_000_000, minimum=1)),
        max_output_bytes=_int(integer("MAX_OUTPUT_BYTES", 100_000_000, minimum=1)),
        max_concurrent_jobs=_int(integer("MAX_CONCURRENT_JOBS", 16, minimum=1)),
        max_jobs_per_member=_int(integer("MAX_JOBS_PER_MEMBER", 1, minimum=1)),
        job_deadline_seconds=number("JOB_DEADLINE_SECONDS", 600.0),
        shutdown_grace_seconds=number("SHUTDOWN_GRACE_SECONDS", 20.0),
        magic_hour_connect_timeout=number("MAGIC_HOUR_CONNECT_TIMEOUT", 10.0),
        magic_hour_request_timeout=number("MAGIC_HOUR_REQUEST_TIMEOUT", 60.0),
        magic_hour_max_retries=_int(integer("MAGIC_HOUR_MAX_RETRIES", 3)),
        default_guild_credit_limit=default_limit,
        default_guild_credit_period=period,
        max_guild_credit_limit=max_limit,
        shard_count=shard_count,
        shard_ids=shard_ids,
    )
    return settings


def _int(value: int | None) -> int:
    assert value is not None  # every caller passes a default
    return value
