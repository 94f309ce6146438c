"""Streamed, size-capped downloads of project outputs.

Outputs are streamed chunk by chunk into a spooled buffer (memory up to 1 MiB, then disk) or a
uniquely named file, so a large or hostile response can never fill memory, and two downloads
never overwrite each other.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import urlsplit

import aiohttp

from . import errors
from .models import DownloadedFile
from .transport import RetryMode, Transport

SPOOL_MAX_BYTES = 1 << 20
CHUNK_BYTES = 64 * 1024
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def check_storage_url(url: str) -> None:
    """Only https leaves the machine; plain http is accepted for loopback test servers only."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return
    raise errors.DownloadError(f"Refusing to fetch {parts.scheme or 'a'} URL on {parts.hostname!r}: https only.")


def url_extension(url: str) -> str:
    """The URL's file extension (".png"), or ".bin" when it has none we trust."""
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    return suffix if re.fullmatch(r"\.[a-z0-9]{1,10}", suffix) else ".bin"


def safe_stem(project_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", project_id)[:80] or "output"


async def stream_to_file(
    transport: Transport,
    url: str,
    *,
    project_id: str,
    expires_at: datetime,
    directory: Path | None,
    max_bytes: int,
) -> DownloadedFile:
    """GET `url` (retried on transient failures) into a new file or spooled buffer; never over `max_bytes`."""
    check_storage_url(url)
    extension = url_extension(url)

    async def handle(response: aiohttp.ClientResponse) -> DownloadedFile:
        length = response.content_length
        if length is not None and length > max_bytes:
            raise errors.DownloadTooLargeError(length, max_bytes, project_id=project_id)
        path: Path | None = None
        sink: BinaryIO
        if directory is not None:
            fd, name = tempfile.mkstemp(prefix=f"{safe_stem(project_id)}-", suffix=extension, dir=directory)
            path = Path(name)
            sink = os.fdopen(fd, "wb")
        else:
            sink = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_BYTES)  # noqa: SIM115 - returned to the caller
        size = 0
        try:
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                size += len(chunk)
                if size > max_bytes:
                    raise errors.DownloadTooLargeError(size, max_bytes, project_id=project_id)
                sink.write(chunk)
            if path is not None:
                sink.close()
            else:
                sink.seek(0)
        except BaseException:
            sink.close()
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        return DownloadedFile(
            path=path,
            file=None if path is not None else sink,
            size=size,
            filename=path.name if path is not None else f"{safe_stem(project_id)}{extension}",
            content_type=response.content_type if "Content-Type" in response.headers else None,
            url=url,
            expires_at=expires_at,
        )

    return await transport.request(
        "GET", url, handle, authenticated=False, mode=RetryMode.IDEMPOTENT, project_id=project_id
    )
