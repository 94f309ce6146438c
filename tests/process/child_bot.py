"""`python -m bot` as the tests run it: pointed at the local fakes and unable to reach anything else.

Usage: python child_bot.py API_BASE GATEWAY_URL [run|sync]. Production code has no hooks for Discord's
URLs, so this script sets discord.py's own constants before handing over to `bot.__main__.main`.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_getaddrinfo = socket.getaddrinfo


def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    """Any name but loopback fails like a DNS error, so a stray real URL fails the test instead of leaking."""
    name = host.decode() if isinstance(host, bytes) else host
    if name not in LOOPBACK:
        raise socket.gaierror(socket.EAI_NONAME, f"test child process: {name!r} is not 127.0.0.1")
    return _getaddrinfo(host, *args, **kwargs)


def main() -> int:
    api_base, gateway_url, *argv = sys.argv[1:]
    socket.getaddrinfo = loopback_only

    import discord.gateway
    import discord.http
    import discord.webhook.async_
    import yarl

    discord.http.Route.BASE = api_base
    discord.webhook.async_.Route.BASE = api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)

    from bot.__main__ import main as bot_main

    return bot_main(argv)


if __name__ == "__main__":
    sys.exit(main())
