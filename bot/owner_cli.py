"""The bot owner's tools: `python -m bot report | grant | release | verify`, run on the host next to the bot.

Operators reach a deployed bot through `heroku run`, `docker exec` or ssh, not through Discord, so these
commands read the same DATABASE_URL and act through the ledger, which is safe while the bot runs in
another process on either engine. Only DATABASE_URL is required: MAGIC_HOUR_API_KEY adds the balance to
`report`, DISCORD_TOKEN adds server names. Exit status: 0 done, 1 the operation failed (or, for `verify`,
the balances disagree with the journal), 2 bad arguments or configuration (one `error: …` line on
stderr). Nothing printed ever carries a secret, and nothing a server's name holds reaches the terminal
as a control character.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import unicodedata
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TextIO

import aiohttp

from bot.ledger import (
    MAX_CREDITS,
    DatabaseUrlError,
    GuildSettings,
    Period,
    ReleasedJobs,
    Report,
    normalize_database_url,
)
from bot.log_redaction import install_redaction
from bot.magic_hour import AsyncClient, RetryPolicy
from bot.resources import StartupError, open_ledger
from bot.settings import Settings, SettingsError, parse_settings, read_environment

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
COMMANDS = ("report", "grant", "release", "verify")
PERIODS = tuple(p.value for p in Period)
MAX_SNOWFLAKE = 2**63 - 1  # the ledger stores ids and credits as signed 64-bit integers
DISCORD_API = "https://discord.com/api/v10"
LOOKUP_TIMEOUT = 10.0  # seconds for the optional extras (names, balance); the report never waits longer
RELEASED_BY = "the bot owner (python -m bot release)"
# parse_settings insists on both secrets for `run`; here an unset one is a feature switched off, not an error.
OPTIONAL_SECRETS = ("DISCORD_TOKEN", "MAGIC_HOUR_API_KEY")
UNSET = "unset"


class OneLineParser(argparse.ArgumentParser):
    """argparse prints usage plus an error; an operator's script wants one line it can show, and exit 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("python -m bot").strip()
        print(f"error: {command + ': ' if command else ''}{message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def whole_number(text: str, minimum: int, what: str, maximum: int = MAX_SNOWFLAKE) -> int:
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        value = None
    if value is None or not minimum <= value <= maximum:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
    return value


def guild_id(text: str) -> int:
    return whole_number(text, 1, "a server id (a positive whole number)")


def credits(text: str) -> int:
    """Refused here rather than by the database: credit columns are 32-bit (PostgreSQL would raise)."""
    return whole_number(text, 0, f"a whole number of credits from 0 to {MAX_CREDITS:,}", MAX_CREDITS)


def period(text: str) -> Period:
    try:
        return Period(text.strip().lower())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(PERIODS)}, got {text!r}") from None


def add_commands(subparsers: Any) -> None:
    """Register report, grant and release on `python -m bot`'s sub-command parser."""
    json_help = "print one JSON document instead of text, for scripts"
    report = subparsers.add_parser(
        "report",
        help="credits per server, the bot-wide total and the Magic Hour balance",
        description="Credits spent per server in the period (biggest spend first), the bot-wide total against "
        "BOT_CREDIT_BUDGET, and the Magic Hour balance. Needs DATABASE_URL; MAGIC_HOUR_API_KEY adds the balance, "
        "DISCORD_TOKEN adds server names.",
    )
    report.add_argument(
        "--period", type=period, metavar="PERIOD", help=f"{', '.join(PERIODS)} (default: BOT_CREDIT_PERIOD, month)"
    )
    report.add_argument("--json", action="store_true", help=json_help)

    grant = subparsers.add_parser(
        "grant",
        help="raise one server's ceiling (and limit) above the default, or --reset it",
        description="Set a server's ceiling, the most its admins may set, and its limit to CREDITS, even above "
        "MAX_GUILD_CREDIT_LIMIT; its admins can lower the limit afterwards. --reset returns the server to "
        "the defaults. Safe while the bot runs.",
    )
    grant.add_argument("guild_id", type=guild_id, metavar="GUILD_ID", help="the server's id")
    grant.add_argument("credits", type=credits, nargs="?", metavar="CREDITS", help="the new ceiling and limit")
    grant.add_argument(
        "--period", type=period, metavar="PERIOD", help=f"{', '.join(PERIODS)} (default: keep the server's period)"
    )
    grant.add_argument("--reset", action="store_true", help="drop the grant: default ceiling, limit and period")
    grant.add_argument("--json", action="store_true", help=json_help)

    release = subparsers.add_parser(
        "release",
        help="release one server's held credits, as /credits release-held does",
        description="Release the credits of a server's jobs whose outcome Magic Hour never confirmed (held), "
        "as an admin's /credits release-held does; the history records that the owner released them.",
    )
    release.add_argument("guild_id", type=guild_id, metavar="GUILD_ID", help="the server's id")
    release.add_argument("--json", action="store_true", help=json_help)

    verify = subparsers.add_parser(
        "verify",
        help="check that the running balances agree with the job journal (read-only)",
        description="Rebuild every balance (per server, member and the bot, per day and all time) from the jobs "
        "and compare it with the stored one, in one consistent read; changes nothing. Exit status 0 when they "
        "agree, 1 when they do not (each differing row is listed) or the check could not run.",
    )
    verify.add_argument("--json", action="store_true", help=json_help)


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """The combinations argparse cannot express; `parser` is the sub-command's, for its one-line error."""
    if args.command != "grant":
        return
    if args.reset and args.credits is not None:
        parser.error("--reset takes no CREDITS: give either CREDITS or --reset")
    if args.reset and args.period is not None:
        parser.error("--reset takes no --period: it returns the server to the default period")
    if not args.reset and args.credits is None:
        parser.error("give the new ceiling in CREDITS, or --reset to return to the defaults")


@dataclass(frozen=True)
class OwnerConfig:
    settings: Settings
    discord_token: str | None  # None: names are not looked up
    magic_hour_api_key: str | None  # None: no balance


def load_config(environ: Mapping[str, str] | None = None) -> OwnerConfig:
    """The bot's own settings, validated the same way, except that the two secrets `run` needs are optional."""
    values = read_environment(environ)
    present = {name: (values.get(name) or "").strip() or None for name in OPTIONAL_SECRETS}
    settings = parse_settings({**values, **{name: value or UNSET for name, value in present.items()}})
    normalize_database_url(settings.database_url)
    return OwnerConfig(settings, present["DISCORD_TOKEN"], present["MAGIC_HOUR_API_KEY"])


def main(args: argparse.Namespace, *, discord_api: str = DISCORD_API, out: TextIO | None = None) -> int:
    """Run one owner command; `discord_api` is where server names are asked for (the entry point knows)."""
    out = out or sys.stdout
    try:
        config = load_config()
    except (SettingsError, DatabaseUrlError) as error:
        return fail(str(error), EXIT_USAGE)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    redact = install_redaction(config.settings)
    command: Callable[[OwnerConfig, argparse.Namespace, str], Awaitable[Answer]] = {
        "report": report_command,
        "grant": grant_command,
        "release": release_command,
        "verify": verify_command,
    }[args.command]
    try:
        answer = asyncio.run(command(config, args, discord_api))
    except StartupError as error:
        return fail(redact(str(error)), EXIT_USAGE)
    except Exception as error:  # the database went away mid-command, a driver error, …: one line, no secret
        return fail(redact(f"{args.command} failed: {short_reason(error)}"), EXIT_FAILED)
    out.write(redact(json.dumps(answer.document, indent=2) + "\n" if args.json else answer.text))
    return answer.status


@dataclass(frozen=True)
class Answer:
    """What a command prints (as text, or as one JSON document with --json) and its exit status."""

    text: str
    document: Any
    status: int = EXIT_OK


def fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


def short_reason(error: BaseException) -> str:
    cause: BaseException = error
    while getattr(cause, "orig", None) is not None:  # SQLAlchemy wraps the driver's exception
        cause = cause.orig  # type: ignore[assignment]
    text = " ".join(str(cause).split())
    return (f"{type(cause).__name__}: {text}" if text else type(cause).__name__)[:200]


# ---- grant and release ------------------------------------------------------------------------------


async def grant_command(config: OwnerConfig, args: argparse.Namespace, _: str) -> Answer:
    async with await open_ledger(config.settings) as ledger:
        if args.reset:
            settings = await ledger.reset_grant(args.guild_id)
        else:
            settings = await ledger.grant(args.guild_id, args.credits, args.period)
    return Answer(describe_settings(settings, reset=args.reset), settings_document(settings))


def describe_settings(settings: GuildSettings, *, reset: bool) -> str:
    limit = f"limit {settings.credit_limit} credits per {settings.period.value}"
    ceiling = "no ceiling" if settings.max_credit_limit is None else f"admins may set up to {settings.max_credit_limit}"
    if reset:
        return f"server {settings.guild_id}: back to the defaults: {limit}; {ceiling}.\n"
    return f"server {settings.guild_id}: granted: {limit}; {ceiling}.\n"


def settings_document(settings: GuildSettings) -> dict[str, Any]:
    return {
        "guild_id": str(settings.guild_id),
        "limit": settings.credit_limit,
        "period": settings.period.value,
        "ceiling": settings.max_credit_limit,
        "granted_ceiling": settings.granted_ceiling,
        "is_default": settings.is_default,
    }


async def release_command(config: OwnerConfig, args: argparse.Namespace, _: str) -> Answer:
    async with await open_ledger(config.settings) as ledger:
        released = await ledger.release_held(args.guild_id, by=RELEASED_BY)
    return Answer(
        describe_release(args.guild_id, released),
        {
            "guild_id": str(args.guild_id),
            "released": released.count,
            "credits": released.credits,
            "interaction_ids": [str(i) for i in released.interaction_ids],
        },
    )


def describe_release(guild: int, released: ReleasedJobs) -> str:
    if not released.count:
        return f"server {guild}: no held jobs, nothing to release.\n"
    return f"server {guild}: released {released.count} held job(s), {released.credits} credits.\n"


# ---- verify -------------------------------------------------------------------------------------------


async def verify_command(config: OwnerConfig, _args: argparse.Namespace, _: str) -> Answer:
    async with await open_ledger(config.settings) as ledger:
        differences = await ledger.verify()
    document = {"agree": not differences, "differences": differences}
    if not differences:
        return Answer("verify: every balance agrees with the job journal.\n", document)
    lines = [f"verify: {len(differences)} balance row(s) disagree with the job journal:"]
    lines += [f"  {line}" for line in differences]
    return Answer("\n".join(lines) + "\n", document, EXIT_FAILED)


# ---- report -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lookup:
    """An optional extra of the report: its value, or why it is missing (a short reason, secret-free)."""

    value: Any = None
    unavailable: str | None = None


async def report_command(config: OwnerConfig, args: argparse.Namespace, discord_api: str) -> Answer:
    window = args.period or config.settings.bot_credit_period
    async with await open_ledger(config.settings) as ledger:
        report = await ledger.report(window)
    names, balance = await asyncio.gather(
        lookup(guild_names(config.discord_token, discord_api), needs=config.discord_token, name="DISCORD_TOKEN"),
        lookup(magic_hour_balance(config), needs=config.magic_hour_api_key, name="MAGIC_HOUR_API_KEY"),
    )
    return Answer(render_report(report, names, balance), report_document(report, names, balance))


async def lookup(work: Awaitable[Any], *, needs: str | None, name: str) -> Lookup:
    if needs is None:
        if asyncio.iscoroutine(work):
            work.close()
        return Lookup(unavailable=f"{name} is not set")
    try:
        async with asyncio.timeout(LOOKUP_TIMEOUT):
            return Lookup(await work)
    except TimeoutError:
        return Lookup(unavailable=f"no answer within {LOOKUP_TIMEOUT:g}s")
    except Exception as error:
        return Lookup(unavailable=short_reason(error))


async def guild_names(token: str | None, api: str) -> dict[int, str]:
    """Names of the servers the bot is in, from Discord's REST API (GET /users/@me/guilds, 200 a page)."""
    names: dict[int, str] = {}
    headers = {"Authorization": f"Bot {token}", "User-Agent": "DiscordBot (https://github.com, 1.0) owner-report"}
    async with aiohttp.ClientSession(headers=headers, raise_for_status=True) as session:
        params = {"limit": "200"}
        while True:
            async with session.get(f"{api}/users/@me/guilds", params=params) as answer:
                page = await answer.json()
            for guild in page or ():
                names[int(guild["id"])] = str(guild["name"])
            if not page or len(page) < 200:
                return names
            params["after"] = str(max(int(guild["id"]) for guild in page))


async def magic_hour_balance(config: OwnerConfig) -> int:
    settings = config.settings
    async with AsyncClient(
        token=config.magic_hour_api_key,
        base_url=settings.magic_hour_base_url,
        connect_timeout=settings.magic_hour_connect_timeout,
        request_timeout=LOOKUP_TIMEOUT,
        retry=RetryPolicy(max_retries=1),
    ) as client:
        account = await client.v1.account.get()
    return account.credits


HEADERS = ("SERVER", "NAME", "LIMIT", "PERIOD", "USED", "RESERVED", "HELD", "JOBS", "FAILURES")


def render_report(report: Report, names: Lookup, balance: Lookup) -> str:
    known: dict[int, str] = names.value or {}
    rows = [
        (
            str(g.guild_id),
            printable(known.get(g.guild_id, "")),
            str(g.limit),
            g.period.value,
            str(g.used),
            str(g.reserved),
            str(g.held),
            str(g.jobs),
            str(g.failures),
        )
        for g in report.guilds
    ]
    if (own := report.user_installs) is not None:  # members' own installs: one row, nobody named
        members = f"{own.members} member{'s' if own.members != 1 else ''}"
        rows.append(
            (
                "user installs",
                members,
                "",
                "",
                str(own.used),
                str(own.reserved),
                str(own.held),
                str(own.jobs),
                str(own.failures),
            )
        )
    lines = [f"Credits by server, period {report.period.value} ({window(report.period_start, report.resets_at)})"]
    lines += table(HEADERS, rows, left=2) if rows else ["(no jobs in this period)"]
    if names.unavailable is not None:
        lines.append(f"server names: unavailable ({printable(names.unavailable)})")
    bot = report.bot
    budget = "no bot-wide budget (BOT_CREDIT_BUDGET is not set)" if bot.budget is None else f"of {bot.budget}"
    lines += [
        "",
        f"bot-wide, period {bot.period.value} ({window(bot.period_start, bot.resets_at)}): "
        f"{bot.total} credits (used {bot.used}, reserved {bot.reserved}) {budget}",
    ]
    if balance.unavailable is None:
        lines.append(f"balance: {balance.value} Magic Hour credits")
    else:
        lines.append(f"balance: unavailable ({printable(balance.unavailable)})")
    return "\n".join(lines) + "\n"


UNPRINTABLE = frozenset({"Cc", "Cf", "Zl", "Zp"})
"""Controls (escape sequences, carriage returns), format characters (bidi overrides, zero-width) and line
or paragraph separators: what would let a server's name move the cursor or reorder the owner's screen."""


def printable(text: str) -> str:
    """`text` for a terminal: each unprintable character becomes U+FFFD, so a hostile name shows as
    mangled rather than rewriting what the owner reads."""
    return "".join("\ufffd" if unicodedata.category(char) in UNPRINTABLE else char for char in text)


def window(start: datetime, end: datetime | None) -> str:
    if end is None:
        return "all time"
    return f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: int) -> list[str]:
    """Plain aligned columns: the first `left` columns flush left (ids, names), the rest right (numbers)."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    return [line(headers), *(line(row) for row in rows)]


def report_document(report: Report, names: Lookup, balance: Lookup) -> dict[str, Any]:
    known: dict[int, str] = names.value or {}
    bot = report.bot
    return {
        "period": report.period.value,
        "period_start": report.period_start.isoformat(),
        "resets_at": report.resets_at.isoformat() if report.resets_at else None,
        "guilds": [
            {
                "guild_id": str(g.guild_id),  # a string: snowflakes do not fit a double, as JSON readers use
                "name": known.get(g.guild_id),
                "limit": g.limit,
                "period": g.period.value,
                "used": g.used,
                "reserved": g.reserved,
                "held": g.held,
                "spend": g.spend,
                "jobs": g.jobs,
                "failures": g.failures,
            }
            for g in report.guilds
        ],
        "names_unavailable": names.unavailable,
        "user_installs": None
        if report.user_installs is None
        else {
            "members": report.user_installs.members,
            "used": report.user_installs.used,
            "reserved": report.user_installs.reserved,
            "held": report.user_installs.held,
            "spend": report.user_installs.spend,
            "jobs": report.user_installs.jobs,
            "failures": report.user_installs.failures,
        },
        "bot": {
            "used": bot.used,
            "reserved": bot.reserved,
            "total": bot.total,
            "budget": bot.budget,
            "period": bot.period.value,
            "period_start": bot.period_start.isoformat(),
            "resets_at": bot.resets_at.isoformat() if bot.resets_at else None,
        },
        "balance": {"credits": balance.value, "unavailable": balance.unavailable},
    }


__all__ = ["COMMANDS", "OneLineParser", "add_commands", "check_arguments", "main"]
