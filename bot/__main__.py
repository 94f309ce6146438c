"""`python -m bot [run | sync]`: read the settings, set up logging, start the bot, stop it cleanly.

Mistakes in the configuration end here with one line and exit status 2, never a traceback: the
person reading it is setting the bot up, not debugging it.
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
from bot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("bot")
EXIT_CONFIG = 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Magic Hour background-removal Discord bot")
    parser.add_argument(
        "command",
        nargs="?",
        default="run",
        choices=("run", "sync"),
        help="run: start the bot (default); sync: push the slash commands to Discord now, then exit",
    )
    return parser.parse_args(argv)


def fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_CONFIG


async def serve(settings: Settings, *, sync_only: bool) -> None:
    from bot.app import create_bot

    bot = create_bot(settings, force_sync=sync_only)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def request_stop(signame: str) -> None:
        if not stopping.is_set():
            log.info("%s received: finishing running jobs, then stopping", signame)
            stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, request_stop, sig.name)

    async with bot:
        if sync_only:
            await bot.login(settings.discord_token)  # setup_hook syncs; no gateway needed
            return
        runner = asyncio.create_task(bot.start(settings.discord_token))
        stop = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait({runner, stop}, return_when=asyncio.FIRST_COMPLETED)
        if runner in done:
            stop.cancel()
            runner.result()  # re-raise a login failure
            return
        await bot.close()
        await runner


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
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
    except discord.LoginFailure:
        return fail("DISCORD_TOKEN was rejected by Discord. Reset the token in the Developer Portal and update it.")
    except discord.PrivilegedIntentsRequired:
        return fail("Discord refused the gateway intents; this bot needs no privileged intents, check the token's app.")
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
