"""What the HTTP server lets anyone who can reach its port hold: connections, time, body reads.

The webhook's signature can only be checked once its body is read, so until then every connection is
a stranger's. These bounds keep what strangers can make the bot hold small and short-lived: the
bot's own calls to Discord and Magic Hour share its memory and file descriptors. One object, so the
tests can shrink the times; production uses the defaults (the README lists them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HttpLimits:
    # Open connections, counting those that have sent nothing yet; past it a new one is closed at once.
    # Leaves most of a common 1024-descriptor limit to the bot's gateway, HTTP pools and database.
    max_connections: int = 256
    # A connection must have sent a whole request head within this long of connecting, or it is closed.
    first_request_seconds: float = 5.0
    # Webhook bodies being read at once; past it a webhook is refused "busy" (503) rather than queued.
    max_body_reads: int = 32
    # A webhook body must arrive whole within this long of its headers (Magic Hour sends a few KB at once).
    body_read_seconds: float = 5.0
    # After a refusal aiohttp reads and discards what the client still sends, for at most this long.
    lingering_seconds: float = 2.0
    # Request heads: at most this many header lines, each at most this long (aiohttp's defaults are 128
    # and 8190): what a connection can make the parser buffer before its request starts.
    max_headers: int = 32
    max_field_size: int = 4096
    # /healthz reuses its database answer for this long: unauthenticated requests can't make queries.
    health_cache_seconds: float = 5.0
    # "busy" answers tell Magic Hour to come back after this many seconds.
    retry_after_seconds: int = 10
