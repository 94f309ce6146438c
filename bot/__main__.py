"""`python -m bot [run | sync | report | grant | release | verify]`: read the settings, open what is needed, run it.

Everything is opened here, in one place, before the gateway (the shape of discord.py's
`examples/advanced_startup.py`): mistakes in the configuration and unreachable resources end here with
one line and exit status 2, never a traceback, because the person reading it is setting the bot up.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

import discord

from bot.ledger import DatabaseUrlError, normalize_database_url
from bot.log_redaction import install_redaction
from bot.owner_cli import COMMANDS as OWNER_COMMANDS
from bot.owner_cli import OneLineParser, add_commands, check_arguments
from bot.owner_cli import main as owner_main
from bot.resources import StartupError, open_resources, serve_http
from bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("bot")
EXIT_CONFIG = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(
        prog="python -m bot",
        description="Magic Hour background-removal Discord bot",
        epilog="Exit status: 0 done, 1 the operation failed, 2 bad arguments or configuration.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)
    commands.add_parser("run", help="start the bot (the default)", description="Start the bot.")
    commands.add_parser(
        "sync", help="push the slash commands to Discord now, then exit", description="Push the slash commands now."
    )
    add_commands(commands)
    args = parser.parse_args(argv)
    args.command = args.command or "run"
    check_arguments(commands.choices[args.command], args)
    return args


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_CONFIG


async def serve(settings: Settings, *, sync_only: bool) -> None:
    from bot.adapter.bot import create_bot

    async with open_resources(settings) as resources:
        bot = create_bot(settings, resources, force_sync=sync_only)
        async with bot:
            await bot.login(settings.discord_token)  # runs setup_hook: cogs, command sync
            if sync_only:
                return
            async with serve_http(settings, resources, gateway_connected=bot.gateway_connected):
                await bot.resume_jobs()
                await run_until_stopped(bot)


async def run_until_stopped(bot: discord.Client) -> None:
    """Connect the gateway until SIGTERM/SIGINT, then close (which lets running jobs finish first)."""
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def request_stop(signame: str) -> None:
        if not stopping.is_set():
            log.info("%s received: finishing running jobs, then stopping", signame)
            stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop, sig.name)
    gateway = asyncio.create_task(bot.connect())
    stop = asyncio.create_task(stopping.wait())
    done, _ = await asyncio.wait({gateway, stop}, return_when=asyncio.FIRST_COMPLETED)
    if gateway in done:
        stop.cancel()
        gateway.result()  # re-raise a gateway failure
        return
    await bot.close()
    await gateway


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command in OWNER_COMMANDS:
        return owner_main(args, discord_api=discord.http.Route.BASE)
    try:
        settings = load_settings()
        normalize_database_url(settings.database_url)
    except SettingsError as error:
        return fail(str(error))
    except DatabaseUrlError as error:
        return fail(str(error))

    discord.utils.setup_logging(level=getattr(logging, settings.log_level), root=True)
    install_redaction(settings)
    try:
        asyncio.run(serve(settings, sync_only=args.command == "sync"))
    except StartupError as error:
        return fail(str(error))
    except discord.LoginFailure:
        return fail("DISCORD_TOKEN was rejected by Discord. Reset the token in the Developer Portal and update it.")
    except discord.PrivilegedIntentsRequired:
        return fail("Discord refused the gateway intents; this bot needs no privileged intents, check the token's app.")
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
