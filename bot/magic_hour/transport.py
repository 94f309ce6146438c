"""The one request path: timeouts, retries with back-off and Retry-After, redirects, and error mapping.

Retrying is a money question here: a create that reached Magic Hour charges credits, so a create is
only re-sent when errors.create_may_have_happened() says no job can exist (the connection never opened,
or a 429/502/503 answer). Everything else is idempotent (GET, DELETE, upload-URL POSTs, storage PUT/GET)
and retried on any transient failure, an unreadable 2xx included. Error bodies are read up to
ERROR_BODY_CAP only, so a hostile or broken server cannot make us buffer an endless page.
"""

from __future__ import annotations

import email.utils
import enum
import json as jsonlib
import logging
import platform
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

import aiohttp

from . import errors

logger = logging.getLogger("bot.magic_hour")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[Any]]

DEFAULT_BASE_URL = "https://api.magichour.ai"
USER_AGENT = (
    f"magic-hour-background-bot/0.1.0 (discord background remover; aiohttp/{aiohttp.__version__}; "
    f"python/{platform.python_version()})"
)
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
# Of these, a create is re-sent only on those where errors.create_may_have_happened() is False.
ERROR_BODY_CAP = 64 * 1024  # bytes of an error answer we read; the rest is never downloaded
MESSAGE_CAP = 500  # characters of the server's message kept in an error
MAX_REDIRECTS = 5
JSON_BODY_CAP = 1 << 20  # an API answer is a few hundred bytes; anything this big is not one

_STATUS_ERRORS: dict[int, type[errors.APIStatusError]] = {
    400: errors.BadRequestError,
    401: errors.AuthenticationError,
    402: errors.InsufficientCreditsError,
    403: errors.PermissionDeniedError,
    404: errors.NotFoundError,
    422: errors.UnprocessableEntityError,
    429: errors.RateLimitError,
}


class RetryMode(enum.Enum):
    """IDEMPOTENT: safe to repeat. CREATE: repeat only where no job can have been created."""

    IDEMPOTENT = "idempotent"
    CREATE = "create"


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 30.0  # a server asking for longer gets this; the caller's deadline still rules

    def backoff(self, retry_number: int, rand: Callable[[], float] = random.random) -> float:
        """Exponential back-off with 'equal jitter': half fixed, half random, so retries spread out."""
        ceiling = min(self.max_delay, self.base_delay * (2**retry_number))
        return ceiling * (0.5 + 0.5 * rand())


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


def display_url(url: str) -> str:
    """A URL for logs: scheme, host and path; signed query strings stay out of the logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else parts.path


class Transport:
    """Sends requests for the client; owns the session only when it created it."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str,
        session: aiohttp.ClientSession | None,
        connect_timeout: float,
        request_timeout: float,
        retry: RetryPolicy,
        sleep: Sleep,
    ) -> None:
        self._token = token
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self.timeout = aiohttp.ClientTimeout(connect=connect_timeout, total=request_timeout)
        self.retry = retry
        self._sleep = sleep

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    async def close(self) -> None:
        self._closed = True
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("This Magic Hour client is closed.")
        if self._session is None:
            # Created lazily: a session must be born inside the event loop that uses it.
            self._session = aiohttp.ClientSession()
        return self._session

    def redact(self, text: str) -> str:
        """Belt and braces: should anything echo the key back, it never reaches an error or a log."""
        return text.replace(self._token, "[redacted]") if self._token else text

    async def request(
        self,
        method: str,
        target: str,
        handle: Callable[[aiohttp.ClientResponse], Awaitable[T]],
        *,
        json: Any = None,
        data: bytes | None = None,
        authenticated: bool = True,
        mode: RetryMode = RetryMode.IDEMPOTENT,
        project_id: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
        check_redirect: Callable[[str], None] | None = None,
    ) -> T:
        """Send with retries; `handle` reads a 2xx response (JSON or a stream) inside the retry loop.

        A redirect is followed only when `check_redirect` is given and accepts the next URL (it raises
        otherwise); authenticated requests never get one, so the key never goes to another host.
        `handle` raising APIResponseValidationError means "unreadable 2xx": retried, or for a create
        turned into JobMayExistError.
        """
        url = f"{self.base_url}{target}" if target.startswith("/") else target
        headers = {"User-Agent": USER_AGENT}
        if authenticated:
            headers["Authorization"] = f"Bearer {self._token}"
            headers["Accept"] = "application/json"
            check_redirect = None
        headers.update(extra_headers or {})
        retries = 0
        while True:
            attempt = retries + 1
            failure: errors.MagicHourError
            retry_after: float | None = None
            lost_because = ""
            current, shown, hops, status = url, self._shown(target, url), 0, 0
            try:
                while True:  # one attempt, following allowed redirects
                    async with self._get_session().request(
                        method,
                        current,
                        json=json,
                        data=data,
                        headers=headers,
                        timeout=self.timeout,
                        raise_for_status=False,
                        allow_redirects=False,  # each hop is checked below
                    ) as response:
                        status = response.status
                        logger.debug("%s %s -> %s (attempt %d)", method, shown, status, attempt)
                        location = response.headers.get("Location")
                        if 300 <= status < 400 and check_redirect is not None and location and hops < MAX_REDIRECTS:
                            current = urljoin(current, location)
                            check_redirect(current)  # raises a typed error for a URL we would not fetch
                            hops, shown = hops + 1, display_url(current)
                            continue
                        if 200 <= status < 300:
                            return await handle(response)
                        failure = await self._status_error(response, method, shown, project_id)
                        retry_after = getattr(failure, "retry_after", None)
                        break
            except errors.APIResponseValidationError as exc:
                logger.debug("%s %s -> unreadable %s answer (attempt %d)", method, shown, status, attempt)
                if mode is RetryMode.CREATE:
                    raise errors.JobMayExistError(f"unreadable {status} answer: {exc.message}", status=status) from None
                failure = exc
            except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as exc:
                # The connection never opened, so the server cannot have seen the request.
                logger.debug("%s %s -> %s (attempt %d)", method, shown, type(exc).__name__, attempt)
                timed_out = isinstance(exc, TimeoutError)
                failure = (errors.APITimeoutError if timed_out else errors.APIConnectionError)(
                    f"Could not connect to {urlsplit(current).netloc} ({type(exc).__name__}).", request_sent=False
                )
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                logger.debug("%s %s -> %s (attempt %d)", method, shown, type(exc).__name__, attempt)
                timed_out = isinstance(exc, TimeoutError)
                lost_because = "timed out" if timed_out else f"connection lost: {type(exc).__name__}"
                if isinstance(exc, TimeoutError):
                    failure = errors.APITimeoutError(
                        f"{method} {shown} got no answer within {self.timeout.total:g} s.", request_sent=True
                    )
                else:
                    failure = errors.APIConnectionError(
                        f"{method} {shown} failed: connection lost ({type(exc).__name__}).", request_sent=True
                    )

            if mode is RetryMode.CREATE and errors.create_may_have_happened(failure):
                if isinstance(failure, errors.APIStatusError):
                    raise failure  # a 500/504 keeps its status; the predicate is what callers consult
                raise errors.JobMayExistError(lost_because)
            if not _is_transient(failure) or retries >= self.retry.max_retries:
                raise failure
            retries += 1
            delay = self.retry.backoff(retries - 1)
            if retry_after is not None:
                delay = min(retry_after, self.retry.max_retry_after)
            logger.warning(
                "Retrying %s %s in %.2f s after %s (retry %d of %d)",
                method,
                shown,
                delay,
                f"status {failure.status}" if failure.status else type(failure).__name__,
                retries,
                self.retry.max_retries,
            )
            await self._sleep(delay)

    @staticmethod
    def _shown(target: str, url: str) -> str:
        return target if target.startswith("/") else display_url(url)

    async def _status_error(
        self, response: aiohttp.ClientResponse, method: str, shown: str, project_id: str | None
    ) -> errors.APIStatusError:
        body: Any = None
        try:
            raw = await read_capped(response, ERROR_BODY_CAP)
            text = raw.decode(response.charset or "utf-8", errors="replace")
        except (aiohttp.ClientError, TimeoutError, LookupError):
            text = ""
        message = ""
        try:
            body = jsonlib.loads(text) if text else None
            if isinstance(body, dict) and isinstance(body.get("message"), str):
                message = body["message"]
        except ValueError:
            body = text[:MESSAGE_CAP]
        fallback = text[:200].strip() if isinstance(body, str) else ""
        message = self.redact(message or fallback or response.reason or "")[:MESSAGE_CAP]
        status = response.status
        if 300 <= status < 400:
            message = f"unexpected redirect ({message})" if message else "unexpected redirect"
        cls = _STATUS_ERRORS.get(status) or (errors.InternalServerError if status >= 500 else errors.APIStatusError)
        return cls(
            status,
            message or f"HTTP {status}",
            body,
            method=method,
            path=shown,
            project_id=project_id,
            retry_after=parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None,
        )


def _is_transient(failure: errors.MagicHourError) -> bool:
    """Worth another attempt: network trouble, an unreadable 2xx, or a status that says 'later'."""
    if isinstance(failure, errors.APIStatusError):
        return failure.status in RETRYABLE_STATUSES
    return isinstance(failure, errors.APIConnectionError | errors.APIResponseValidationError)


async def read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """At most `cap` bytes of the body; the rest is left unread (the connection is then dropped)."""
    chunks: list[bytes] = []
    total = 0
    while total < cap:
        chunk = await response.content.read(cap - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def parsed(parse: Callable[[Any], T]) -> Callable[[aiohttp.ClientResponse], Awaitable[T]]:
    """A `handle` that reads JSON and builds the model inside the retry loop, so a body that fails the
    model's checks counts as an unreadable answer (retried, or JobMayExistError for a create)."""

    async def handle(response: aiohttp.ClientResponse) -> T:
        return parse(await read_json(response))

    return handle


async def read_json(response: aiohttp.ClientResponse) -> Any:
    """The body of a 2xx JSON answer (a 204 is None); too big or not JSON is an unreadable answer."""
    if response.status == 204:
        return None
    raw = await read_capped(response, JSON_BODY_CAP + 1)
    if len(raw) > JSON_BODY_CAP:
        raise errors.APIResponseValidationError(
            f"Magic Hour answered {response.status} with a body over {JSON_BODY_CAP} bytes."
        )
    try:
        return jsonlib.loads(raw)
    except ValueError:  # UnicodeDecodeError included
        raise errors.APIResponseValidationError(
            f"Magic Hour answered {response.status} with a body that is not JSON."
        ) from None
