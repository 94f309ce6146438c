"""A raw TCP client for the bot's HTTP server: what a stalling or misbehaving sender does byte by byte.

aiohttp's client always finishes what it starts; these tests need one that sends headers and stops,
sends part of a body, or sends nothing at all, and then sees what the server answers and when it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.web.conftest import WEBHOOK_SECRET, signed

WEBHOOK_PATH = "/webhooks/magic-hour"


@dataclass
class RawConnection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    @classmethod
    async def open(cls, base_url: str) -> RawConnection:
        parts = urlsplit(base_url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def status(self, timeout: float = 5.0) -> int | None:
        """The status of the server's next answer; None if it closed without one."""
        async with asyncio.timeout(timeout):
            try:
                line = await self.reader.readline()
            except ConnectionError:
                return None
        return int(line.split()[1]) if line.startswith(b"HTTP/1.") else None

    async def head(self, timeout: float = 5.0) -> tuple[int | None, dict[str, str]]:
        """The status and headers of the server's next answer."""
        status = await self.status(timeout)
        headers: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
        return status, headers

    async def response(self, timeout: float = 5.0) -> tuple[int | None, bytes]:
        """The status and body of the server's next answer (which has a Content-Length)."""
        status, headers = await self.head(timeout)
        async with asyncio.timeout(timeout):
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return status, body

    async def closed_by_server(self, timeout: float = 5.0) -> bool:
        """Read (and drop) until the server closes; False if it is still open after `timeout`."""
        try:
            async with asyncio.timeout(timeout):
                with contextlib.suppress(ConnectionError):
                    while await self.reader.read(65536):
                        pass
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        self.writer.close()


class Sockets:
    """Every raw connection a test opens, all closed when it ends, whether it passed or not."""

    def __init__(self) -> None:
        self._opened: list[RawConnection] = []

    async def open(self, base_url: str | None, first_bytes: bytes = b"") -> RawConnection:
        assert base_url is not None
        connection = await RawConnection.open(base_url)
        self._opened.append(connection)
        if first_bytes:
            await connection.send(first_bytes)
        return connection

    async def open_many(self, base_url: str | None, count: int, first_bytes: bytes = b"") -> list[RawConnection]:
        return [await self.open(base_url, first_bytes) for _ in range(count)]

    async def close_all(self) -> None:
        for connection in self._opened:
            connection.close()
        for connection in self._opened:
            with contextlib.suppress(Exception):
                await connection.writer.wait_closed()


def webhook_head(
    *,
    content_length: int | None,
    timestamp: float | str | None = None,
    signature: str | None = "0" * 64,
    with_timestamp: bool = True,
) -> bytes:
    """A POST's request head with Magic Hour's headers (a forged signature unless given one)."""
    lines = [f"POST {WEBHOOK_PATH} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if with_timestamp:
        stamp = timestamp if isinstance(timestamp, str) else int(time.time() if timestamp is None else timestamp)
        lines.append(f"magic-hour-event-timestamp: {stamp}")
    if signature is not None:
        lines.append(f"magic-hour-event-signature: {signature}")
    lines.append(f"Content-Length: {content_length}" if content_length is not None else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def signed_head(body: bytes, *, chunked: bool = False) -> bytes:
    """The head of a genuine event with `body` (signed with the test secret)."""
    now = int(time.time())
    headers = signed(body, secret=WEBHOOK_SECRET, timestamp=now)
    return webhook_head(
        content_length=None if chunked else len(body),
        timestamp=now,
        signature=headers["magic-hour-event-signature"],
    )


def chunked(data: bytes, size: int = 16 * 1024) -> bytes:
    """`data` in chunked transfer encoding, without the final empty chunk."""
    pieces = [data[i : i + size] for i in range(0, len(data), size)]
    return b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in pieces)
