"""aioresponses behind a small vocabulary: what the next request to a URL meets, and what was sent.

aioresponses replaces aiohttp's `ClientSession._request`, so a test can raise exactly what a real
network raises, or hand back an answer whose body breaks off after a given number of bytes.
Answers are used in the order they were added; each is used once (`times` to repeat it). A request
nothing was added for fails with a connection error, and `count` shows it.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aioresponses import aioresponses
from aioresponses.core import RequestCall
from yarl import URL

MakeFault = Callable[[], BaseException]

# aiohttp 3.14 made `stream_writer` a required argument of ClientResponse; aioresponses 0.7.x does not
# pass it yet (pnuckowski/aioresponses#289). Once it does, setdefault below leaves its value alone.
_NEEDS_STREAM_WRITER = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters


class _RequestAlreadySent:
    """All aiohttp asks of the request writer of an answer that has arrived: how much it wrote."""

    output_size = 0


class MockedResponse(aiohttp.ClientResponse):
    """The response aioresponses builds, given what this aiohttp needs to construct one."""

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        if _NEEDS_STREAM_WRITER:
            kwargs.setdefault("stream_writer", _RequestAlreadySent())
        super().__init__(method, url, **kwargs)


class CutShortBody:
    """A body stream that yields its first `keep` bytes, then raises: a connection lost (or timed
    out) in the middle of an answer whose status and headers had arrived."""

    def __init__(self, stream: aiohttp.StreamReader, keep: int, fault: BaseException) -> None:
        self._stream = stream
        self._left = keep
        self._fault = fault

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)  # feed_data, exception, set_exception... as aiohttp's

    async def read(self, n: int = -1) -> bytes:
        if self._left <= 0:
            raise self._fault
        data = await self._stream.read(self._left if n < 0 else min(n, self._left))
        self._left -= len(data)
        return data

    async def iter_chunked(self, n: int) -> AsyncIterator[bytes]:
        while chunk := await self.read(n):
            yield chunk


def _cut_short(keep: int, make_fault: MakeFault) -> type[MockedResponse]:
    class CutShortResponse(MockedResponse):
        @property  # type: ignore[override]
        def content(self) -> Any:
            return self.__dict__.get("_cut_short_body")

        @content.setter
        def content(self, stream: aiohttp.StreamReader) -> None:
            self.__dict__["_cut_short_body"] = CutShortBody(stream, keep, make_fault())

    return CutShortResponse


def _normalised(url: str) -> URL:
    parsed = URL(url)
    return parsed.with_query(sorted(parsed.query.items()))  # aioresponses keys requests this way


class Network:
    def __init__(self, mocked: aioresponses) -> None:
        self._mocked = mocked

    def fail(self, method: str, url: str, make_fault: MakeFault, *, times: int = 1) -> None:
        """The next `times` requests raise a fresh `make_fault()` instead of getting an answer."""
        for _ in range(times):
            self._mocked.add(url, method, exception=make_fault())

    def answer(
        self,
        method: str,
        url: str,
        *,
        status: int = 200,
        payload: Any = None,
        body: bytes = b"",
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        times: int = 1,
        cut_after: int | None = None,
        fault: MakeFault | None = None,
    ) -> None:
        """The next `times` requests get this answer; with `fault`, its body breaks off after `cut_after` bytes."""
        response_class = MockedResponse if fault is None else _cut_short(cut_after or 0, fault)
        self._mocked.add(
            url,
            method,
            status=status,
            payload=payload,
            body=body,
            content_type=content_type,
            headers=headers,
            response_class=response_class,
            repeat=times,
        )

    def sent(self, method: str, url: str) -> list[RequestCall]:
        """Every request made to this URL (query order ignored), answered or not."""
        return self._mocked.requests.get((method.upper(), _normalised(url)), [])

    def count(self, method: str, url: str) -> int:
        return len(self.sent(method, url))

    def hosts(self) -> set[str]:
        """Every host:port anything was sent to."""
        return {f"{url.host}:{url.port}" for _, url in self._mocked.requests}
