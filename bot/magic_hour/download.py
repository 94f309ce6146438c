"""Streamed, size-capped downloads of project outputs.

Outputs are streamed chunk by chunk into a spooled buffer (memory up to 1 MiB, then disk) or a
uniquely named file, so a large or hostile response can never fill memory, and two downloads
never overwrite each other. A Content-Length over the limit is refused before a byte of the body is
read (OutputTooLargeError, with the link, so the caller can hand that out instead). A redirect is
followed only to a URL that passes the same check as the first one, and only an image is accepted:
a storage error page served as 200 text/html is an error, not a picture.
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
from .urls import is_loopback_host

SPOOL_MAX_BYTES = 1 << 20
CHUNK_BYTES = 64 * 1024
# Declared types that say nothing about the content: the first bytes decide.
UNTYPED = frozenset({None, "", "application/octet-stream", "binary/octet-stream"})
REFUSED_IMAGE_TYPES = frozenset({"image/svg+xml"})  # text that can carry scripts, not a picture
IMAGE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")


def check_storage_url(url: str) -> None:
    """Only https leaves the machine; plain http is accepted for loopback test servers only."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback_host(parts.hostname):
        return
    raise errors.DownloadError(f"Refusing to fetch {parts.scheme or 'a'} URL on {parts.hostname!r}: https only.")


def looks_like_image(head: bytes) -> bool:
    """Magic numbers of the raster formats Magic Hour can return (PNG, JPEG, GIF, WebP, BMP, TIFF, AVIF)."""
    if head.startswith(b"RIFF"):
        return head[8:12] == b"WEBP"
    return head.startswith(IMAGE_SIGNATURES) or head[4:12] in (b"ftypavif", b"ftypheic", b"ftypavis")


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

    def too_large(size: int, *, known: bool) -> errors.OutputTooLargeError:
        return errors.OutputTooLargeError(
            size, max_bytes, project_id=project_id, size_known=known, url=url, expires_at=expires_at
        )

    async def handle(response: aiohttp.ClientResponse) -> DownloadedFile:
        declared = response.content_type if "Content-Type" in response.headers else None
        untyped = declared in UNTYPED
        if not untyped and (not declared or not declared.startswith("image/") or declared in REFUSED_IMAGE_TYPES):
            raise errors.DownloadContentTypeError(declared, project_id=project_id)
        length = response.content_length
        if length is not None and length > max_bytes:
            raise too_large(length, known=True)
        path: Path | None = None
        sink: BinaryIO
        if directory is not None:
            fd, name = tempfile.mkstemp(prefix=f"{safe_stem(project_id)}-", suffix=extension, dir=directory)
            path = Path(name)
            sink = os.fdopen(fd, "wb")
        else:
            sink = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_BYTES)  # noqa: SIM115 - returned to the caller
        size = 0
        checked = not untyped
        try:
            async for chunk in response.content.iter_chunked(CHUNK_BYTES):
                if not checked:
                    if not looks_like_image(chunk[:16]):  # a first chunk is never this short in practice
                        raise errors.DownloadContentTypeError(declared, project_id=project_id)
                    checked = True
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(size, known=False)
                sink.write(chunk)
            if not checked:  # an empty body with no type is not an image either
                raise errors.DownloadContentTypeError(declared, project_id=project_id)
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
        "GET",
        url,
        handle,
        authenticated=False,
        mode=RetryMode.IDEMPOTENT,
        project_id=project_id,
        check_redirect=check_storage_url,
    )
