"""Everything a running bot holds open, built in one place and closed in reverse order.

`python -m bot`, the end-to-end tests and the benchmarks all start the bot through `open_resources`,
so start-up failures (an unreachable database, a schema from a newer release) happen here, before the
gateway, where one clear line can be printed, and nothing needs `getattr` guards when it closes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.balance import BalanceWatch
from bot.credit_alerts import CreditAlerts
from bot.imaging import ImageWorker
from bot.jobs import JobRunner
from bot.jobs.cleanup import DeletePolicy, Janitor
from bot.ledger import Ledger, LedgerDefaults, normalize_database_url, redact_database_url
from bot.ledger.durations import DurationKeeper, load_estimate
from bot.ledger.migrations import SchemaTooNewError
from bot.magic_hour import AsyncClient, EstimatedPolicy, PollPolicy, RetryPolicy, webhook_fallback_policy
from bot.metrics import Metrics
from bot.project_events import SPARSE_POLL, PostgresRelay, ProjectEvents
from bot.settings import Settings
from bot.web.limits import HttpLimits
from bot.web.server import ListenError, WebApp, serve
from bot.webhook_intake import WebhookIntake

log = logging.getLogger("bot")

POSTGRES_CONNECT_TIMEOUT = 10.0  # seconds; asyncpg's own default (60 s) is too long to wait at start-up


class StartupError(Exception):
    """A resource could not be opened; the message is one line for the person running the bot, secret-free."""


@dataclass(frozen=True)
class Resources:
    ledger: Ledger
    http_session: aiohttp.ClientSession
    magic_hour: AsyncClient
    runner: JobRunner
    alerts: CreditAlerts
    balance: BalanceWatch
    metrics: Metrics
    project_events: ProjectEvents


def ledger_defaults(settings: Settings) -> LedgerDefaults:
    return LedgerDefaults(
        credit_limit=settings.default_guild_credit_limit,
        period=settings.default_guild_credit_period,
        max_credit_limit=settings.max_guild_credit_limit,
        bot_budget=settings.bot_credit_budget,
        bot_period=settings.bot_credit_period,
        user_install_limit=settings.user_install_credit_limit,
        user_install_period=settings.user_install_credit_period,
    )


async def open_ledger(settings: Settings) -> Ledger:
    url = normalize_database_url(settings.database_url)
    shown = redact_database_url(url)
    connect_args = {"timeout": POSTGRES_CONNECT_TIMEOUT} if url.get_backend_name() == "postgresql" else None
    try:
        return await Ledger.open(url, defaults=ledger_defaults(settings), connect_args=connect_args)
    except SchemaTooNewError as error:
        raise StartupError(f"DATABASE_URL: {error}.") from None
    except Exception as error:  # any driver's way of saying "unreachable", "refused", "no such database"
        reason = _one_line(error, hide=url.password)
        raise StartupError(f"DATABASE_URL: could not open the database at {shown}: {reason}") from None


def _one_line(error: BaseException, *, hide: str | None) -> str:
    cause: BaseException = error
    while getattr(cause, "orig", None) is not None:  # SQLAlchemy wraps the driver's exception
        cause = cause.orig  # type: ignore[assignment]
    text = " ".join(str(cause).split()) or type(cause).__name__
    if hide:
        text = text.replace(hide, "***")
    return text[:300]


@contextlib.asynccontextmanager
async def open_resources(
    settings: Settings, *, webhook_poll: PollPolicy | None = None, **client_options: Any
) -> AsyncIterator[Resources]:
    """`client_options` go to the Magic Hour client (e.g. a faster PollPolicy against a local fake);
    `webhook_poll` is the fallback schedule while webhooks are live."""
    async with contextlib.AsyncExitStack() as stack:
        ledger = await stack.enter_async_context(await open_ledger(settings))
        metrics = Metrics()
        session = await stack.enter_async_context(aiohttp.ClientSession(trace_configs=[metrics.trace_config()]))
        client = await stack.enter_async_context(
            AsyncClient(
                token=settings.magic_hour_api_key,
                base_url=settings.magic_hour_base_url,
                session=session,
                connect_timeout=settings.magic_hour_connect_timeout,
                request_timeout=settings.magic_hour_request_timeout,
                retry=RetryPolicy(max_retries=settings.magic_hour_max_retries),
                max_download_bytes=settings.max_output_bytes,
                **client_options,
            )
        )
        # Polls go where jobs finish: a shipped prior blended with what this bot observed, kept in the ledger.
        estimate = await load_estimate(ledger)
        keeper = DurationKeeper(ledger, estimate)
        stack.push_async_callback(keeper.close)  # after the runner's drain, before the ledger closes
        # An explicit `poll` (a test or benchmark against a local fake) is followed as given.
        explicit_poll = client_options.get("poll")
        # With webhooks live, polling is only the safety net: sparse, and placed after nearly every job ended.
        hub = ProjectEvents(
            sparse_poll=webhook_poll or webhook_fallback_policy(estimate, first_delay=SPARSE_POLL.first_delay)
        )
        if settings.magic_hour_webhook_secret and ledger.shared:
            # Any process may own a job whose event another one receives (a worker dyno receives none).
            relay = await PostgresRelay(ledger, hub).start()
            stack.push_async_callback(relay.close)
            hub.live = True
        balance = BalanceWatch(client, ledger, low_threshold=settings.low_balance_credits)
        stack.push_async_callback(balance.close)
        images = await stack.enter_async_context(ImageWorker(max_parallel=settings.image_processing_slots))
        runner = JobRunner(
            client,
            ledger,
            project_events=hub,
            metrics=metrics,
            max_concurrent=settings.max_concurrent_jobs,
            max_per_member=settings.max_jobs_per_member,
            deadline=settings.job_deadline_seconds,
            max_output_bytes=settings.max_output_bytes,
            poll_policy=explicit_poll if explicit_poll is not None else EstimatedPolicy(estimate),
            balance=balance,
            images=images,
            delete_results=DeletePolicy(settings.delete_results_after_delivery),
        )
        # Deletions run until the runner has drained (entered before it: closed after it).
        runner.janitor = await stack.enter_async_context(Janitor(client, ledger).running())
        await stack.enter_async_context(runner.closing(settings.shutdown_grace_seconds))
        yield Resources(
            ledger=ledger,
            http_session=session,
            magic_hour=client,
            runner=runner,
            alerts=CreditAlerts(ledger),
            balance=balance,
            metrics=metrics,
            project_events=hub,
        )


@contextlib.asynccontextmanager
async def serve_http(
    settings: Settings,
    resources: Resources,
    *,
    gateway_connected: Callable[[], bool],
    limits: HttpLimits | None = None,
) -> AsyncIterator[int | None]:
    """With PORT set, serve /healthz, /metrics and (with a secret) the webhook; yields the bound port."""
    if settings.port is None:
        relayed = resources.project_events.live
        log.info(
            "HTTP server off (PORT is not set); Magic Hour webhooks %s",
            "received by other processes, relayed over PostgreSQL" if relayed else "off, polling only",
        )
        yield None
        return
    secret = settings.magic_hour_webhook_secret
    intake = WebhookIntake(resources.ledger, resources.project_events, resources.runner) if secret else None
    app = WebApp(
        ledger=resources.ledger,
        metrics=resources.metrics,
        intake=intake,
        webhook_secret=secret,
        gateway_connected=gateway_connected,
        limits=limits,
    )
    try:
        serving = serve(app, settings.host, settings.port)
        runner = await serving.__aenter__()
    except ListenError as error:
        raise StartupError(str(error)) from None
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_exit(serving)
        port = runner.addresses[0][1]
        hub = resources.project_events
        was_live, hub.live = hub.live, hub.live or secret is not None
        log.info(
            "HTTP server on %s:%s (/healthz, /metrics); Magic Hour webhooks %s",
            settings.host,
            port,
            "on at /webhooks/magic-hour" if secret else "off (MAGIC_HOUR_WEBHOOK_SECRET is not set)",
        )
        try:
            yield port
        finally:
            hub.live = was_live
