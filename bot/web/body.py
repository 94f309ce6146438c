"""Reading a webhook body from a stranger: few at once, each capped in size and in time.

Until the body is read its signature cannot be checked, so whoever reaches the port decides what the
bot holds while it reads. Each read is bounded (`max_bytes`, `seconds`), and so is the number of
reads still waiting for bytes: past `max_reads` a request is refused at once rather than queued,
since a queue of stalled senders is what the bound is there to prevent. A body that has already
arrived whole (as Magic Hour's few KB do, with their headers) waits for nothing and holds nothing
more than aiohttp already does, so it is read even then: stalled senders filling every slot do not
shut out a genuine event.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from bot.webhooks import MAX_BODY_BYTES, WebhookRefused


class BodyReads:
    def __init__(self, *, max_reads: int, seconds: float, max_bytes: int = MAX_BODY_BYTES) -> None:
        self._max_reads = max_reads
        self._seconds = seconds
        self._max_bytes = max_bytes
        self.reading = 0

    async def read(self, request: web.BaseRequest) -> bytes:
        """The raw body, or WebhookRefused: too_large, busy, slow_body, disconnected or malformed."""
        if request.content_length is not None and request.content_length > self._max_bytes:
            raise WebhookRefused("too_large", 413)
        if self.reading >= self._max_reads and not request.content.is_eof():
            raise WebhookRefused("busy", 503)
        self.reading += 1
        try:
            async with asyncio.timeout(self._seconds):
                return await self._read_capped(request)
        except TimeoutError:
            raise WebhookRefused("slow_body", 408) from None
        except ConnectionError:
            raise WebhookRefused("disconnected", 400) from None  # nobody is left to read the answer
        except web.RequestPayloadError:
            raise WebhookRefused("malformed", 400) from None  # shorter than its length, broken chunks
        finally:
            self.reading -= 1

    async def _read_capped(self, request: web.BaseRequest) -> bytes:
        body = bytearray()
        while chunk := await request.content.readany():
            body += chunk
            if len(body) > self._max_bytes:  # a chunked body has no Content-Length to refuse up front
                raise WebhookRefused("too_large", 413)
        return bytes(body)
