"""Subprocess helper for the cross-process tests: one process, one Ledger, many concurrent reserves.

Usage: python -m tests.ledger.reserve_worker URL SEARCH_PATH FIRST_INTERACTION_ID COUNT GUILD_ID GUILDS BOT_BUDGET
The requests spread over GUILD_ID .. GUILD_ID+GUILDS-1; a non-empty BOT_BUDGET sets a bot-wide budget.
Prints "ready" once the ledger is open, waits for a line on stdin (so both processes start together),
then prints one JSON line {"ok": n, "refused": m}.
"""

from __future__ import annotations

import asyncio
import json
import sys

from bot.ledger import Ledger, LedgerDefaults, LimitExceeded


async def main(
    url: str, search_path: str, first_id: int, count: int, guild_id: int, guilds: int, bot_budget: int | None
) -> None:
    connect_args = {"server_settings": {"search_path": search_path}} if search_path else None
    ledger = await Ledger.open(url, LedgerDefaults(bot_budget=bot_budget), connect_args=connect_args)
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

        async def one(interaction_id: int) -> bool:
            try:
                guild = guild_id + interaction_id % guilds
                await ledger.reserve(interaction_id=interaction_id, guild_id=guild, channel_id=1, user_id=2)
            except LimitExceeded:
                return False
            return True

        results = await asyncio.gather(*(one(first_id + i) for i in range(count)))
        print(json.dumps({"ok": results.count(True), "refused": results.count(False)}), flush=True)
    finally:
        await ledger.close()


if __name__ == "__main__":
    url, search_path, first, count, guild, guilds, budget = sys.argv[1:8]
    bot_budget = int(budget) if budget else None
    asyncio.run(main(url, search_path, int(first), int(count), int(guild), int(guilds), bot_budget))
