"""Subprocess helper for the cross-process role-limit test: one process, one Ledger, every member at once.

Usage: python -m tests.ledger.role_reserve_worker URL SEARCH_PATH FIRST_INTERACTION_ID GUILD_ID ROLE_ID MEMBERS TRIES
Members are user ids 1..MEMBERS, each carrying ROLE_ID; each tries TRIES one-image reservations, all concurrently.
Prints "ready" once the ledger is open, waits for a line on stdin (so the processes start together), then prints
one JSON line {"<user id>": accepted, ...}.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter

from bot.ledger import Ledger, LimitExceeded


async def main(
    url: str, search_path: str, first_id: int, guild_id: int, role_id: int, members: int, tries: int
) -> None:
    connect_args = {"server_settings": {"search_path": search_path}} if search_path else None
    ledger = await Ledger.open(url, connect_args=connect_args)
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

        async def one(interaction_id: int, user_id: int) -> int | None:
            try:
                await ledger.reserve(
                    interaction_id=interaction_id, guild_id=guild_id, channel_id=1, user_id=user_id, roles=[role_id]
                )
            except LimitExceeded:
                return None
            return user_id

        attempts = [(first_id + n, 1 + n % members) for n in range(members * tries)]
        accepted = await asyncio.gather(*(one(iid, user) for iid, user in attempts))
        counts = Counter(user for user in accepted if user is not None)
        print(json.dumps({str(user): counts[user] for user in range(1, members + 1)}), flush=True)
    finally:
        await ledger.close()


if __name__ == "__main__":
    url, search_path, first, guild, role, members, tries = sys.argv[1:8]
    asyncio.run(main(url, search_path, int(first), int(guild), int(role), int(members), int(tries)))
