"""The bot's HTTP side, served only when PORT is set: /healthz, /metrics and the Magic Hour webhook.

It runs in the bot's own event loop (aiohttp's web server), so a webhook wakes a waiting job with a
function call. Nothing here imports Discord: whether the gateway is connected comes in as a callable.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from bot.ledger import Ledger
from bot.metrics import CONTENT_TYPE, Metrics
from bot.web.body import BodyReads
from bot.web.connections import ConnectionGate, GatedSite
from bot.web.health import CachedCheck
from bot.web.limits import HttpLimits
from bot.webhook_intake import WebhookIntake
from bot.webhooks import (
    MAX_BODY_BYTES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookRefused,
    check_headers,
    parse,
    verify,
)

log = logging.getLogger("bot.web")
WEBHOOK_PATH = "/webhooks/magic-hour"


class ListenError(Exception):
    """The port is taken or not ours to bind; one line for the person running the bot."""


class WebApp:
    def __init__(
        self,
        *,
        ledger: Ledger,
        metrics: Metrics,
        intake: WebhookIntake | None,
        webhook_secret: str | None,
        gateway_connected: Callable[[], bool],
        clock: Callable[[], float] = time.time,
        limits: HttpLimits | None = None,
    ) -> None:
        self.ledger = ledger
        self.metrics = metrics
        self.intake = intake
        self.secret = webhook_secret
        self.gateway_connected = gateway_connected
        self.clock = clock
        self.limits = limits or HttpLimits()
        self.database_answers = CachedCheck(ledger.ping, ttl=self.limits.health_cache_seconds)
        self.bodies = BodyReads(max_reads=self.limits.max_body_reads, seconds=self.limits.body_read_seconds)

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)  # for any handler that ever uses request.read()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_page)
        if self.secret and self.intake is not None:
            app.router.add_post(WEBHOOK_PATH, self.webhook)
        return app

    async def healthz(self, _: web.Request) -> web.Response:
        failing: list[str] = []
        if not self.gateway_connected():
            failing.append("gateway")
        if not await self.database_answers():
            failing.append("database")
        body = {"status": "ok" if not failing else "unavailable", "failing": failing}
        return web.json_response(body, status=503 if failing else 200)

    async def metrics_page(self, _: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def webhook(self, request: web.Request) -> web.Response:
        assert self.secret is not None and self.intake is not None
        timestamp = request.headers.get(TIMESTAMP_HEADER)
        signature = request.headers.get(SIGNATURE_HEADER)
        try:
            check_headers(timestamp, signature, self.clock())  # before a byte of the body is read
            raw = await self.bodies.read(request)
            verify(self.secret, timestamp, signature, raw, self.clock())
            event = parse(raw)
        except WebhookRefused as refused:
            return self._refuse(refused, request)
        outcome = await self.intake.receive(event)
        self.metrics.webhook_events.labels(outcome=outcome).inc()
        log.info("webhook %s for project %s: %s", event.type, event.project.id if event.project else "-", outcome)
        return web.json_response({"ok": True, "outcome": outcome})

    def _refuse(self, refused: WebhookRefused, request: web.Request) -> web.Response:
        self.metrics.webhook_events.labels(outcome=refused.reason).inc()
        log.warning("webhook refused: %s (from %s)", refused.reason, request.remote)
        response = web.json_response({"error": refused.reason}, status=refused.status)
        if refused.status == 503:
            response.headers["Retry-After"] = str(self.limits.retry_after_seconds)
        response.force_close()  # the connection is not reused by whoever sent it
        return response


@contextlib.asynccontextmanager
async def serve(app: WebApp, host: str, port: int) -> AsyncIterator[web.AppRunner]:
    """Listen until the block ends; port 0 picks a free one (see `runner.addresses`)."""
    limits = app.limits
    application = app.application()
    runner = web.AppRunner(
        application,
        access_log=None,
        shutdown_timeout=2.0,
        lingering_time=limits.lingering_seconds,
        max_headers=limits.max_headers,
        max_field_size=limits.max_field_size,
        auto_decompress=False,  # a compressed body could inflate far past the cap it was read under
    )
    gate = ConnectionGate(
        runner,
        max_connections=limits.max_connections,
        first_request_seconds=limits.first_request_seconds,
        on_close=lambda reason: app.metrics.http_connections_closed.labels(reason=reason).inc(),
    )
    application.middlewares.append(gate.middleware)
    app.metrics.watch_http(connections=lambda: gate.open_connections, body_reads=lambda: app.bodies.reading)
    await runner.setup()
    try:
        await GatedSite(runner, host, port, gate).start()
    except OSError as error:
        await runner.cleanup()
        raise ListenError(f"PORT: could not listen on {host}:{port}: {error.strerror or error}") from None
    try:
        yield runner
    finally:
        await runner.cleanup()
