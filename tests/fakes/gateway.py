"""A minimal Discord gateway on 127.0.0.1, enough for a real discord.py bot to `start()` and get events.

It speaks the handshake discord.py needs (HELLO → IDENTIFY → READY, heartbeats acknowledged) in plain
JSON text frames (discord.py accepts them even when it asked for zlib-stream), and lets a test push
dispatches such as INTERACTION_CREATE. `GET /gateway/bot` is added to the fake REST API it is given.

Note: a plain (unsharded) discord.py 2.7 client never asks /gateway/bot; it connects to
`DiscordWebSocket.DEFAULT_GATEWAY`, so a process under test must point that at `FakeGateway.url`.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.discord_api import FakeDiscordAPI, RecordedRequest

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 10, 11
AUTHENTICATION_FAILED = 4004


class FakeGateway:
    """One websocket endpoint; every connection is a session that gets READY after a valid IDENTIFY."""

    def __init__(self, api: FakeDiscordAPI, *, heartbeat_interval_ms: int = 1000) -> None:
        self.api = api
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.received: list[dict[str, Any]] = []  # every frame the bot sent, in order
        self.ready_count = 0  # READY dispatches sent (one per successful IDENTIFY)
        self.heartbeats = 0
        self._sockets: list[web.WebSocketResponse] = []
        self._seq = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> FakeGateway:
        app = web.Application()
        app.router.add_get("/gateway", self._session)
        app.router.add_get("/", self._session)  # where a URL from /gateway/bot without a path leads
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"ws://{host}:{port}/gateway"
        self.api.add_route("GET", "/gateway/bot", self._gateway_bot)
        return self

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGateway:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- test-facing API -----------------------------------------------------------------------------

    @property
    def connected(self) -> int:
        return sum(1 for ws in self._sockets if not ws.closed)

    async def wait_ready(self, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until READY has been sent `count` times in total (one per bot process start)."""
        await self._wait(lambda: self.ready_count >= count, timeout, f"READY #{count}")

    async def wait_disconnected(self, timeout: float = 10.0) -> None:
        await self._wait(lambda: self.connected == 0, timeout, "the bot to disconnect")

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a dispatch (op 0) to every connected session."""
        live = [ws for ws in self._sockets if not ws.closed]
        if not live:
            raise AssertionError(f"fake gateway: no bot connected to receive {event}")
        for ws in live:
            await ws.send_str(json.dumps({"op": DISPATCH, "t": event, "s": next(self._seq), "d": data}))

    async def push_interaction(self, payload: dict[str, Any]) -> int:
        """INTERACTION_CREATE as Discord sends it; the REST fake learns the interaction first, as Discord's."""
        self.api.register_interaction(payload)
        await self.dispatch("INTERACTION_CREATE", copy.deepcopy(payload))
        return int(payload["id"])

    # -- plumbing ------------------------------------------------------------------------------------

    async def _wait(self, predicate: Any, timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(predicate)
        except TimeoutError:
            ops = [frame.get("op") for frame in self.received[-10:]]
            raise AssertionError(f"fake gateway: no {what} within {timeout}s; last ops from the bot: {ops}") from None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _gateway_bot(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return 200, {"url": self.url, "shards": 1, "session_start_limit": limit}

    async def _session(self, request: web.Request) -> web.WebSocketResponse:
        if request.query.get("encoding", "json") != "json":
            raise web.HTTPBadRequest(text="only encoding=json is faked")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"op": HELLO, "d": {"heartbeat_interval": self.heartbeat_interval_ms}}))
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                frame = json.loads(message.data)
                self.received.append(frame)
                await self._answer(ws, frame)
                await self._notify()
        finally:
            await self._notify()
        return ws

    async def _answer(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        op, data = frame.get("op"), frame.get("d") or {}
        if op == HEARTBEAT:
            self.heartbeats += 1
            await ws.send_str(json.dumps({"op": HEARTBEAT_ACK}))
        elif op == IDENTIFY:
            if data.get("token") != self.api.token:
                await ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
                return
            await ws.send_str(json.dumps({"op": DISPATCH, "t": "READY", "s": next(self._seq), "d": self._ready(data)}))
            self.ready_count += 1
        elif op == RESUME:
            # Sessions are not kept: Discord answers an unknown session with INVALID_SESSION (op 9, d false).
            await ws.send_str(json.dumps({"op": 9, "d": False}))

    def _ready(self, identify: dict[str, Any]) -> dict[str, Any]:
        user = self.api.bot_user.payload()
        user.update({"bot": True, "verified": True, "mfa_enabled": False, "flags": 0})
        ready: dict[str, Any] = {
            "v": 10,
            "user": user,
            "guilds": [],
            "session_id": secrets.token_hex(16),
            "resume_gateway_url": self.url,
            "application": {"id": str(self.api.application_id), "flags": 0},
        }
        if "shard" in identify:
            ready["shard"] = identify["shard"]
        return ready
