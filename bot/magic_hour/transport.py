"""The one request path: timeouts, retries with back-off and Retry-After, and error mapping.

Retrying is a money question here: a create that reached Magic Hour charges credits, so a create is
only re-sent when we know no job can exist (the connection never opened, or a 429/502/503 answer).
Everything else is idempotent (GET, DELETE, upload-URL POSTs, storage PUT/GET) and retried on any
transient failure.
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
from urllib.parse import urlsplit

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
# A create answered 500/504 may have made the job; 429/502/503 are refused before any job exists.
CREATE_RETRYABLE_STATUSES = frozenset({429, 502, 503})

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
    ) -> T:
        """Send with retries; `handle` reads a 2xx response (JSON or a stream) inside the retry loop."""
        url = f"{self.base_url}{target}" if target.startswith("/") else target
        shown = target if target.startswith("/") else display_url(target)
        headers = {"User-Agent": USER_AGENT}
        if authenticated:
            headers["Authorization"] = f"Bearer {self._token}"
            headers["Accept"] = "application/json"
        headers.update(extra_headers or {})
        retries = 0
        while True:
            attempt = retries + 1
            failure: errors.MagicHourError
            retry_after: float | None = None
            try:
                async with self._get_session().request(
                    method,
                    url,
                    json=json,
                    data=data,
                    headers=headers,
                    timeout=self.timeout,
                    raise_for_status=False,
                    allow_redirects=not authenticated,  # never carry the key to another host
                ) as response:
                    logger.debug("%s %s -> %s (attempt %d)", method, shown, response.status, attempt)
                    if response.status < 400:
                        return await handle(response)
                    failure = await self._status_error(response, method, shown, project_id)
                    retry_after = getattr(failure, "retry_after", None)
                    retryable = response.status in (
                        CREATE_RETRYABLE_STATUSES if mode is RetryMode.CREATE else RETRYABLE_STATUSES
                    )
            except (aiohttp.ConnectionTimeoutError, aiohttp.ClientConnectorError) as exc:
                # The connection never opened, so the server cannot have seen the request.
                logger.debug("%s %s -> %s (attempt %d)", method, shown, type(exc).__name__, attempt)
                timed_out = isinstance(exc, TimeoutError)
                failure = (errors.APITimeoutError if timed_out else errors.APIConnectionError)(
                    f"Could not connect to {urlsplit(url).netloc} ({type(exc).__name__}).", request_sent=False
                )
                retryable = True
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                logger.debug("%s %s -> %s (attempt %d)", method, shown, type(exc).__name__, attempt)
                if mode is RetryMode.CREATE:
                    raise errors.JobMayExistError(
                        "timed out" if isinstance(exc, TimeoutError) else f"connection lost: {type(exc).__name__}"
                    ) from None
                if isinstance(exc, TimeoutError):
                    failure = errors.APITimeoutError(
                        f"{method} {shown} got no answer within {self.timeout.total:g} s.", request_sent=True
                    )
                else:
                    failure = errors.APIConnectionError(
                        f"{method} {shown} failed: connection lost ({type(exc).__name__}).", request_sent=True
                    )
                retryable = True

            if not retryable or retries >= self.retry.max_retries:
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

    async def _status_error(
        self, response: aiohttp.ClientResponse, method: str, shown: str, project_id: str | None
    ) -> errors.APIStatusError:
        body: Any = None
        try:
            text = await response.text()
        except (aiohttp.ClientError, TimeoutError, UnicodeDecodeError):
            text = ""
        message = ""
        try:
            body = jsonlib.loads(text) if text else None
            if isinstance(body, dict) and isinstance(body.get("message"), str):
                message = body["message"]
        except ValueError:
            body = text[:500]
        message = self.redact(message or (text[:200].strip() if isinstance(body, str) else "") or response.reason or "")
        status = response.status
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


async def read_json(response: aiohttp.ClientResponse) -> Any:
    """The body of a 2xx JSON answer; a 204 is None."""
    if response.status == 204:
        return None
    try:
        return await response.json(content_type=None)
    except ValueError:
        raise errors.APIResponseValidationError(
            f"Magic Hour answered {response.status} with a body that is not JSON."
        ) from None
