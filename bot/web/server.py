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
from bot.webhook_intake import WebhookIntake
from bot.webhooks import MAX_BODY_BYTES, SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookRefused, parse, verify

log = logging.getLogger("bot.web")
WEBHOOK_PATH = "/webhooks/magic-hour"


class ListenError(Exception):
    """The port is taken or not ours to bind; one line for the person running the bot."""


DATABASE_CHECK_SECONDS = 3.0


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
    ) -> None:
        self.ledger = ledger
        self.metrics = metrics
        self.intake = intake
        self.secret = webhook_secret
        self.gateway_connected = gateway_connected
        self.clock = clock

    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/metrics", self.metrics_page)
        if self.secret and self.intake is not None:
            app.router.add_post(WEBHOOK_PATH, self.webhook)
        return app

    async def healthz(self, _: web.Request) -> web.Response:
        failing: list[str] = []
        if not self.gateway_connected():
            failing.append("gateway")
        if not await self._database_answers():
            failing.append("database")
        body = {"status": "ok" if not failing else "unavailable", "failing": failing}
        return web.json_response(body, status=503 if failing else 200)

    async def _database_answers(self) -> bool:
        try:
            await self.ledger.ping()
        except Exception:
            return False
        return True

    async def metrics_page(self, _: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.render())
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def webhook(self, request: web.Request) -> web.Response:
        assert self.secret is not None and self.intake is not None
        try:
            raw = await _read_capped(request)
            verify(
                self.secret,
                request.headers.get(TIMESTAMP_HEADER),
                request.headers.get(SIGNATURE_HEADER),
                raw,
                self.clock(),
            )
            event = parse(raw)
        except WebhookRefused as refused:
            self.metrics.webhook_events.labels(outcome=refused.reason).inc()
            log.warning("webhook refused: %s (from %s)", refused.reason, request.remote)
            return web.json_response({"error": refused.reason}, status=refused.status)
        outcome = await self.intake.receive(event)
        self.metrics.webhook_events.labels(outcome=outcome).inc()
        log.info("webhook %s for project %s: %s", event.type, event.project.id if event.project else "-", outcome)
        return web.json_response({"ok": True, "outcome": outcome})


async def _read_capped(request: web.Request) -> bytes:
    """The raw body, refused past MAX_BODY_BYTES by its Content-Length and by what really arrives."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise WebhookRefused("too_large", 413)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise WebhookRefused("too_large", 413)
        chunks.append(chunk)
    return b"".join(chunks)


@contextlib.asynccontextmanager
async def serve(app: WebApp, host: str, port: int) -> AsyncIterator[web.AppRunner]:
    """Listen until the block ends; port 0 picks a free one (see `runner.addresses`)."""
    runner = web.AppRunner(app.application(), access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        await runner.cleanup()
        raise ListenError(f"PORT: could not listen on {host}:{port}: {error.strerror or error}") from None
    try:
        yield runner
    finally:
        await runner.cleanup()
