"""The HTTP server's listening socket: aiohttp's handler for each connection, within bounds.

aiohttp accepts every connection and then waits for its first request as long as its keep-alive
timeout allows (an hour by default, to outlast reverse proxies' pools); it bounds neither how many
connections are open nor how long one may take to send its request head. A thousand sockets that
connect and send nothing would each hold a file descriptor the bot needs for Discord, Magic Hour and
its database. So the site's protocol factory is a gate in front of aiohttp's `web.Server`: past
`max_connections` a new connection is closed at once, before any parsing, and a connection that has
not started a request within `first_request_seconds` is closed. Everything else is aiohttp's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

OVER_LIMIT = "over_limit"
NO_REQUEST = "no_request"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ConnectionGate:
    """The protocol factory of a `GatedSite`; its `middleware` tells it when a request has started."""

    def __init__(
        self,
        runner: web.BaseRunner,
        *,
        max_connections: int,
        first_request_seconds: float,
        on_close: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self._runner = runner
        self._max = max_connections
        self._first_request_seconds = first_request_seconds
        self._on_close = on_close
        self._open: dict[web.RequestHandler, _Connection] = {}

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def __call__(self) -> asyncio.Protocol:
        return _Connection(self)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        connection = self._open.get(request.protocol)
        if connection is not None:
            connection.started_request()
        return await handler(request)

    def _admit(self, connection: _Connection, transport: asyncio.Transport) -> web.RequestHandler | None:
        server = self._runner.server
        if server is None or len(self._open) >= self._max:
            transport.abort()
            self._on_close(OVER_LIMIT)
            return None
        handler = server()
        self._open[handler] = connection
        connection.deadline = asyncio.get_running_loop().call_later(self._first_request_seconds, self._expire, handler)
        handler.connection_made(transport)
        return handler

    def _expire(self, handler: web.RequestHandler) -> None:
        if handler in self._open:
            self._on_close(NO_REQUEST)
            handler.force_close()

    def _release(self, handler: web.RequestHandler) -> None:
        self._open.pop(handler, None)


class _Connection(asyncio.Protocol):
    """One accepted socket: aiohttp's handler behind it if the gate admitted it, nothing otherwise."""

    def __init__(self, gate: ConnectionGate) -> None:
        self._gate = gate
        self._handler: web.RequestHandler | None = None
        self.deadline: asyncio.TimerHandle | None = None

    def started_request(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._handler = self._gate._admit(self, transport)

    def data_received(self, data: bytes) -> None:
        if self._handler is not None:
            self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received() if self._handler is not None else None

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.started_request()  # nothing left to time out
        handler, self._handler = self._handler, None
        if handler is not None:
            self._gate._release(handler)
            handler.connection_lost(exc)


class GatedSite(web.BaseSite):
    """A TCP site (like `web.TCPSite`) whose connections go through a `ConnectionGate`."""

    __slots__ = ("_gate", "_host", "_port")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, gate: ConnectionGate) -> None:
        super().__init__(runner)
        self._host = host
        self._port = port
        self._gate = gate

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._gate, self._host, self._port, backlog=self._backlog)
