"""A fake Magic Hour API on 127.0.0.1 that answers only what the real API can answer.

Reusable by every test and benchmark that needs Magic Hour::

    async with FakeMagicHour(token="mhk_test") as fake:
        client = AsyncClient(token="mhk_test", base_url=fake.base_url)
        fake.job_duration = 4.0                       # seconds from create to complete, on fake.clock
        fake.fail_next("POST", "/v1/image-background-remover", status=429, retry_after="1")
        fake.script("error", code="invalid_input", message="Could not fetch the input image")
        ...
        assert fake.violations == []                   # every body in and out matched the OpenAPI spec

What it checks and does:
- the Bearer token on every /v1 route (401 {"message": "Unauthorized"} otherwise);
- every request body against the spec's requestBody schema (unknown properties count as violations
  too: a typo in a field name is a bug); a violation answers 400 and is recorded in `violations`;
- every response body it sends against the spec's schema for that status (statuses the spec does not
  list, such as 403/429/5xx, must be {"message": "..."}, as the real API sends); a mismatch is a
  violation of the fake itself and is recorded too;
- jobs go queued -> rendering -> complete (or a scripted error/canceled) on `clock` (time since
  create); `downloads` only on complete; on error credits_charged is refunded to 0;
- download URLs and upload URLs point back at this server (plain http on loopback); each GET of a
  complete project mints a freshly signed URL; `expire_next_downloads()` makes the next output
  request answer 403 and kills that URL, so a client must re-read the project for a fresh one;
- measurements per job: `polls`, `completed_at` and `downloaded_at` (both on `clock`);
- GET /v1/account answers `account` with `credits`: each create takes CREDITS_PER_JOB off (a create the
  balance cannot pay is a 402), a job ending in error gives them back, tests may set `credits`;
- deliberate breakage, never counted as a violation of the fake: `fail_next(..., raw_body=...)` sends
  those bytes (optionally `repeat`ed, streamed) instead of an answer, `fail_next(..., mutate=f)` sends
  f(the real JSON answer), and `redirect_next_outputs(location)` answers an output request with a 302.
- optionally (`send_webhooks(url, secret)`) a webhook sender: like the real API it POSTs signed
  `image.started` / `image.completed` / `image.errored` events (canceled has none) to `url` when a job
  starts rendering and when it ends; `drop_webhooks(n)` loses the next n events, `duplicate_webhooks`
  sends each twice; every attempt is in `webhook_deliveries`.

Results are `output_bytes` (a 1×1 PNG by default); `fake.output_bytes = cutout_png()` serves what a real background
removal looks like instead (a subject on transparency), for tests that look at the pixels of what the bot delivers.

The create and project answers also carry the deprecated `frame_cost`/`total_frame_cost` fields: the
real API still sends them (the official SDK's models require them) and the spec allows extra fields.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import itertools
import json
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jsonschema
from aiohttp import web
from PIL import Image, ImageDraw

DEFAULT_SPEC_PATH = Path(__file__).parents[1] / "contracts/magic-hour-openapi.json"
CREATE_PATH = "/v1/image-background-remover"
PROJECT_TEMPLATE = "/v1/image-projects/{id}"
UPLOAD_URLS_PATH = "/v1/files/upload-urls"
ACCOUNT_PATH = "/v1/account"
CREDITS_PER_JOB = 5
PNG_BYTES = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4"
    b"\x89\x00\x00\x00\rIDATx\x9cc\xf8\x0f\x00\x00\x01\x01\x00\x05\x18\xd8N\x00\x00\x00\x00IEND\xaeB`\x82"
)
DEFAULT_MESSAGES = {
    400: "Bad request",
    401: "Unauthorized",
    402: "Payment required",
    403: "Your plan does not include this feature",
    404: "Not Found",
    422: "Unable to create image",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}
_MESSAGE_ONLY = {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}
_UPLOAD_EXTENSIONS = {
    "image": {"png", "jpg", "jpeg", "jfif", "heic", "heif", "webp", "avif", "jp2", "tiff", "tif", "bmp"},
    "video": {"mp4", "m4v", "mov", "webm"},
    "audio": {"mp3", "wav", "aac", "flac", "webm", "weba", "m4a", "opus", "ogg", "oga", "aiff", "amr"},
}


SUBJECT_COLOR = (200, 40, 40, 255)


def cutout_png(side: int = 64, radius: int | None = None, color: tuple[int, int, int, int] = SUBJECT_COLOR) -> bytes:
    """A real RGBA PNG as Magic Hour returns it: a filled circle (the subject) in the middle of a transparent square.

    The circle covers pixels `side // 2 - radius` to `side // 2 + radius - 1` on both axes (radius: a quarter of
    the side by default), so its bounding box is known exactly."""
    radius = side // 4 if radius is None else radius
    image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    centre = side // 2
    if radius > 0:  # 0: nothing but transparency
        box = (centre - radius, centre - radius, centre + radius - 1, centre + radius - 1)
        ImageDraw.Draw(image).ellipse(box, fill=color)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def iso(moment: datetime) -> str:
    """The API's timestamp style: 2024-10-19T05:16:19.027Z."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- the contract


def _format_checker() -> jsonschema.FormatChecker:
    """date-time and uri checked without optional packages, strictly enough to catch real mistakes."""
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        if "T" not in value:
            raise ValueError("date-time needs a T separator")
        return datetime.fromisoformat(value).tzinfo is not None

    @checker.checks("uri")
    def _uri(value: object) -> bool:
        if not isinstance(value, str):
            return True
        parts = urlsplit(value)
        return bool(parts.scheme and parts.netloc)

    return checker


def _as_json_schema(schema: Any, *, closed: bool) -> Any:
    """OpenAPI 3.0 -> JSON Schema: `nullable` becomes a null type; `closed` forbids unknown properties."""
    if isinstance(schema, list):
        return [_as_json_schema(item, closed=closed) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _as_json_schema(value, closed=closed) for key, value in schema.items() if key != "example"}
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    if closed and out.get("type") == "object" and "properties" in out:
        out.setdefault("additionalProperties", False)
    return out


class Contract:
    """The request and response schemas of the OpenAPI document, ready for jsonschema."""

    def __init__(self, spec_path: Path) -> None:
        self.spec_path = spec_path
        self.spec = json.loads(spec_path.read_text(encoding="utf-8"))
        self._checker = _format_checker()

    def _operation(self, template: str, method: str) -> dict[str, Any]:
        return self.spec["paths"][template][method.lower()]

    def request_errors(self, template: str, method: str, body: Any) -> list[str]:
        content = self._operation(template, method).get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            return []
        return self._errors(_as_json_schema(schema, closed=True), body)

    def response_errors(self, template: str, method: str, status: int, body: Any) -> list[str]:
        responses = self._operation(template, method)["responses"]
        listed = responses.get(str(status))
        if listed is None:
            if status < 400:
                return [f"status {status} is not a documented answer"]
            return self._errors(_MESSAGE_ONLY, body)
        schema = listed.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            return [] if body is None else [f"status {status} has no body in the spec"]
        return self._errors(_as_json_schema(schema, closed=False), body)

    def _errors(self, schema: dict[str, Any], body: Any) -> list[str]:
        validator = jsonschema.Draft4Validator(schema, format_checker=self._checker)
        return [f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}" for e in validator.iter_errors(body)]


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body: bytes
    at: float


@dataclass
class Fault:
    """One injected misbehaviour for requests matching `method` and a path prefix."""

    method: str
    path: str
    status: int | None = None
    message: str | None = None
    retry_after: str | None = None
    delay: float = 0.0
    disconnect: bool = False
    after_processing: bool = False  # do the real work first (e.g. create the job), then misbehave
    remaining: int = 1
    raw_body: bytes | None = None  # sent as is (status defaults to 200), `repeat` times, streamed
    repeat: int = 1
    content_type: str = "application/json"
    mutate: Callable[[Any], Any] | None = None  # the real JSON answer in, the (broken) answer out

    def matches(self, request: web.Request) -> bool:
        return self.method in ("*", request.method) and request.path.startswith(self.path)


@dataclass(frozen=True)
class WebhookDelivery:
    type: str
    project_id: str
    status: int | None  # None: dropped (never sent) or the connection failed
    at: float  # on the fake's clock


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Magic Hour's scheme: hex HMAC-SHA256 of "<timestamp>.<raw body>" with the endpoint's secret."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


@dataclass
class Outcome:
    """How a scripted job ends."""

    final_status: str = "complete"
    code: str | None = None
    message: str | None = None
    duration: float | None = None


@dataclass
class FakeJob:
    id: str
    name: str | None
    assets: dict[str, str]
    created_at: float  # on the fake's clock
    created_wall: datetime
    duration: float
    final_status: str = "complete"
    error_code: str | None = None
    error_message: str | None = None
    enabled: bool = True
    refunded: bool = False
    polls: int = 0
    downloaded_at: float | None = None
    signatures: set[str] = field(default_factory=set)

    @property
    def completed_at(self) -> float:
        """When the job reached its final status, on the fake's clock."""
        return self.created_at + self.duration

    def status(self, now: float, queue_fraction: float) -> str:
        elapsed = now - self.created_at
        if elapsed >= self.duration:
            return self.final_status
        return "queued" if elapsed < self.duration * queue_fraction else "rendering"


class FakeClock:
    """A manual clock for instant tests: pass `clock` to the fake and `clock`/`clock.sleep` to the client."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []  # every sleep asked for, to check back-off and Retry-After

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)


# --------------------------------------------------------------------------- the server


class FakeMagicHour:
    """The fake API server. See the module docstring for what it checks and how to steer it."""

    def __init__(
        self,
        token: str = "mhk_test",  # noqa: S107 - a fake key for a fake server
        *,
        spec_path: str | os.PathLike[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        job_duration: float = 4.0,
        port: int = 0,
    ) -> None:
        self.token = token
        self.port = port
        path = Path(spec_path or os.environ.get("MAGIC_HOUR_SPEC") or DEFAULT_SPEC_PATH)
        self.contract = Contract(path)
        self.clock = clock
        self.job_duration = job_duration
        self.queue_fraction = 0.25
        self.output_bytes = PNG_BYTES
        self.output_content_type = "image/png"
        self.send_content_length = True
        # Hooks: fetchable(asset) -> False makes the job end in error/invalid_input (stale CDN URL);
        # on_create(job) may change job.duration / final_status / error_* per job.
        self.fetchable: Callable[[str], bool] | None = None
        self.on_create: Callable[[FakeJob], None] | None = None
        self.fetch_failure_duration = 1.0
        self.credits = 1_000_000  # the account balance: creates take from it, failed jobs give back
        self.account: dict[str, Any] = {
            "id": "cuid-fake-account",
            "email": "owner@example.com",
            "tier": "pro",
            "subscription": {
                "billing_interval": "month",
                "cancel_at_period_end": False,
                "current_period_end": "2030-01-01T00:00:00.000Z",
                "name": "Pro",
                "status": "active",
            },
        }
        self.raw_bytes_sent = 0  # bytes of `raw_body` faults that reached the socket
        self.raw_finished = asyncio.Event()  # set each time a raw_body answer ends (sent or cut off)
        self._output_redirects: deque[tuple[int, str | Callable[[str], str]]] = deque()

        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.jobs: dict[str, FakeJob] = {}
        self.uploads: dict[str, bytes] = {}
        self._upload_signatures: dict[str, str] = {}
        self._faults: list[Fault] = []
        self._outcomes: deque[Outcome] = deque()
        self._expire_downloads = 0
        self._ids = itertools.count(1)
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.webhook_url: str | None = None
        self.webhook_secret = ""
        self.duplicate_webhooks = False
        self.webhook_deliveries: list[WebhookDelivery] = []
        self._drop_webhooks = 0
        self._webhook_session: aiohttp.ClientSession | None = None
        self.webhook_keepalive = True  # False: a new connection for every event
        self._webhook_tasks: set[asyncio.Task[None]] = set()

    # ---- lifecycle

    async def start(self) -> FakeMagicHour:
        app = web.Application(middlewares=[self._record_and_inject], client_max_size=64 * 1024 * 1024)
        app.router.add_post(CREATE_PATH, self._create)
        app.router.add_get("/v1/image-projects/{id}", self._get_project)
        app.router.add_delete("/v1/image-projects/{id}", self._delete_project)
        app.router.add_post(UPLOAD_URLS_PATH, self._upload_urls)
        app.router.add_get(ACCOUNT_PATH, self._get_account)
        app.router.add_put("/uploads/{file_path:.+}", self._put_upload)
        app.router.add_get("/outputs/{job_id}/{name}", self._get_output)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}"
        return self

    async def close(self) -> None:
        self._closing.set()  # wakes handlers sleeping on an injected delay
        for task in list(self._webhook_tasks):
            task.cancel()
        if self._webhook_tasks:
            await asyncio.wait(list(self._webhook_tasks), timeout=2)
        if self._webhook_session is not None:
            await self._webhook_session.close()
            self._webhook_session = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeMagicHour:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---- steering

    def fail_next(
        self,
        method: str,
        path: str,
        status: int | None = None,
        *,
        message: str | None = None,
        retry_after: str | None = None,
        delay: float = 0.0,
        disconnect: bool = False,
        times: int = 1,
        after_processing: bool = False,
        raw_body: bytes | None = None,
        repeat: int = 1,
        content_type: str = "application/json",
        mutate: Callable[[Any], Any] | None = None,
    ) -> None:
        """Make the next `times` requests matching method + path prefix answer `status` (with the API's
        {"message"} body and optional Retry-After), wait `delay` real seconds first, or drop the connection.
        With after_processing the real work happens first (a create makes the job), then the fault.
        `raw_body` (x `repeat`, streamed) replaces the answer's bytes; `mutate` rewrites the real answer
        (the work is done first). Neither is checked against the spec: breaking it is the point."""
        self._faults.append(
            Fault(
                method,
                path,
                status,
                message,
                retry_after,
                delay,
                disconnect,
                after_processing or mutate is not None,
                times,
                raw_body,
                repeat,
                content_type,
                mutate,
            )
        )

    def redirect_next_outputs(self, location: str | Callable[[str], str], *, times: int = 1, status: int = 302) -> None:
        """The next `times` output requests answer `status` with this Location (or location(path_qs))."""
        for _ in range(times):
            self._output_redirects.append((status, location))

    def script(
        self,
        final_status: str = "complete",
        *,
        code: str | None = None,
        message: str | None = None,
        duration: float | None = None,
        times: int = 1,
    ) -> None:
        """Decide how the next `times` created jobs end: complete, error (with code+message) or canceled."""
        if final_status not in ("complete", "error", "canceled"):
            raise ValueError(final_status)
        for _ in range(times):
            self._outcomes.append(Outcome(final_status, code, message, duration))

    def send_webhooks(self, url: str, secret: str) -> None:
        """From now on, POST signed events for every new job to `url` (times follow `clock`, in real seconds)."""
        self.webhook_url, self.webhook_secret = url, secret

    def drop_webhooks(self, times: int = 1) -> None:
        """Lose the next `times` events, as a network or a provider outage would."""
        self._drop_webhooks += times

    async def post_event(self, event_type: str, job: FakeJob) -> int | None:
        """Send one signed event for `job` now, with the project as GET /v1/image-projects/{id} shows it."""
        assert self.webhook_url is not None, "call send_webhooks(url, secret) first"
        if self._webhook_session is None:
            connector = aiohttp.TCPConnector(force_close=not self.webhook_keepalive)
            self._webhook_session = aiohttp.ClientSession(connector=connector)
        project = self._project_body(job)
        for problem in self.contract.response_errors(PROJECT_TEMPLATE, "GET", 200, project):
            self.violations.append(f"fake webhook payload: {problem}")
        body = json.dumps({"type": event_type, "payload": project}).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "magic-hour-event-timestamp": timestamp,
            "magic-hour-event-signature": webhook_signature(self.webhook_secret, timestamp, body),
        }
        try:
            async with self._webhook_session.post(self.webhook_url, data=body, headers=headers) as response:
                await response.read()
                return response.status
        except aiohttp.ClientError:
            return None

    def _schedule_webhooks(self, job: FakeJob) -> None:
        if self.webhook_url is None:
            return
        plan = [("image.started", job.duration * self.queue_fraction)]
        if job.final_status == "complete":
            plan.append(("image.completed", job.duration))
        elif job.final_status == "error":
            plan.append(("image.errored", job.duration))
        for event_type, offset in plan:
            task = asyncio.ensure_future(self._send_later(event_type, job, offset))
            self._webhook_tasks.add(task)
            task.add_done_callback(self._webhook_tasks.discard)

    async def _send_later(self, event_type: str, job: FakeJob, offset: float) -> None:
        delay = job.created_at + offset - self.clock()
        if delay > 0:
            await asyncio.sleep(delay)
        if self._drop_webhooks > 0:
            self._drop_webhooks -= 1
            self.webhook_deliveries.append(WebhookDelivery(event_type, job.id, None, self.clock()))
            return
        for _ in range(2 if self.duplicate_webhooks else 1):
            status = await self.post_event(event_type, job)
            self.webhook_deliveries.append(WebhookDelivery(event_type, job.id, status, self.clock()))

    def expire_next_downloads(self, times: int = 1) -> None:
        """The next `times` output requests answer 403 and invalidate the URL they used."""
        self._expire_downloads += times

    # ---- measurements

    @property
    def created(self) -> int:
        return len(self.jobs)

    def count(self, method: str, path_prefix: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.path.startswith(path_prefix))

    @property
    def gets(self) -> int:
        return self.count("GET", "/v1/image-projects/")

    @property
    def creates(self) -> int:
        """Create requests received (including refused ones); compare with `created` for double charges."""
        return self.count("POST", CREATE_PATH)

    def completion_to_download(self) -> list[float]:
        """Per downloaded job: seconds from its completion to the first request for its output."""
        return [job.downloaded_at - job.completed_at for job in self.jobs.values() if job.downloaded_at is not None]

    # ---- plumbing

    @web.middleware
    async def _record_and_inject(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        body = await request.read()
        parsed: Any = None
        if body and request.content_type == "application/json":
            with contextlib.suppress(ValueError):
                parsed = json.loads(body)
        self.requests.append(
            RecordedRequest(
                request.method,
                request.path,
                dict(request.query),
                dict(request.headers),
                parsed,
                body,
                self.clock(),
            )
        )
        fault = next((f for f in self._faults if f.remaining > 0 and f.matches(request)), None)
        if fault is None:
            return await handler(request)
        fault.remaining -= 1
        self._faults = [f for f in self._faults if f.remaining > 0]
        response = await handler(request) if fault.after_processing else None
        if fault.delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.delay)
        if fault.disconnect:
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=500)  # never delivered: the connection is gone
        if fault.mutate is not None and isinstance(response, web.Response) and response.body is not None:
            broken = fault.mutate(json.loads(response.body))
            return web.Response(
                status=fault.status or response.status, text=json.dumps(broken), content_type="application/json"
            )
        if fault.raw_body is not None:
            return await self._raw(request, fault)
        if fault.status is not None:
            return self._error(request, fault.status, fault.message, retry_after=fault.retry_after)
        return response if response is not None else await handler(request)

    async def _raw(self, request: web.Request, fault: Fault) -> web.StreamResponse:
        """Deliberately broken bytes; streamed, so an endless body costs the fake nothing."""
        assert fault.raw_body is not None
        response = web.StreamResponse(status=fault.status or 200, headers={"Content-Type": fault.content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(fault.repeat):
                await response.write(fault.raw_body)
                self.raw_bytes_sent += len(fault.raw_body)
            await response.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client stopped reading (its cap): expected
        finally:
            self.raw_finished.set()
        return response

    def _template(self, request: web.Request) -> str | None:
        if request.path.startswith("/v1/image-projects/"):
            return PROJECT_TEMPLATE
        return request.path if request.path in (CREATE_PATH, UPLOAD_URLS_PATH, ACCOUNT_PATH) else None

    def _answer(self, request: web.Request, status: int, body: Any, headers: dict[str, str] | None = None):
        template = self._template(request)
        if template is not None:
            for problem in self.contract.response_errors(template, request.method, status, body):
                self.violations.append(f"fake answered {request.method} {request.path} {status}: {problem}")
        if body is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    def _error(self, request: web.Request, status: int, message: str | None = None, *, retry_after: str | None = None):
        headers = {"Retry-After": retry_after} if retry_after is not None else None
        return self._answer(request, status, {"message": message or DEFAULT_MESSAGES.get(status, "Error")}, headers)

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization") == f"Bearer {self.token}"

    async def _valid_body(self, request: web.Request, template: str) -> tuple[Any, web.Response | None]:
        """The JSON body, or a 400 answer (recorded as a contract violation) when it breaks the spec."""
        try:
            body = json.loads(await request.read())
        except ValueError:
            problems = ["body is not JSON"]
        else:
            problems = self.contract.request_errors(template, request.method, body)
        if request.content_type != "application/json":
            problems.append(f"Content-Type is {request.content_type!r}, not application/json")
        if problems:
            self.violations.extend(f"client sent {request.method} {request.path}: {p}" for p in problems)
            return None, self._error(request, 400, "; ".join(problems))
        return body, None

    def _now_wall(self) -> datetime:
        return datetime.now(UTC)

    # ---- API routes

    async def _create(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._error(request, 401)
        body, refusal = await self._valid_body(request, CREATE_PATH)
        if refusal is not None:
            return refusal
        self._refund_failed_jobs()
        if self.credits < CREDITS_PER_JOB:
            return self._error(request, 402)
        assets = dict(body["assets"])
        job = FakeJob(
            id=f"cm{next(self._ids):06d}{secrets.token_hex(4)}",
            name=body.get("name"),
            assets=assets,
            created_at=self.clock(),
            created_wall=self._now_wall(),
            duration=self.job_duration,
        )
        if self._outcomes:
            outcome = self._outcomes.popleft()
            job.final_status, job.error_code, job.error_message = (
                outcome.final_status,
                outcome.code,
                outcome.message,
            )
            if outcome.duration is not None:
                job.duration = outcome.duration
        unfetchable = [value for value in assets.values() if not self._is_fetchable(value)]
        if unfetchable:
            job.final_status, job.error_code = "error", "invalid_input"
            job.error_message = "Could not fetch the input image"
            job.duration = min(job.duration, self.fetch_failure_duration)
        if self.on_create is not None:
            self.on_create(job)
        if job.final_status == "error" and job.error_code is None:
            job.error_code, job.error_message = "render_failed", job.error_message or "Rendering failed"
        self.jobs[job.id] = job
        self.credits -= CREDITS_PER_JOB
        self._schedule_webhooks(job)
        return self._answer(request, 200, {"id": job.id, "credits_charged": CREDITS_PER_JOB, "frame_cost": 5})

    def _refund_failed_jobs(self) -> None:
        """As the spec says: a job that ends in error has its credits refunded."""
        now = self.clock()
        for job in self.jobs.values():
            if not job.refunded and job.status(now, self.queue_fraction) == "error":
                job.refunded = True
                self.credits += CREDITS_PER_JOB

    async def _get_account(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._error(request, 401)
        self._refund_failed_jobs()
        return self._answer(request, 200, {**self.account, "credits": self.credits})

    def _is_fetchable(self, value: str) -> bool:
        if value.startswith("api-assets/") and value in self._upload_signatures and value not in self.uploads:
            return False  # an upload URL was issued but nothing was PUT there
        return self.fetchable is None or self.fetchable(value)

    def _project_body(self, job: FakeJob) -> dict[str, Any]:
        status = job.status(self.clock(), self.queue_fraction)
        downloads: list[dict[str, str]] = []
        if status == "complete" and job.enabled:
            signature = secrets.token_urlsafe(12)
            job.signatures.add(signature)
            downloads.append(
                {
                    "url": f"{self.base_url}/outputs/{job.id}/output.png?sig={signature}",
                    "expires_at": iso(self._now_wall() + timedelta(hours=24)),
                }
            )
        credits = 0 if status == "error" else CREDITS_PER_JOB
        error = {"code": job.error_code, "message": job.error_message} if status == "error" else None
        if status == "canceled" and job.error_code is not None:
            error = {"code": job.error_code, "message": job.error_message or "Canceled"}
        return {
            "id": job.id,
            "name": job.name,
            "status": status,
            "image_count": 1 if status == "complete" else 0,
            "type": "BACKGROUND_REMOVER",
            "created_at": iso(job.created_wall),
            "enabled": job.enabled,
            "credits_charged": credits,
            "total_frame_cost": credits,
            "downloads": downloads,
            "error": error,
        }

    async def _get_project(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._error(request, 401)
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self._error(request, 404)
        job.polls += 1
        return self._answer(request, 200, self._project_body(job))

    async def _delete_project(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._error(request, 401)
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return self._error(request, 404)
        job.enabled = False
        job.signatures.clear()
        return self._answer(request, 204, None)

    async def _upload_urls(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return self._error(request, 401)
        body, refusal = await self._valid_body(request, UPLOAD_URLS_PATH)
        if refusal is not None:
            return refusal
        folder = secrets.token_hex(6)
        items = []
        for index, item in enumerate(body["items"]):
            kind, extension = item["type"], item["extension"]
            if extension not in _UPLOAD_EXTENSIONS[kind]:
                return self._error(request, 422, f"'{extension}' is an invalid {kind} extension.")
            file_path = f"api-assets/{folder}/{index}.{extension}"
            signature = secrets.token_urlsafe(12)
            self._upload_signatures[file_path] = signature
            items.append(
                {
                    "upload_url": f"{self.base_url}/uploads/{file_path}?sig={signature}",
                    "expires_at": iso(self._now_wall() + timedelta(hours=1)),
                    "file_path": file_path,
                }
            )
        return self._answer(request, 200, {"items": items})

    # ---- storage routes (pre-signed: no Bearer token, like S3/CDN URLs)

    async def _put_upload(self, request: web.Request) -> web.StreamResponse:
        file_path = request.match_info["file_path"]
        if self._upload_signatures.get(file_path) != request.query.get("sig"):
            return web.Response(status=403, text="Signature does not match")
        self.uploads[file_path] = await request.read()
        return web.Response(status=200)

    async def _get_output(self, request: web.Request) -> web.StreamResponse:
        job = self.jobs.get(request.match_info["job_id"])
        signature = request.query.get("sig", "")
        if job is None or signature not in job.signatures:
            return web.Response(status=403, text="Request has expired")
        if self._output_redirects:
            status, location = self._output_redirects.popleft()
            target = location(request.path_qs) if callable(location) else location
            return web.Response(status=status, headers={"Location": target})
        if self._expire_downloads > 0:
            self._expire_downloads -= 1
            job.signatures.discard(signature)
            return web.Response(status=403, text="Request has expired")
        if job.downloaded_at is None:
            job.downloaded_at = self.clock()
        if self.send_content_length:
            return web.Response(body=self.output_bytes, content_type=self.output_content_type)
        response = web.StreamResponse(headers={"Content-Type": self.output_content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for start in range(0, len(self.output_bytes), 64 * 1024):
                await response.write(self.output_bytes[start : start + 64 * 1024])
            await response.write_eof()
        except ConnectionError:
            pass  # the client stopped reading (e.g. its size cap): expected
        return response
