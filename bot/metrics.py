"""What an operator's dashboard needs to see, in Prometheus' format, through `prometheus-client`.

One registry per running bot (not the library's global one), so tests and benchmarks that start
several bots in one process do not share counters. Magic Hour traffic is observed from the HTTP
session's `TraceConfig`, so the client itself carries no metrics code.
"""

from __future__ import annotations

import re
import time
from collections import Counter as Tally
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
_PROJECT_PATH = re.compile(r"/v1/image-projects/([^/?]+)$")
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def route_of(path: str) -> str:
    """A bounded label: project ids and signed storage paths would explode the series count."""
    if _PROJECT_PATH.search(path):
        return "/v1/image-projects/{id}"
    if path.startswith("/v1/"):
        return path
    return "storage"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.jobs = Counter("bot_jobs", "Jobs that ended, by outcome.", ["outcome"], registry=r)
        self.credits = Counter("bot_credits_charged", "Credits Magic Hour charged for settled jobs.", registry=r)
        self.queue_length = Gauge("bot_queue_length", "Jobs waiting for a free slot.", registry=r)
        self.in_flight = Gauge("bot_jobs_in_flight", "Jobs holding a slot (at Magic Hour or delivering).", registry=r)
        self.request_seconds = Histogram(
            "bot_magic_hour_request_seconds",
            "Magic Hour request latency, by method and route.",
            ["method", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.responses = Counter(
            "bot_magic_hour_responses", "Magic Hour answers, by route and status code.", ["route", "status"], registry=r
        )
        self.polls_per_job = Histogram(
            "bot_polls_per_job", "Project reads per settled job.", buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34), registry=r
        )
        self.delivery_delay = Histogram(
            "bot_completion_to_delivery_seconds",
            "From the bot learning a job is complete to its result being handed to Discord.",
            buckets=_DELAY_BUCKETS,
            registry=r,
        )
        self.phases = Gauge("bot_images", "Images this process follows, by phase.", ["phase"], registry=r)
        self.webhook_events = Counter(
            "bot_webhook_events", "Magic Hour webhook requests, by outcome.", ["outcome"], registry=r
        )
        self.webhook_body_reads = Gauge(
            "bot_webhook_body_reads", "Webhook bodies being read now (past the bound: refused busy).", registry=r
        )
        self.http_connections_open = Gauge(
            "bot_http_connections_open", "Open connections to the HTTP server.", registry=r
        )
        self.http_connections_closed = Counter(
            "bot_http_connections_closed",
            "Connections the HTTP server closed unserved: over its bound, or no request in time.",
            ["reason"],
            registry=r,
        )
        self._polls: Tally[str] = Tally()

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # -- the job runner's hooks ------------------------------------------------------------------

    def watch_slots(self, waiting: Callable[[], int], in_use: Callable[[], int]) -> None:
        self.queue_length.set_function(lambda: float(waiting()))
        self.in_flight.set_function(lambda: float(in_use()))

    def watch_phases(self, counts: Callable[[], dict[str, int]]) -> None:
        """Read at scrape time from the runner's phase book: no counter to keep in step."""
        for phase in ("queued", "sending", "confirmed", "delivering"):
            self.phases.labels(phase=phase).set_function(lambda phase=phase: float(counts().get(phase, 0)))

    def watch_http(self, connections: Callable[[], int], body_reads: Callable[[], int]) -> None:
        self.http_connections_open.set_function(lambda: float(connections()))
        self.webhook_body_reads.set_function(lambda: float(body_reads()))

    def job_ended(self, outcome: str, *, project_id: str | None = None, credits: int = 0) -> None:
        self.jobs.labels(outcome=outcome).inc()
        if credits:
            self.credits.inc(credits)
        if project_id is not None:
            self.polls_per_job.observe(self._polls.pop(project_id, 0))

    def delivered(self, seconds: float) -> None:
        self.delivery_delay.observe(max(seconds, 0.0))

    # -- the HTTP session's trace ----------------------------------------------------------------

    def trace_config(self) -> aiohttp.TraceConfig:
        trace = aiohttp.TraceConfig()

        async def on_start(_: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
            context.started = time.perf_counter()

        async def on_end(_: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
            self._observe(context, params.method, params.url.path, str(params.response.status))

        async def on_exception(_: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
            self._observe(context, params.method, params.url.path, "error")

        trace.on_request_start.append(on_start)
        trace.on_request_end.append(on_end)
        trace.on_request_exception.append(on_exception)
        return trace

    def _observe(self, context: SimpleNamespace, method: str, path: str, status: str) -> None:
        route = route_of(path)
        started = getattr(context, "started", None)
        if started is not None:
            self.request_seconds.labels(method=method, route=route).observe(time.perf_counter() - started)
        self.responses.labels(route=route, status=status).inc()
        if method == "GET" and (match := _PROJECT_PATH.search(path)):
            self._polls[match.group(1)] += 1
