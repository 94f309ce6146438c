"""The running bot with its HTTP server on 127.0.0.1, and a real aiohttp client to talk to it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import mh  # noqa: F401 - the fake Magic Hour fixture
from tests.fakes.magic_hour import FakeMagicHour

WEBHOOK_SECRET = "whsec_e2e_webhook_secret"


def signed(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if timestamp is None else timestamp))
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "magic-hour-event-timestamp": stamp,
        "magic-hour-event-signature": digest,
    }


def event_body(fake: FakeMagicHour, event_type: str, project_id: str) -> bytes:
    """An event carrying the project exactly as the fake's GET /v1/image-projects/{id} shows it now."""
    project: dict[str, Any] = fake._project_body(fake.jobs[project_id])
    return json.dumps({"type": event_type, "payload": project}).encode()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


# -- PostgreSQL: a fresh database per test (NOTIFY is per database, so tests cannot wake each other) --


class TcpProxy:
    """127.0.0.1:<port> → the database; `stop()` is the database going away, for everyone connected."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpProxy:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()
